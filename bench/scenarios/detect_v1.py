"""The first crossing matcher (haversine radius), kept for the benchmark's comparison only.

``crossings_detect core`` runs it beside the cell matcher of crossings/detection/core.py on
the same traffic; nothing else imports it.  A verbatim copy of its grid and candidate search
(the encounter merge is shared): docs/benchmarks/crossings.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.geo import EARTH_RADIUS_M
from crossings.detection.core import Context, Encounters, Segments, merge_intervals

_BAND = 1e-3  # relative width of the band around the radius tested with the exact haversine
_PLANAR_MAX_LAT = 80.0  # beyond this latitude every candidate gets the exact haversine
_QUERY_CHUNK = 1_000  # new pings per vectorised chunk: its arrays stay in the CPU caches


def haversine_h(lat1, lng1, lat2, lng2):
    """The haversine term h (distance = 2 R asin(sqrt(h))); symmetric in its two points."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat = np.radians(np.asarray(lat2, dtype=np.float64) - lat1)
    dlng = np.radians(np.asarray(lng2, dtype=np.float64) - lng1)
    return np.sin(dlat * 0.5) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlng * 0.5) ** 2


def radius_h(radius_m: float) -> float:
    """The value of ``haversine_h`` at exactly ``radius_m``."""
    return float(np.sin(radius_m / (2 * EARTH_RADIUS_M)) ** 2)


def within_radius(lat1, lng1, lat2, lng2, radius_m: float):
    """The distance predicate of docs/crossings.md; the detector and the reference both use it."""
    return haversine_h(lat1, lng1, lat2, lng2) <= radius_h(radius_m)


# ------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Grid:
    radius_m: float

    @property
    def row_height(self) -> float:
        return float(np.degrees(self.radius_m / EARTH_RADIUS_M)) * (1 + 1e-6)

    def rows(self, lat):
        return np.floor(np.asarray(lat) / self.row_height).astype(np.int64)

    def col_width(self, rows):
        """Longitude width (degrees) of the cells of ``rows``: the largest longitude gap two
        pings within the radius can have anywhere in rows r-1..r+1."""
        h = self.row_height
        far = np.maximum(np.abs(rows - 1), np.abs(rows + 2)) * h
        far = np.minimum(far, 89.999)
        ratio = np.sin(self.radius_m / (2 * EARTH_RADIUS_M)) / np.cos(np.radians(far))
        width = np.degrees(2 * np.arcsin(np.minimum(ratio, 1.0))) * (1 + 1e-6)
        return np.minimum(width, 360.0)

    def cols(self, lng, rows):
        return np.floor(np.asarray(lng) / self.col_width(rows)).astype(np.int64)


_ROW_OFFSET = 1 << 20
_COL_OFFSET = 1 << 22


def _cell_ids(rows, cols):
    return ((rows + _ROW_OFFSET) << 24) | (cols + _COL_OFFSET)


# --------------------------------------------------------------------- the matcher


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [starts[i], starts[i] + counts[i]): (owner i of each element, element index)."""
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    index = np.arange(total, dtype=np.int64) - np.repeat(offsets - starts, counts)
    return owner, index


class _Sorted:
    """The context sorted by (cell, user), with its (cell, user) groups."""

    def __init__(self, ctx: Context, grid: Grid):
        rows = grid.rows(ctx.lat)
        cells = _cell_ids(rows, grid.cols(ctx.lng, rows))
        user_bits = max(1, int(ctx.user.max(initial=0)).bit_length())
        # (cell, user) fits one int64: cell ids use 44 bits, users up to 19 bits.
        if user_bits > 19:
            raise ValueError("too many users in one context")
        group_key = (cells << user_bits) | ctx.user
        # Time order inside a group is not needed: every ping of a group is a candidate.
        order = np.argsort(group_key)
        self.order = order
        self.t = ctx.t[order]
        self.lat = ctx.lat[order]
        self.lng = ctx.lng[order]
        self.city = ctx.city[order]
        self.user = ctx.user[order]
        keys = group_key[order]
        boundaries = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        self.group_start = np.concatenate(([0], boundaries)).astype(np.int64)
        self.group_count = np.diff(np.concatenate((self.group_start, [len(keys)])))
        self.group_cell = keys[self.group_start] >> user_bits
        self.group_user = self.user[self.group_start]


def find_segments(ctx: Context, *, radius_m: float, window_us: int) -> Segments:
    """Every match of a new ping, reduced per (new ping, group) to [first, last] match time."""
    if len(ctx) == 0 or not ctx.new.any():
        return Segments.empty()
    grid = Grid(radius_m)
    s = _Sorted(ctx, grid)
    new_sorted = np.flatnonzero(ctx.new[s.order])
    parts = [
        _match_chunk(s, grid, new_sorted[i:i + _QUERY_CHUNK], radius_m, window_us)
        for i in range(0, len(new_sorted), _QUERY_CHUNK)
    ]
    return Segments.concat(parts)


def _neighbour_groups(s: _Sorted, grid: Grid, q: np.ndarray):
    """(query, group) pairs: each query with every group in its nine neighbour cells."""
    q_rows = grid.rows(s.lat[q])
    lo_parts, hi_parts = [], []
    for dr in (-1, 0, 1):
        rows = q_rows + dr
        base_cols = grid.cols(s.lng[q], rows)
        for dc in (-1, 0, 1):
            cell = _cell_ids(rows, base_cols + dc)
            lo_parts.append(np.searchsorted(s.group_cell, cell, "left"))
            hi_parts.append(np.searchsorted(s.group_cell, cell, "right"))
    lo = np.concatenate(lo_parts)
    counts = np.concatenate(hi_parts) - lo
    owner, groups = _expand(lo, counts)
    queries = np.tile(q, 9)[owner]
    keep = s.group_user[groups] != s.user[queries]
    return queries[keep], groups[keep]


def _match_chunk(s: _Sorted, grid: Grid, q: np.ndarray, radius_m: float, window_us: int) -> Segments:
    qg_query, qg_group = _neighbour_groups(s, grid, q)
    if len(qg_query) == 0:
        return Segments.empty()
    counts = s.group_count[qg_group]
    seg_of_cand, cand = _expand(s.group_start[qg_group], counts)
    # Query-side values go per (query, group) first, then are repeated per candidate.
    q_t = s.t[qg_query]
    q_lat = s.lat[qg_query]
    q_k = _lng_scale(q_lat)
    c_t = s.t[cand]
    t_q = np.repeat(q_t, counts)
    dt = c_t - t_q
    ok = np.abs(dt) <= window_us
    # Distance: a planar test decides all but a thin band around the radius.
    dy = s.lat[cand] - np.repeat(q_lat, counts)
    dx = (s.lng[cand] - np.repeat(s.lng[qg_query], counts)) * np.repeat(q_k, counts)
    d2 = dx * dx + dy * dy
    scale = (np.radians(1.0) * EARTH_RADIUS_M) ** 2
    inside = d2 <= (radius_m * (1 - _BAND)) ** 2 / scale
    maybe = ok & ~inside & (d2 <= (radius_m * (1 + _BAND)) ** 2 / scale)
    polar = np.abs(q_lat) >= _PLANAR_MAX_LAT
    if polar.any():
        maybe |= ok & np.repeat(polar, counts)
        inside &= ~np.repeat(polar, counts)
    ok &= inside
    if maybe.any():
        idx = np.flatnonzero(maybe)
        cq = qg_query[seg_of_cand[idx]]
        ok[idx] = within_radius(s.lat[cq], s.lng[cq], s.lat[cand[idx]], s.lng[cand[idx]], radius_m)
    n_matches = int(np.count_nonzero(ok))
    if n_matches == 0:
        return Segments.empty()
    # Match time: the later recorded_at.
    match_t = np.maximum(c_t, t_q)
    seg_starts = np.cumsum(counts) - counts
    seg_min = np.minimum.reduceat(np.where(ok, match_t, np.iinfo(np.int64).max), seg_starts)
    seg_max = np.maximum.reduceat(np.where(ok, match_t, -1), seg_starts)
    has = seg_max >= 0
    # The place: the new ping itself (within the radius of the match; coarsened later anyway).
    place = qg_query[has]
    return Segments(
        user_a=s.user[place],
        user_b=s.group_user[qg_group[has]],
        start=seg_min[has],
        end=seg_max[has],
        place_lat=s.lat[place],
        place_lng=s.lng[place],
        place_city=s.city[place],
        matches=n_matches,
        query=place,
    )


def _lng_scale(lat):
    """Degrees of longitude to degrees of latitude at ``lat`` (for the planar distance)."""
    return np.cos(np.radians(lat))


def detect(ctx: Context, *, radius_m: float, window_us: int, repeat_gap_us: int) -> tuple[Encounters, int]:
    """Encounters made by the new pings of ``ctx`` (and the number of ping pairs matched)."""
    if window_us > repeat_gap_us:
        raise ValueError("CROSSING_WINDOW_S must not exceed CROSSING_REPEAT_GAP_S")
    seg = find_segments(ctx, radius_m=radius_m, window_us=window_us)
    return merge_intervals(seg, repeat_gap_us=repeat_gap_us), seg.matches
