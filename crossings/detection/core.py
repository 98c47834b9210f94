"""The exact crossing detector's core: pure numpy, no database.

Matches every new ping of a context against the others (grid cells, planar test, haversine
band) and merges the matches into encounter intervals per pair.
Design: docs/subsystems/detection.md; the definition: docs/crossings.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.geo import EARTH_RADIUS_M

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


@dataclass
class Context:
    """Pings to match, as parallel arrays (one element per ping)."""

    user: np.ndarray  # int64 user codes (dense, >= 0)
    t: np.ndarray  # int64 epoch microseconds
    lat: np.ndarray  # float64 degrees
    lng: np.ndarray
    city: np.ndarray  # int64 city ids (0: none)
    new: np.ndarray  # bool: the pings whose matches are wanted

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class Segments:
    """Matches reduced per (new ping, other user's group): one row per non-empty group."""

    user_a: np.ndarray
    user_b: np.ndarray
    start: np.ndarray  # earliest match time (us)
    end: np.ndarray  # latest match time (us)
    place_lat: np.ndarray  # the new ping of the segment (within the radius of every match)
    place_lng: np.ndarray
    place_city: np.ndarray
    matches: int = 0  # ping pairs within the bounds (for reporting density)
    query: np.ndarray | None = None  # the new ping of each row (context-sorted index; for reporting)

    @classmethod
    def empty(cls) -> Segments:
        i, f = np.empty(0, np.int64), np.empty(0, np.float64)
        return cls(i, i, i, i, f, f, i, 0, i)

    @classmethod
    def concat(cls, parts: list[Segments]) -> Segments:
        parts = [p for p in parts if len(p.user_a)] or [cls.empty()]
        fields = ("user_a", "user_b", "start", "end", "place_lat", "place_lng", "place_city")
        merged = {name: np.concatenate([getattr(p, name) for p in parts]) for name in fields}
        queries = [p.query for p in parts if p.query is not None]
        query = np.concatenate(queries) if len(queries) == len(parts) else None
        return cls(**merged, matches=sum(p.matches for p in parts), query=query)


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


# ------------------------------------------------------------------- encounters


@dataclass
class Encounters:
    """Merged encounter intervals, sorted by (low, high, start); one row per encounter."""

    low: np.ndarray
    high: np.ndarray
    start: np.ndarray
    end: np.ndarray
    place_lat: np.ndarray  # place of the latest match inside this encounter
    place_lng: np.ndarray
    place_city: np.ndarray


def merge_intervals(seg: Segments, *, repeat_gap_us: int) -> Encounters:
    """Merge [start, end] intervals per unordered pair into encounters (gap > repeat_gap splits).

    Exact for any mix of old and new intervals: inside an interval, consecutive matches
    are at most ``repeat_gap`` apart, so two intervals belong to one encounter exactly when
    the later starts no more than ``repeat_gap`` after the earlier ends.  Most pairs of a
    batch are one encounter (their latest start is within ``repeat_gap`` of their earliest
    end); they are merged with one sort by pair, the others with a full sort.
    """
    low = np.minimum(seg.user_a, seg.user_b)
    high = np.maximum(seg.user_a, seg.user_b)
    if len(low) == 0:
        e = np.empty(0, np.int64)
        return Encounters(e, e, e, e, np.empty(0), np.empty(0), e)
    high_bits = max(1, int(high.max()).bit_length())
    if high_bits * 2 > 62:
        return _merge_general(low, high, seg, repeat_gap_us)
    code = (low << high_bits) | high
    order = np.argsort(code)
    code_s = code[order]
    first = np.flatnonzero(np.concatenate(([True], code_s[1:] != code_s[:-1])))
    start_s, end_s = seg.start[order], seg.end[order]
    min_start = np.minimum.reduceat(start_s, first)
    max_end = np.maximum.reduceat(end_s, first)
    simple = np.maximum.reduceat(start_s, first) - np.minimum.reduceat(end_s, first) <= repeat_gap_us
    pair_of = np.repeat(np.arange(len(first)), np.diff(np.append(first, len(code_s))))
    # The place of a one-encounter pair: that of its interval with the latest end.
    at_end = np.flatnonzero(end_s == max_end[pair_of])[::-1]
    pick = np.empty(len(first), np.int64)
    pick[pair_of[at_end]] = order[at_end]
    simple_enc = Encounters(
        low=low[order[first]][simple], high=high[order[first]][simple],
        start=min_start[simple], end=max_end[simple],
        place_lat=seg.place_lat[pick[simple]], place_lng=seg.place_lng[pick[simple]],
        place_city=seg.place_city[pick[simple]],
    )
    if simple.all():
        return simple_enc
    rest = order[~simple[pair_of]]
    complex_enc = _merge_general(low[rest], high[rest], _take(seg, rest), repeat_gap_us)
    return _concat_encounters(simple_enc, complex_enc)


def _take(seg: Segments, idx: np.ndarray) -> Segments:
    return Segments(seg.user_a[idx], seg.user_b[idx], seg.start[idx], seg.end[idx],
                    seg.place_lat[idx], seg.place_lng[idx], seg.place_city[idx])


def _concat_encounters(a: Encounters, b: Encounters) -> Encounters:
    fields = ("low", "high", "start", "end", "place_lat", "place_lng", "place_city")
    merged = {name: np.concatenate((getattr(a, name), getattr(b, name))) for name in fields}
    order = np.lexsort((merged["start"], merged["high"], merged["low"]))
    return Encounters(**{name: value[order] for name, value in merged.items()})


def _merge_general(low, high, seg: Segments, repeat_gap_us: int) -> Encounters:
    """The full merge: sort by (pair, start), then split where a start is past the running end."""
    order = np.lexsort((-seg.end, seg.start, high, low))
    low, high = low[order], high[order]
    start, end = seg.start[order], seg.end[order]
    same_pair = np.concatenate(([False], (low[1:] == low[:-1]) & (high[1:] == high[:-1])))
    # Running maximum of ends inside each pair: shift each pair's times above the previous one's.
    pair_no = np.cumsum(~same_pair)
    base = start.min()
    span = int(end.max() - base) + repeat_gap_us + 1
    running_end = np.maximum.accumulate(end - base + pair_no * span) - pair_no * span + base
    prev_end = np.concatenate(([0], running_end[:-1]))
    new_encounter = ~same_pair | (start - prev_end > repeat_gap_us)
    first = np.flatnonzero(new_encounter)
    enc_end = np.maximum.reduceat(end, first)
    # The place of each encounter: that of its interval with the latest end.
    enc_no = np.cumsum(new_encounter) - 1
    at_end = np.flatnonzero(end == enc_end[enc_no])
    pick = np.full(len(first), -1, np.int64)
    pick[enc_no[at_end[::-1]]] = at_end[::-1]
    return Encounters(
        low=low[first], high=high[first], start=start[first], end=enc_end,
        place_lat=seg.place_lat[order][pick], place_lng=seg.place_lng[order][pick],
        place_city=seg.place_city[order][pick],
    )


def detect(ctx: Context, *, radius_m: float, window_us: int, repeat_gap_us: int) -> tuple[Encounters, int]:
    """Encounters made by the new pings of ``ctx`` (and the number of ping pairs matched)."""
    if window_us > repeat_gap_us:
        raise ValueError("CROSSING_WINDOW_S must not exceed CROSSING_REPEAT_GAP_S")
    seg = find_segments(ctx, radius_m=radius_m, window_us=window_us)
    return merge_intervals(seg, repeat_gap_us=repeat_gap_us), seg.matches
