"""The numpy core against the brute-force reference, on plain tuples (no database)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.geo import EARTH_RADIUS_M
from crossings.detection.core import Context, Segments, detect, merge_intervals, within_radius
from tests.crossings.reference import reference_crossings

US = 1_000_000
WINDOW = 600 * US
GAP = 3600 * US
M_PER_DEG = np.radians(1.0) * EARTH_RADIUS_M


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
        enc, _ = detect(ctx, radius_m=150.0, window_us=WINDOW, repeat_gap_us=GAP)
        as_seg = Segments(enc.low, enc.high, enc.start, enc.end, enc.place_lat, enc.place_lng, enc.place_city)
        stored = Segments.concat([stored, as_seg])
        merged = merge_intervals(stored, repeat_gap_us=GAP)
        stored = Segments(merged.low, merged.high, merged.start, merged.end,
                          merged.place_lat, merged.place_lng, merged.place_city)
    return _as_records(merge_intervals(stored, repeat_gap_us=GAP))


# Positions on a 75 m lattice (so pairs sit at 150 m, the radius) with a jitter of a few
# centimetres; times on a 300 s lattice (so pairs sit at 600 s) with a jitter of a microsecond.
BASE_LAT, BASE_LNG = 52.52, 13.42
_lattice = st.integers(-5, 5)
_ping = st.tuples(
    st.integers(0, 5),  # user
    _lattice, _lattice, st.floats(-0.05, 0.05), st.floats(-0.05, 0.05),
    st.integers(0, 30), st.sampled_from([-1, 0, 0, 1]),  # time lattice, microsecond jitter
    st.integers(0, 3),  # batch (arrival order)
)


def _to_ping(raw):
    user, ix, iy, jx, jy, it, jt, _batch = raw
    lat = BASE_LAT + (iy * 75 + jy) / M_PER_DEG
    lng = BASE_LNG + (ix * 75 + jx) / (M_PER_DEG * np.cos(np.radians(BASE_LAT)))
    return (user, 1_700_000_000 * US + it * 300 * US + jt, lat, lng)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ping, min_size=0, max_size=60))
def test_core_matches_reference_in_any_batches(raws):
    pings = [_to_ping(r) for r in raws]
    expected = reference_crossings(pings)
    enc, _ = detect(_context(pings, [True] * len(pings)), radius_m=150.0, window_us=WINDOW, repeat_gap_us=GAP)
    assert _as_records(enc) == expected
    assert _incremental(pings, [r[-1] for r in raws]) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-75.0, 75.0), st.floats(-179.0, 179.0),
    st.lists(st.tuples(st.integers(0, 3), st.floats(-400, 400), st.floats(-400, 400), st.integers(0, 1300)),
             max_size=40),
)
def test_core_exact_at_any_latitude(lat0, lng0, raws):
    """Cells narrow with latitude; pairs across cell edges anywhere on the globe are found."""
    scale = M_PER_DEG * np.cos(np.radians(lat0))
    pings = [(u, t * US, lat0 + y / M_PER_DEG, lng0 + x / scale) for u, x, y, t in raws]
    expected = reference_crossings(pings)
    enc, _ = detect(_context(pings, [True] * len(pings)), radius_m=150.0, window_us=WINDOW, repeat_gap_us=GAP)
    assert _as_records(enc) == expected


def test_bounds_are_inclusive_and_exact():
    lat, lng = 52.52, 13.42
    # Two pings exactly WINDOW apart match; a microsecond more does not.
    near = lng + 10 / (M_PER_DEG * np.cos(np.radians(lat)))
    pings = [(0, 0, lat, lng), (1, WINDOW, lat, near), (2, WINDOW + 1, lat, near)]
    enc, _ = detect(_context(pings, [True] * 3), radius_m=150.0, window_us=WINDOW, repeat_gap_us=GAP)
    assert set(_as_records(enc)) == {(0, 1), (1, 2)}
    # Distance: the predicate itself decides at the radius.
    step = 150.0 / M_PER_DEG
    assert within_radius(lat, lng, lat + step * 0.9999, lng, 150.0)
    assert not within_radius(lat, lng, lat + step * 1.0001, lng, 150.0)


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
