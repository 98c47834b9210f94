"""The numpy core against the brute-force reference, on plain tuples (no database)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.geo import M_PER_DEG
from crossings.detection import core
from crossings.detection.core import NEAR_FRACTION, Cells, Context, Segments, detect, merge_intervals
from tests.crossings.reference import reference_crossings

US = 1_000_000
WINDOW = 600 * US
GAP = 3600 * US


def _context(pings, new_mask):
    users = np.array([p[0] for p in pings], dtype=np.int64)
    return Context(
        user=users, t=np.array([p[1] for p in pings], dtype=np.int64),
        lat=np.array([p[2] for p in pings]), lng=np.array([p[3] for p in pings]),
        city=np.zeros(len(pings), np.int64), new=np.asarray(new_mask, dtype=bool),
    )


def _as_records(enc) -> dict:
    """{(low, high): (first match, start of the latest encounter, encounters)}, as records show."""
    out: dict = {}
    for lo, hi, s in zip(enc.low.tolist(), enc.high.tolist(), enc.start.tolist(), strict=True):
        first, last, n = out.get((lo, hi), (s, s, 0))
        out[(lo, hi)] = (min(first, s), max(last, s), n + 1)
    return out


def _incremental(pings, batches):
    """Detect batch by batch (each batch sees what arrived before it), merging like the store."""
    stored = Segments.empty()
    arrived = np.zeros(len(pings), dtype=bool)
    for batch in sorted(set(batches)):
        new = np.array([b == batch for b in batches])
        arrived |= new
        idx = np.flatnonzero(arrived)
        ctx = _context([pings[i] for i in idx], new[idx])
        enc, _ = detect(ctx, cell_m=200.0, window_us=WINDOW, repeat_gap_us=GAP)
        as_seg = Segments(enc.low, enc.high, enc.start, enc.end, enc.place_lat, enc.place_lng, enc.place_city)
        stored = Segments.concat([stored, as_seg])
        merged = merge_intervals(stored, repeat_gap_us=GAP)
        stored = Segments(merged.low, merged.high, merged.start, merged.end,
                          merged.place_lat, merged.place_lng, merged.place_city)
    return _as_records(merge_intervals(stored, repeat_gap_us=GAP))


# Positions on a lattice of half cells (so pings sit on the row and column edges) with a
# jitter of a few centimetres, around a random longitude (which sets how the columns of
# adjacent rows are offset) at latitudes from the equator's two rows to the polar cap;
# times on a 300 s lattice (so pairs sit at 600 s) with a jitter of a microsecond.
CELLS = Cells(200.0)
_lattice = st.integers(-6, 6)
_ping = st.tuples(
    st.integers(0, 5),  # user
    _lattice, _lattice, st.sampled_from([0.0, 0.0, -1e-9, 1e-9, -0.05, 0.05]), st.floats(-0.05, 0.05),
    st.integers(0, 30), st.sampled_from([-1, 0, 0, 1]),  # time lattice, microsecond jitter
    st.integers(0, 3),  # batch (arrival order)
)
_base = st.tuples(st.sampled_from([0, -1, 29_199, -18_848, 44_476, 50_010, 50_033]),  # rows: equator, Berlin,
                  st.floats(-170.0, 170.0))  # Sydney, 80 deg, the polar cap


def _to_ping(raw, base):
    user, ix, iy, jx, jy, it, jt, _batch = raw
    row0, lng0 = base
    lat = (2 * row0 + iy) * CELLS.row_height / 2 + jy / M_PER_DEG
    width = float(CELLS.width(row0 + iy // 2))
    lng = (2 * np.floor(lng0 / width) + ix) * width / 2 + jx / M_PER_DEG
    return (user, 1_700_000_000 * US + it * 300 * US + jt, lat, lng)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ping, min_size=0, max_size=60), _base)
def test_core_matches_reference_in_any_batches(raws, base):
    pings = [_to_ping(r, base) for r in raws]
    expected = reference_crossings(pings)
    enc, _ = detect(_context(pings, [True] * len(pings)), cell_m=200.0, window_us=WINDOW, repeat_gap_us=GAP)
    assert _as_records(enc) == expected
    assert _incremental(pings, [r[-1] for r in raws]) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-89.999, 89.999), st.floats(-179.0, 179.0), st.sampled_from([200.0, 200.0, 50.0, 1000.0]),
    st.lists(st.tuples(st.integers(0, 3), st.floats(-400, 400), st.floats(-400, 400), st.integers(0, 1300)),
             max_size=40),
)
def test_core_exact_at_any_latitude(lat0, lng0, cell_m, raws):
    """Columns widen with latitude and stop at the polar cap; pairs across row and column
    edges anywhere on the globe are found, for other cell sizes too."""
    scale = M_PER_DEG * max(np.cos(np.radians(lat0)), 1e-4)
    pings = [(u, t * US, float(np.clip(lat0 + y / M_PER_DEG, -90, 90)), float(np.clip(lng0 + x / scale, -180, 180)))
             for u, x, y, t in raws]
    expected = reference_crossings(pings, cell_m=cell_m)
    enc, _ = detect(_context(pings, [True] * len(pings)), cell_m=cell_m, window_us=WINDOW, repeat_gap_us=GAP)
    assert _as_records(enc) == expected


@pytest.mark.parametrize("row", [-1, 1_000, 29_199, -44_477, 50_010])
def test_adjacent_rows_at_the_threshold(row):
    """In the row above, on either side, the cells whose gap is nearest the threshold from
    below and from above: the candidate search finds exactly the neighbours."""
    other = row + 1
    w1, w2 = float(CELLS.width(row)), float(CELLS.width(other))
    near = NEAR_FRACTION * max(w1, w2)
    c1 = np.arange(int(-179 / w1), int(179 / w1), dtype=np.int64)
    right = np.floor(((c1 + 1) * w1 + near) / w2).astype(np.int64)  # last column that can be near
    left = np.ceil((c1 * w1 - near) / w2 - 1).astype(np.int64)  # first column that can be near
    gaps = {  # (gap to the cell within the threshold, to the next cell out) per c1
        "right": (right, right + 1, right * w2 - (c1 + 1) * w1),
        "left": (left, left - 1, c1 * w1 - (left + 1) * w2),
    }
    pings, expected = [], set()
    for inner, outer, gap in gaps.values():
        assert (gap <= near).all() and (gap + w2 > near).all()
        for pick in (int(np.argmax(gap)), int(np.argmin(gap))):  # nearest below, nearest above
            for col in (inner[pick], outer[pick]):
                a, b = len(pings), len(pings) + 1
                cell_a, cell_b = (row, c1[pick]), (other, col)
                pings += [(a, 0, *_centre(cell_a)), (b, 0, *_centre(cell_b))]
                if CELLS.neighbours(cell_a, cell_b):
                    expected.add((a, b))
    assert len(expected) == 4  # each inner cell is a neighbour, each outer one is not
    # Only the pings of `row` are new: the pairs must be found from their side.
    enc, _ = detect(_context(pings, [i % 2 == 0 for i in range(len(pings))]), cell_m=200.0, window_us=WINDOW,
                    repeat_gap_us=GAP)
    pairs = {pair for pair in _as_records(enc) if pair[0] % 2 == 0 and pair[1] == pair[0] + 1}
    assert pairs == expected


def _centre(cell):
    row, col = cell
    width = float(CELLS.width(row))
    return (row + 0.5) * CELLS.row_height, (col + 0.5) * width


def test_bounds_are_inclusive_and_exact():
    lat, lng = 52.52, 13.42
    # Two pings exactly WINDOW apart match; a microsecond more does not.
    near = lng + 10 / (M_PER_DEG * np.cos(np.radians(lat)))
    pings = [(0, 0, lat, lng), (1, WINDOW, lat, near), (2, WINDOW + 1, lat, near)]
    enc, _ = detect(_context(pings, [True] * 3), cell_m=200.0, window_us=WINDOW, repeat_gap_us=GAP)
    assert set(_as_records(enc)) == {(0, 1), (1, 2)}
    # Place: the cells decide. One column over matches, two columns over does not.
    row, col = (int(x[0]) for x in CELLS.cell_of([lat], [lng]))
    pings = [(0, 0, *_centre((row, col))), (1, 0, *_centre((row, col + 1))), (2, 0, *_centre((row, col + 2)))]
    enc, _ = detect(_context(pings, [True] * 3), cell_m=200.0, window_us=WINDOW, repeat_gap_us=GAP)
    assert set(_as_records(enc)) == {(0, 1), (1, 2)}


@pytest.mark.parametrize("lats", [(52.5, 52.51), (-89.99, 89.99)])
def test_any_number_of_users_per_context(lats):
    """User codes of any width: one sort key when (cell, user) fits 62 bits, two keys beyond."""
    base = [(0, 0, lats[0], 13.4), (1, 60 * US, lats[0], 13.4), (2, 0, lats[1], 13.4), (3, 0, lats[1], 13.4)]
    for code_bits in (3, 20, 30, 40):
        codes = {0: 0, 1: (1 << code_bits) - 1, 2: (1 << code_bits) - 2, 3: 5}
        pings = [(codes[u], t, la, ln) for u, t, la, ln in base]
        enc, _ = detect(_context(pings, [True] * 4), cell_m=200.0, window_us=WINDOW, repeat_gap_us=GAP)
        assert _as_records(enc) == reference_crossings(pings)
        assert len(_as_records(enc)) == 2


@pytest.mark.parametrize("seed", range(4))
def test_small_chunks_and_merges_in_rounds(monkeypatch, seed):
    """detect() matches new pings in chunks and merges the chunks' segments a few at a time:
    any chunk sizes give the reference's encounters (and the same number of matched pairs)."""
    rng = np.random.default_rng(seed)
    n = 250
    pings = [(int(rng.integers(0, 12)), int(rng.integers(0, 4 * 3600)) * US,
              52.52 + float(rng.normal(0, 300)) / M_PER_DEG, 13.42 + float(rng.normal(0, 300)) / M_PER_DEG / 0.61)
             for _ in range(n)]
    new = rng.random(n) < 0.7
    ctx = _context(pings, new)
    whole, whole_matches = detect(ctx, cell_m=200.0, window_us=WINDOW, repeat_gap_us=GAP)
    monkeypatch.setattr(core, "_QUERY_CHUNK", 7)
    monkeypatch.setattr(core, "_MERGE_CHUNKS", 3)
    enc, matches = detect(ctx, cell_m=200.0, window_us=WINDOW, repeat_gap_us=GAP)
    assert matches == whole_matches > 0
    assert _as_records(enc) == _as_records(whole)
    assert max(n for _, _, n in _as_records(enc).values()) > 1  # pairs with several encounters
    assert _as_records(enc) == reference_crossings(pings, new=new)


def test_a_late_match_between_two_encounters_merges_them():
    lat, lng = 52.52, 13.42
    a = [(0, 0, lat, lng), (1, 0, lat, lng)]
    b = [(0, 7000 * US, lat, lng), (1, 7000 * US, lat, lng)]
    late = [(0, 3500 * US, lat, lng), (1, 3500 * US, lat, lng)]
    pings = a + b + late
    assert _incremental(pings, [0, 0, 1, 1, 2, 2]) == {(0, 1): (0, 0, 1)}  # one encounter: it started at 0
    assert _incremental(pings[:4], [0, 0, 1, 1]) == {(0, 1): (0, 7000 * US, 2)}


def test_widen_xid_handles_epochs_and_newer_ids():
    from crossings.detection.run import widen_xid

    next_xid = (3 << 32) + 100
    assert widen_xid(90, next_xid) == (3 << 32) + 90
    assert widen_xid(0xFFFFFFF0, next_xid) == (3 << 32) - 16  # previous epoch
    assert widen_xid(150, next_xid) == (3 << 32) + 150  # assigned after next_xid was read
    assert widen_xid(150, 100) == 150
