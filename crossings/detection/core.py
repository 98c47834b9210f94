"""The exact crossing detector's core: pure numpy, no database.

Snaps every ping to a cell of a fixed tiling (``Cells``), matches each new ping against the
other users' pings in neighbour cells within the time window, and merges the matches into
encounter intervals per pair.  Design: docs/subsystems/detection.md; the definition and the
tiling's guarantees: docs/crossings.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.geo import M_PER_DEG

_QUERY_CHUNK = 1_000  # new pings per vectorised chunk: its arrays stay in the CPU caches
_MERGE_CHUNKS = 16  # detect() merges the segments of this many chunks at a time
NEAR_FRACTION = 0.75  # adjacent-row cells are neighbours when within this many (wider) cell widths
POLAR_CELLS = 20  # column widths stop growing this many cell heights from a pole
_RANGE_SLACK = 1e-7  # columns of slack (in column units) around a computed candidate range


# ------------------------------------------------------------------------ the tiling


@dataclass(frozen=True)
class Cells:
    """The partition of the plane (lat, lng in degrees) into cells at least ``cell_m`` wide.

    Rows of height ``cell_m`` (in latitude); in row r, columns of the longitude width at
    which ``cell_m`` fits at the row's edge farther from the equator (that latitude capped
    ``POLAR_CELLS`` rows short of the pole).  A cell is (row, col); ``neighbours`` is the
    matching rule.  Both are the definition (docs/crossings.md, "The tiling").
    """

    cell_m: float

    def __post_init__(self):
        if not 1.0 <= self.cell_m <= 10_000.0:
            raise ValueError("CROSSING_CELL_M must be between 1 and 10 000 metres")

    @property
    def row_height(self) -> float:
        """Height of a row in degrees of latitude."""
        return self.cell_m / M_PER_DEG

    @property
    def far_cap(self) -> float:
        """The latitude (degrees) at which column widths stop growing."""
        return 90.0 - POLAR_CELLS * self.row_height

    def width(self, rows):
        """Longitude width (degrees) of the columns of ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return np.empty(rows.shape)
        low = int(rows.min())
        return self.width_table(low, int(rows.max()))[rows - low]

    def width_table(self, low: int, high: int):
        """The widths of rows ``low..high``, one scalar formula per row: a row's width never
        depends on the array it is computed in (vectorised cosines may differ in the last bit)."""
        h, cap, cell_m = self.row_height, self.far_cap, self.cell_m
        if max(-low, high) > 90.0 / h + 3:  # (the rows next to the poles' rows are asked for)
            raise ValueError("latitude outside -90..90")
        return np.array([cell_m / (M_PER_DEG * math.cos(math.radians(min(max(abs(r), abs(r + 1)) * h, cap))))
                         for r in range(low, high + 1)])

    def cell_of(self, lat, lng):
        """(row, col) int64 arrays of the cells holding the points (lat, lng)."""
        rows = np.floor(np.asarray(lat, dtype=np.float64) / self.row_height).astype(np.int64)
        cols = np.floor(np.asarray(lng, dtype=np.float64) / self.width(rows)).astype(np.int64)
        return rows, cols

    def neighbours(self, cell_a, cell_b):
        """Whether cells a and b (each a (row, col) pair of arrays) are neighbours, elementwise.

        Same row: columns at most one apart.  Adjacent rows: the closed longitude intervals
        [c * w, (c + 1) * w] of the two cells come within ``NEAR_FRACTION`` of the wider
        width of each other.  Symmetric, and a pure function of the two cells.
        """
        ra, ca = (np.asarray(x, dtype=np.int64) for x in cell_a)
        rb, cb = (np.asarray(x, dtype=np.int64) for x in cell_b)
        return neighbours_with_widths(ra, ca, self.width(ra), rb, cb, self.width(rb))

    @property
    def col_bits(self) -> int:
        """Bits of a cell id taken by the (offset) column: the columns of every longitude in
        [-180, 180] and of a candidate range around them fit (and so do the rows)."""
        return (2 * (int(np.ceil(180.0 * M_PER_DEG / self.cell_m)) + 4)).bit_length()

    def ids(self, rows, cols):
        """Cell ids (int64): ordered by row, then column, consecutive columns consecutive ids."""
        offset = 1 << (self.col_bits - 1)
        return ((np.asarray(rows, dtype=np.int64) + offset) << self.col_bits) | (np.asarray(cols) + offset)

    def adjacent_cols(self, cols, w, w2):
        """For cells of columns ``cols`` and width ``w``, in an adjacent row of width ``w2``: the
        [lo, hi] column range (inclusive) holding every neighbour (``neighbours`` decides)."""
        near = NEAR_FRACTION * np.maximum(w, w2)
        lo = np.ceil((cols * w - near) / w2 - 1 - _RANGE_SLACK).astype(np.int64)
        hi = np.floor(((cols + 1) * w + near) / w2 + _RANGE_SLACK).astype(np.int64)
        return lo, hi


def neighbours_with_widths(ra, ca, wa, rb, cb, wb):
    """``Cells.neighbours`` for cells whose column widths ``Cells.width`` gave already."""
    gap = np.maximum(np.maximum(cb * wb - (ca + 1) * wa, ca * wa - (cb + 1) * wb), 0.0)
    adjacent = (np.abs(ra - rb) == 1) & (gap <= NEAR_FRACTION * np.maximum(wa, wb))
    return ((ra == rb) & (np.abs(ca - cb) <= 1)) | adjacent


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
    place_lat: np.ndarray  # the new ping of the segment (in a neighbour cell of every match)
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
    """The context ordered by (cell, user), with its (cell, user) groups.  Only the times are
    gathered in that order; the rest is read through ``order`` for the few pings that need it."""

    def __init__(self, ctx: Context, cells: Cells):
        self.ctx = ctx
        self.row_height = cells.row_height
        rows = np.floor(ctx.lat / cells.row_height).astype(np.int64)
        # The widths of every row of the context and of the rows next to them, once.
        self.row_low = int(rows.min()) - 1
        self.width_table = cells.width_table(self.row_low, int(rows.max()) + 1)
        widths = self.width(rows)
        cols = np.floor(ctx.lng / widths).astype(np.int64)  # Cells.cell_of
        cell = cells.ids(rows, cols)
        base = int(cell.min())
        cell_bits = max(1, (int(cell.max()) - base).bit_length())
        user_bits = max(1, int(ctx.user.max(initial=0)).bit_length())
        # Time order inside a group is not needed: every group is tested on its time span first.
        if cell_bits + user_bits <= 62:
            key = ((cell - base) << user_bits) | ctx.user
            order = np.argsort(key)
            key = key[order]
            first = np.flatnonzero(key[1:] != key[:-1]) + 1
        else:  # too wide for one int64 key: two keys
            order = np.lexsort((ctx.user, cell))
            c, u = cell[order], ctx.user[order]
            first = np.flatnonzero((c[1:] != c[:-1]) | (u[1:] != u[:-1])) + 1
        self.order = order
        self.t = ctx.t[order]
        self.group_start = np.concatenate(([0], first)).astype(np.int64)
        self.group_count = np.diff(np.concatenate((self.group_start, [len(order)])))
        at = order[self.group_start]
        self.group_cell = cell[at]
        self.group_row = rows[at]
        self.group_col = cols[at]
        self.group_width = widths[at]
        self.group_user = ctx.user[at]
        self.group_tmin = np.minimum.reduceat(self.t, self.group_start)
        self.group_tmax = np.maximum.reduceat(self.t, self.group_start)

    def width(self, rows):
        """``Cells.width`` of rows of the context or next to them."""
        return self.width_table[rows - self.row_low]

    def cells_of(self, q):
        """(row, col, width) of the cells of pings ``q`` (indices in the sorted order)."""
        ping = self.order[q]
        rows = np.floor(self.ctx.lat[ping] / self.row_height).astype(np.int64)
        widths = self.width(rows)
        return rows, np.floor(self.ctx.lng[ping] / widths).astype(np.int64), widths


def find_segments(ctx: Context, *, cell_m: float, window_us: int) -> Segments:
    """Every match of a new ping, reduced per (new ping, group) to [first, last] match time."""
    return Segments.concat(list(_segment_chunks(ctx, cell_m, window_us)))


def _segment_chunks(ctx: Context, cell_m: float, window_us: int):
    """``find_segments`` in parts, one per chunk of new pings."""
    cells = Cells(cell_m)
    if len(ctx) == 0 or not ctx.new.any():
        return
    s = _Sorted(ctx, cells)
    new_sorted = np.flatnonzero(ctx.new[s.order])
    for i in range(0, len(new_sorted), _QUERY_CHUNK):
        query, group, start, end, matches = _match_chunk(s, cells, new_sorted[i:i + _QUERY_CHUNK], window_us)
        # The place: the new ping itself (coarsened later anyway).
        ping = s.order[query]
        yield Segments(
            user_a=ctx.user[ping], user_b=s.group_user[group], start=start, end=end,
            place_lat=ctx.lat[ping], place_lng=ctx.lng[ping], place_city=ctx.city[ping],
            matches=int(matches), query=query,
        )


def _neighbour_groups(s: _Sorted, cells: Cells, q: np.ndarray):
    """(query, group) pairs: each query with every other user's group in a neighbour cell.

    Three id ranges per query (its own row's columns c-1..c+1, and the column range of each
    adjacent row that can hold a neighbour), then the exact rule on the adjacent rows' groups.
    """
    q_row, q_col, q_w = s.cells_of(q)
    lo_parts = [np.searchsorted(s.group_cell, cells.ids(q_row, q_col - 1), "left")]
    hi_parts = [np.searchsorted(s.group_cell, cells.ids(q_row, q_col + 1), "right")]
    for dr in (-1, 1):
        rows = q_row + dr
        lo, hi = cells.adjacent_cols(q_col, q_w, s.width(rows))
        lo_parts.append(np.searchsorted(s.group_cell, cells.ids(rows, lo), "left"))
        hi_parts.append(np.searchsorted(s.group_cell, cells.ids(rows, hi), "right"))
    lo = np.concatenate(lo_parts)
    counts = np.concatenate(hi_parts) - lo
    owner, groups = _expand(lo, counts)
    of_query = owner % len(q)  # the query's position in the chunk
    keep = s.group_user[groups] != s.ctx.user[s.order[q]][of_query]
    check = np.flatnonzero(keep & (owner >= len(q)))  # the adjacent rows' groups
    qc, gc = of_query[check], groups[check]
    keep[check] = neighbours_with_widths(q_row[qc], q_col[qc], q_w[qc],
                                         s.group_row[gc], s.group_col[gc], s.group_width[gc])
    return q[of_query[keep]], groups[keep]


def _match_chunk(s: _Sorted, cells: Cells, q: np.ndarray, window_us: int):
    """(query, group, first, last match time) per (new ping, group) with a match, and the
    number of ping pairs matched.  Every candidate is in a neighbour cell: only time decides."""
    query, group = _neighbour_groups(s, cells, q)
    t_q = s.t[query]
    g_min, g_max = s.group_tmin[group], s.group_tmax[group]
    # A group whose whole time span is within the window of the query matches as a whole.
    whole = (g_min >= t_q - window_us) & (g_max <= t_q + window_us)
    partial = np.flatnonzero(~whole & (g_max >= t_q - window_us) & (g_min <= t_q + window_us))
    # Match time: the later recorded_at.
    start, end = np.maximum(g_min, t_q), np.maximum(g_max, t_q)
    count = np.where(whole, s.group_count[group], 0)
    if len(partial):
        counts = s.group_count[group[partial]]
        _, cand = _expand(s.group_start[group[partial]], counts)
        c_t = s.t[cand]
        t_rep = np.repeat(t_q[partial], counts)
        ok = np.abs(c_t - t_rep) <= window_us
        match_t = np.maximum(c_t, t_rep)
        seg_starts = np.cumsum(counts) - counts
        start[partial] = np.minimum.reduceat(np.where(ok, match_t, np.iinfo(np.int64).max), seg_starts)
        end[partial] = np.maximum.reduceat(np.where(ok, match_t, -1), seg_starts)
        count[partial] = np.add.reduceat(ok.astype(np.int64), seg_starts)
    has = count > 0
    return query[has], group[has], start[has], end[has], count.sum()


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


def detect(ctx: Context, *, cell_m: float, window_us: int, repeat_gap_us: int) -> tuple[Encounters, int]:
    """Encounters made by the new pings of ``ctx`` (and the number of ping pairs matched).

    The segments are merged as they come, ``_MERGE_CHUNKS`` chunks at a time (the merge is exact
    for any mix of intervals), so a large batch never holds all its segments at once.
    """
    if window_us > repeat_gap_us:
        raise ValueError("CROSSING_WINDOW_S must not exceed CROSSING_REPEAT_GAP_S")
    merged, pending, matches = [], [], 0
    for seg in _segment_chunks(ctx, cell_m, window_us):
        matches += seg.matches
        pending.append(seg)
        if len(pending) == _MERGE_CHUNKS:
            merged.append(_as_segments(merge_intervals(Segments.concat(pending), repeat_gap_us=repeat_gap_us)))
            pending = []
    if len(merged) == 0:
        return merge_intervals(Segments.concat(pending), repeat_gap_us=repeat_gap_us), matches
    return merge_intervals(Segments.concat([*merged, *pending]), repeat_gap_us=repeat_gap_us), matches


def _as_segments(enc: Encounters) -> Segments:
    return Segments(enc.low, enc.high, enc.start, enc.end, enc.place_lat, enc.place_lng, enc.place_city)
