"""The tiling's guarantees (docs/crossings.md, "The tiling"): pairs within 0.75 of a cell
always match, pairs beyond the stated maximum never do, and only the two cells count."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.geo import EARTH_RADIUS_M, M_PER_DEG, haversine_m
from crossings.detection.core import NEAR_FRACTION, Cells, Context, detect

CELLS = Cells(200.0)
H = CELLS.row_height
ALWAYS_M = NEAR_FRACTION * 200.0  # 150 m
MAX_MATCH_M = 692.95  # the least upper bound of the distance of a matching pair (docs/crossings.md)
# Where every pair within ALWAYS_M matches: rows whose column width is not capped at the poles.
GUARANTEED_LAT = CELLS.far_cap - H
US = 1_000_000


def _destination(lat, lng, bearing, distance_m):
    """The point ``distance_m`` from (lat, lng) along ``bearing`` (degrees), on the sphere."""
    p, lam, b = np.radians(lat), np.radians(lng), np.radians(bearing)
    delta = np.asarray(distance_m) / EARTH_RADIUS_M
    p2 = np.arcsin(np.clip(np.sin(p) * np.cos(delta) + np.cos(p) * np.sin(delta) * np.cos(b), -1, 1))
    lam2 = lam + np.arctan2(np.sin(b) * np.sin(delta) * np.cos(p), np.cos(delta) - np.sin(p) * np.sin(p2))
    return np.degrees(p2), (np.degrees(lam2) + 180.0) % 360.0 - 180.0


def _neighbours(lat1, lng1, lat2, lng2):
    return CELLS.neighbours(CELLS.cell_of(lat1, lng1), CELLS.cell_of(lat2, lng2))


def _detected(p, q) -> bool:
    """Whether the detector matches a ping at p with another user's ping at q (same time)."""
    ctx = Context(user=np.array([0, 1]), t=np.array([0, 60 * US]), lat=np.array([p[0], q[0]]),
                  lng=np.array([p[1], q[1]]), city=np.zeros(2, np.int64), new=np.array([True, False]))
    enc, _ = detect(ctx, cell_m=200.0, window_us=600 * US, repeat_gap_us=3600 * US)
    return len(enc.low) == 1


@st.composite
def _points(draw, max_lat):
    """A point, often on (or a hair from) a row edge and a column edge."""
    tiny = st.sampled_from([0.0, 1e-12, -1e-12, 1e-9, -1e-9])
    if draw(st.booleans()):
        lat = draw(st.floats(-max_lat, max_lat))
    else:
        lat = float(np.clip(draw(st.integers(-int(max_lat / H), int(max_lat / H))) * H + draw(tiny),
                            -max_lat, max_lat))
    if draw(st.booleans()):
        lng = draw(st.floats(-179.9, 179.9))
    else:
        width = float(CELLS.width(CELLS.cell_of(lat, 0.0)[0]))
        lng = float(np.clip(draw(st.integers(-int(179.9 / width), int(179.9 / width))) * width + draw(tiny),
                            -179.9, 179.9))
    return lat, lng


@settings(max_examples=400, deadline=None)
@given(_points(GUARANTEED_LAT), st.floats(0.0, 360.0), st.floats(0.0, 1.0))
def test_pairs_within_three_quarters_of_a_cell_always_match(p, bearing, fraction):
    lat, lng = _destination(p[0], p[1], bearing, fraction * ALWAYS_M)
    q = (float(lat), float(lng))
    assume(abs(q[0]) <= GUARANTEED_LAT and abs(q[1] - p[1]) < 1.0)  # no antimeridian in between
    assume(haversine_m(*p, *q) <= ALWAYS_M)
    assert _neighbours(*p, *q)
    assert _detected(p, q) and _detected(q, p)


@settings(max_examples=300, deadline=None)
@given(_points(90.0), st.floats(0.0, 360.0), st.floats(MAX_MATCH_M, 5000.0, exclude_min=True))
def test_pairs_beyond_the_maximum_never_match(p, bearing, distance):
    lat, lng = _destination(p[0], p[1], bearing, distance)
    q = (float(lat), float(lng))
    assume(haversine_m(*p, *q) > MAX_MATCH_M)
    assert not _neighbours(*p, *q)
    assert not _detected(p, q) and not _detected(q, p)


def test_random_pairs_keep_both_bounds():
    """Near pairs (within 150 m, |lat| up to the polar cap) all match; far pairs (beyond the
    maximum, anywhere up to the poles) never do."""
    rng = np.random.default_rng(2026)
    n = 400_000
    lat = np.concatenate((rng.uniform(-GUARANTEED_LAT, GUARANTEED_LAT, n // 2),
                          rng.uniform(-0.01, 0.01, n // 4), rng.uniform(80.0, GUARANTEED_LAT, n // 4)))
    lng = rng.uniform(-179.0, 179.0, n)
    lat2, lng2 = _destination(lat, lng, rng.uniform(0, 360, n), rng.uniform(0, ALWAYS_M, n))
    near = _haversine(lat, lng, lat2, lng2) <= ALWAYS_M
    inside = (np.abs(lat2) <= GUARANTEED_LAT) & (np.abs(lng2 - lng) < 1.0) & near
    assert inside.sum() > 0.99 * n
    assert _neighbours(lat[inside], lng[inside], lat2[inside], lng2[inside]).all()

    lat = np.concatenate((rng.uniform(-90, 90, n // 2), rng.uniform(89.0, 90.0, n // 4),
                          rng.uniform(-0.01, 0.01, n // 4)))
    lat2, lng2 = _destination(lat, lng, rng.uniform(0, 360, n), rng.uniform(0.9 * MAX_MATCH_M, 1000.0, n))
    distance = _haversine(lat, lng, lat2, lng2)
    matched = _neighbours(lat, lng, lat2, lng2)
    assert not matched[distance > MAX_MATCH_M].any()
    assert matched.any()


def _haversine(lat1, lng1, lat2, lng2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def test_the_maximum_is_the_least_upper_bound_of_the_rule():
    """From the rule: cells of one row span at most two widths, of adjacent rows the two widths
    plus the threshold; the farthest points of such a pair are at corners of the two rows."""
    rows = np.arange(-1, int(90 / H) + 1)
    spans = {"same row": (rows, np.minimum(2 * CELLS.width(rows), 180.0))}
    w, w2 = CELLS.width(rows), CELLS.width(rows + 1)
    spans["adjacent rows"] = (rows + 1, np.minimum(w + w2 + NEAR_FRACTION * np.maximum(w, w2), 180.0))
    farthest = {}
    for name, (other, span) in spans.items():
        corners = [(np.clip(a * H, -90, 90), np.clip(b * H, -90, 90))
                   for a in (rows, rows + 1) for b in (other, other + 1)]
        farthest[name] = np.max([_haversine(a, 0.0, b, span) for a, b in corners], axis=0)
    assert 455.5 < farthest["same row"].max() < 455.7
    assert 692.94 < farthest["adjacent rows"].max() <= MAX_MATCH_M
    below_85 = rows * H < 85.0
    assert 680.07 < farthest["adjacent rows"][below_85].max() < 680.2
    assert abs(farthest["adjacent rows"][rows == 0][0] - 200 * np.hypot(2, 2.75)) < 0.01
    # Real cells come within centimetres of it: in Berlin's rows, the column pair whose gap is
    # nearest the threshold, and two points at its far corners.
    row = 29_199
    w, w2 = float(CELLS.width(row)), float(CELLS.width(row + 1))
    c1 = np.arange(int(-179 / w), int(179 / w), dtype=np.int64)
    c2 = np.floor(((c1 + 1) * w + NEAR_FRACTION * w2) / w2).astype(np.int64)
    pick = int(np.argmax(c2 * w2 - (c1 + 1) * w))
    a = (row * H + 1e-12, c1[pick] * w + 1e-12)
    b = ((row + 2) * H - 1e-12, (c2[pick] + 1) * w2 - 1e-12)
    assert CELLS.cell_of(*a) == (row, c1[pick]) and CELLS.cell_of(*b) == (row + 1, c2[pick])
    assert _detected(a, b)
    assert farthest["adjacent rows"][rows == row][0] - 0.05 < haversine_m(*a, *b) < MAX_MATCH_M


@settings(max_examples=300, deadline=None)
@given(_points(90.0), st.floats(0.0, 360.0), st.floats(0.0, 900.0),
       st.tuples(*[st.floats(0.0, 1.0, exclude_max=True)] * 4))
def test_only_the_cells_decide(p, bearing, distance, fractions):
    lat, lng = _destination(p[0], p[1], bearing, distance)
    q = (float(lat), float(lng))
    p2, q2 = _in_same_cell(p, fractions[:2]), _in_same_cell(q, fractions[2:])
    assume(p2 is not None and q2 is not None)
    assert _detected(p, q) == _detected(p2, q2) == _detected(q2, p2) == _neighbours(*p, *q)


def _in_same_cell(point, fractions):
    """Another point of the cell holding ``point`` (None if rounding put it in the next one)."""
    (row,), (col,) = CELLS.cell_of([point[0]], [point[1]])
    width = float(CELLS.width(row))
    lat = min((row + fractions[0]) * H, 90.0)
    lng = min((col + fractions[1]) * width, 180.0)
    (row2,), (col2,) = CELLS.cell_of([lat], [lng])
    return (lat, lng) if (row2, col2) == (row, col) else None


def test_cells_are_at_least_a_cell_wide_up_to_the_polar_cap():
    rows = np.arange(-int(GUARANTEED_LAT / H) - 1, int(GUARANTEED_LAT / H) + 1)
    far = np.maximum(np.abs(rows), np.abs(rows + 1)) * H
    assert (CELLS.width(rows) * M_PER_DEG * np.cos(np.radians(far)) >= 200.0 * (1 - 1e-12)).all()
    assert abs(M_PER_DEG * H - 200.0) < 1e-9


def test_a_latitude_off_the_globe_is_refused():
    with pytest.raises(ValueError, match="latitude"):
        CELLS.cell_of([90.5], [0.0])
    far = Context(user=np.array([0, 1]), t=np.array([0, 0]), lat=np.array([0.0, -95.0]), lng=np.zeros(2),
                  city=np.zeros(2, np.int64), new=np.array([True, True]))
    with pytest.raises(ValueError, match="latitude"):
        detect(far, cell_m=200.0, window_us=600 * US, repeat_gap_us=3600 * US)
    with pytest.raises(ValueError, match="CROSSING_CELL_M"):
        Cells(0.5)
