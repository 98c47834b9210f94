"""The detector's database side: claim a batch, load pings, record crossings, move the watermark.

One run is one transaction under a ``DetectorState`` row lock (one row per detection shard);
caches are bumped and ``crossing_recorded`` is sent after commit.
Design: docs/subsystems/detection.md (shards: its section "Shards").
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC

import numpy as np
import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from h3.api import basic_int

from accounts import selectors as account_selectors
from accounts.models import User
from core import geo
from core.observability import metrics
from crossings import cache as cx_cache
from crossings import signals
from crossings.detection.core import Context, Encounters, Segments, detect, find_segments, merge_intervals
from crossings.models import CityArea, DetectorState
from locations import selectors as location_selectors
from locations.models import City

logger = logging.getLogger(__name__)

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds (binary timestamptz origin)
US = 1_000_000
CLUSTER_SLACK_US = 5 * 60 * US  # time clusters closer than this are loaded together
# pg_advisory_xact_lock keys.  STORE: the daily cap's lock, held from counting a run's new pairs
# to the commit, so two shards never both admit a user's new people past the cap (the records
# themselves are locked row by row, docs/subsystems/detection.md "Shards").
# CONFIG: remaking the watermark rows when CROSSING_SHARDS changes.
STORE_LOCK_ID = 7_261_934_101
CONFIG_LOCK_ID = 7_261_934_102
# A sharded run reads the pings within REACH_CELLS x CROSSING_CELL_M of its new pings: more than
# the farthest two matching positions can be (3.465-3.467 cells, docs/crossings.md).
REACH_CELLS = 3.5
# Closer than this to a pole, a sharded run reads its whole time range (tiles grow too wide).
AREA_MAX_LAT = 85.0

_ROW = np.dtype([
    ("nfields", ">i2"),
    ("l_user", ">i4"), ("user_hi", ">u8"), ("user_lo", ">u8"),
    ("l_t", ">i4"), ("t", ">i8"),
    ("l_lat", ">i4"), ("lat", ">f8"),
    ("l_lng", ">i4"), ("lng", ">f8"),
    ("l_city", ">i4"), ("city", ">i4"),
    ("l_new", ">i4"), ("new", "u1"),
])
_COPY_HEADER = 19


@dataclass
class DetectionResult:
    skipped: bool = False
    pings: int = 0
    context_pings: int = 0
    matches: int = 0
    pairs: int = 0
    changed: int = 0  # records whose API view changed (new pair or new encounter)
    written: int = 0  # records written (changed, or a lagging encounter end refreshed)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    shards: int = 1  # shards this result covers
    shards_skipped: int = 0  # of which another detector held the lock

    def summary(self) -> str:
        if self.skipped:
            return "another detector is running; skipped"
        text = (f"{self.pings} new pings (context {self.context_pings}), {self.matches} ping pairs matched, "
                f"{self.pairs} pairs, {self.changed} crossings created or changed ({self.written} records written), "
                f"in {self.seconds:.2f} s")
        if self.shards > 1:
            text += f" over {self.shards} shards"
            if self.shards_skipped:
                text += f" ({self.shards_skipped} skipped: another detector held them)"
        return text

    @classmethod
    def combine(cls, results: list[DetectionResult]) -> DetectionResult:
        """The sum of the runs of several shards (skipped only if every shard was)."""
        total = cls(skipped=all(r.skipped for r in results), shards=len(results),
                    shards_skipped=sum(r.skipped for r in results))
        for r in results:
            for name in ("pings", "context_pings", "matches", "pairs", "changed", "written", "seconds"):
                setattr(total, name, getattr(total, name) + getattr(r, name))
            for name, seconds in r.timings.items():
                total.timings[name] = total.timings.get(name, 0.0) + seconds
        return total


def _params():
    return (float(settings.CROSSING_CELL_M), int(settings.CROSSING_WINDOW_S) * US,
            int(settings.CROSSING_REPEAT_GAP_S) * US)


def _match_args() -> dict:
    """The matcher's keyword arguments (the definition's parameters) for ``find_segments``."""
    cell_m, window, _gap = _params()
    return {"cell_m": cell_m, "window_us": window}


# ------------------------------------------------------------------------- claim


def shard_count() -> int:
    count = int(settings.CROSSING_SHARDS)
    if not 1 <= count <= 1000:
        raise ValueError(f"CROSSING_SHARDS must be between 1 and 1000, not {count}")
    return count


def shard_of(city_id: int, count: int) -> int:
    """The detection shard of a city (``NO_CITY``, 0, is shard 0's): ``city_id % count``."""
    return int(city_id) % count


def _claim(index: int, count: int, wait: bool) -> DetectorState | None:
    query = DetectorState.objects.select_for_update(skip_locked=not wait)
    return query.filter(pk=index + 1, shards=count).first()


def _reconfigure(count: int) -> None:
    """Make the watermark rows 1..count for ``count`` shards (first use, or CROSSING_SHARDS changed).

    Waits for every running detector (it locks every row), then gives each new shard the
    lowest watermark of the old rows: no ping is skipped, and the pings some shard had
    already processed are processed again, which changes no record (the merge is idempotent).
    Commits on its own (unless called inside a transaction), so the other shards need not
    wait for the caller's run.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CONFIG_LOCK_ID])
        rows = list(DetectorState.objects.select_for_update().order_by("pk"))
        if sorted((r.pk, r.shards) for r in rows) == [(i + 1, count) for i in range(count)]:
            return  # another detector did it while this one waited
        watermark = min((r.xid_watermark for r in rows), default=0)
        received = [r.received_after for r in rows]
        received_after = min(received) if rows and None not in received else None  # type: ignore[type-var]
        DetectorState.objects.all().delete()
        DetectorState.objects.bulk_create([
            DetectorState(pk=i + 1, shards=count, xid_watermark=watermark, received_after=received_after)
            for i in range(count)
        ])
        if rows:
            logger.warning("detection shards: %d watermark rows remade for CROSSING_SHARDS=%d from watermark %d",
                           len(rows), count, watermark)


def lock_cap(cursor) -> None:
    """Take the daily cap's lock until commit: one store at a time counts and keeps new pairs."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STORE_LOCK_ID])


def _horizon(cursor) -> tuple[int, object]:
    """(xid horizon, received_after for the next run).

    The horizon is the oldest transaction id still running *in this database* (or the next
    id): every ping below it is final.  Not ``pg_snapshot_xmin``, which waits for every
    transaction of the cluster (another database's long transaction would stall detection).
    The next id is read first and the activity after it (in one fresh statistics snapshot),
    so a transaction that got its id in between is still seen running.  Only client
    backends insert pings: autovacuum's transactions are ignored (an ANALYZE holds an id).
    """
    cursor.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
    next_xid = cursor.fetchone()[0]
    cursor.execute("SELECT pg_stat_clear_snapshot()")
    cursor.execute(
        "SELECT array_agg(backend_xid::text::bigint) "
        "FILTER (WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'), "
        "least(now(), min(xact_start)) - interval '1 second' "
        "FROM pg_stat_activity WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    running, received_after = cursor.fetchone()
    horizon = next_xid
    for xid32 in running or []:
        horizon = min(horizon, widen_xid(xid32, next_xid))
    return horizon, received_after


def widen_xid(xid32: int, next_xid: int) -> int:
    """The 64-bit id of a running transaction's 32-bit ``xid``, near ``next_xid``.

    Running ids are within 2**31 of the next id; one assigned after ``next_xid`` was read
    comes out at or above it (so it never lowers the horizon).
    """
    diff = (xid32 - next_xid) % (1 << 32)
    return next_xid + diff if diff < (1 << 31) else next_xid - ((1 << 32) - diff)


# -------------------------------------------------------------------------- load

def _batch_times(cursor, state: DetectorState, xmin: int) -> np.ndarray:
    sql, params = location_selectors.pings_since_watermark_sql("recorded_at", state.xid_watermark, xmin,
                                                               state.received_after)
    rows = _copy_rows(cursor, sql, params, _TIME_ROW)
    return np.sort(rows["t"].astype(np.int64) + PG_EPOCH_US)


def _batch_points(cursor, state: DetectorState, xmin: int, shard: tuple[int, int]):
    """A shard's batch: times (sorted), latitudes and longitudes of its new pings."""
    sql, params = location_selectors.pings_since_watermark_sql("recorded_at, lat, lng", state.xid_watermark, xmin,
                                                               state.received_after, shard=shard)
    rows = _copy_rows(cursor, sql, params, _POINT_ROW)
    t = rows["t"].astype(np.int64) + PG_EPOCH_US
    order = np.argsort(t, kind="stable")
    return t[order], rows["lat"].astype(np.float64)[order], rows["lng"].astype(np.float64)[order]


_TIME_ROW = np.dtype([("n", ">i2"), ("l", ">i4"), ("t", ">i8")])
_POINT_ROW = np.dtype([("n", ">i2"), ("l", ">i4"), ("t", ">i8"), ("l_lat", ">i4"), ("lat", ">f8"),
                       ("l_lng", ">i4"), ("lng", ">f8")])


def tile_keys(lat: np.ndarray, lng: np.ndarray, tile_deg: float) -> np.ndarray:
    """The tile of each position, as ``locations.selectors.Area`` computes it in SQL."""
    return np.floor(lat / tile_deg).astype(np.int64) * (1 << 32) + np.floor(lng / tile_deg).astype(np.int64)


def shard_area(lat: np.ndarray, lng: np.ndarray, cities: list[tuple[int, float, float, float]]):
    """Where a shard must read context for new pings at ``lat``/``lng``: every tile within reach
    (REACH_CELLS cells) of one, and the cities whose circle is nowhere near those tiles (their
    partitions are skipped).  None: read everything (a ping near a pole).

    ``cities``: (id, lat, lng, radius_km) of every city, and of its former circles (``CityArea``):
    a ping of a city lies in one of its circles.  A city is far only if all its circles are.
    """
    if len(lat) == 0 or float(np.max(np.abs(lat))) > AREA_MAX_LAT:
        return None
    tile = REACH_CELLS * float(settings.CROSSING_CELL_M) / geo.M_PER_DEG
    rows = np.floor(lat / tile).astype(np.int64)
    cols = np.floor(lng / tile).astype(np.int64)
    # A position within reach is at most one tile row away, and at most 1 / cos(latitude) tile
    # widths of longitude (at the farther latitude); one more of each for rounding.
    widest = math.cos(math.radians(min(90.0, float(np.max(np.abs(lat))) + 2 * tile)))
    if widest <= 0.05:
        return None
    k = math.ceil(1.0 / widest) + 1
    cells = np.unique(np.stack((rows, cols), axis=1), axis=0)
    dr, dc = np.meshgrid(np.arange(-2, 3), np.arange(-k, k + 1), indexing="ij")
    all_rows = (cells[:, 0, None] + dr.reshape(1, -1)).reshape(-1)
    all_cols = (cells[:, 1, None] + dc.reshape(1, -1)).reshape(-1)
    keys = np.unique(all_rows * (1 << 32) + all_cols)
    t_rows, t_cols = keys >> 32, keys - ((keys >> 32) << 32)
    far, near = set(), set()
    for city_id, c_lat, c_lng, radius_km in cities:
        dlat = math.degrees((radius_km * 1000.0 * 1.01 + 1000.0) / geo.EARTH_RADIUS_M)
        edge = abs(c_lat) + dlat
        if edge > AREA_MAX_LAT:
            near.add(int(city_id))
            continue
        dlng = dlat / math.cos(math.radians(edge))
        r0, r1 = math.floor((c_lat - dlat) / tile) - 1, math.floor((c_lat + dlat) / tile) + 1
        c0, c1 = math.floor((c_lng - dlng) / tile) - 1, math.floor((c_lng + dlng) / tile) + 1
        if np.any((t_rows >= r0) & (t_rows <= r1) & (t_cols >= c0) & (t_cols <= c1)):
            near.add(int(city_id))
        else:
            far.add(int(city_id))
    return location_selectors.Area(tile_deg=tile, tiles=keys.tolist(), far_cities=sorted(far - near))


def _copy_rows(cursor, sql: str, params, row: np.dtype) -> np.ndarray:
    """``sql``'s rows, streamed by binary COPY, as a numpy array of fixed-width ``row`` records."""
    copied = _copy_out(cursor, sql, params)
    return np.frombuffer(copied, dtype=row, offset=_COPY_HEADER, count=(len(copied) - _COPY_HEADER - 2) // row.itemsize)


def _utc(us: int):
    return np.datetime64(us, "us").astype(object).replace(tzinfo=UTC)


def _copy_out(cursor, sql: str, params) -> bytes:
    """Run ``COPY (sql) TO STDOUT (FORMAT BINARY)`` and return the raw bytes (COPY takes no
    bound parameters, so they are merged client-side)."""
    conn = cursor.connection
    query = psycopg.ClientCursor(conn).mogrify(sql, params)
    chunks = []
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
        for data in copy:
            chunks.append(bytes(data))
    return b"".join(chunks)


def time_clusters(times_us: np.ndarray, window_us: int) -> list[tuple[int, int, int, int]]:
    """Group sorted batch times into clusters: (first, last, i0, i1) with [i0, i1) the pings."""
    if len(times_us) == 0:
        return []
    breaks = np.flatnonzero(np.diff(times_us) > 2 * window_us + CLUSTER_SLACK_US) + 1
    bounds = np.concatenate(([0], breaks, [len(times_us)]))
    return [(int(times_us[a]), int(times_us[b - 1]), int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def _load_context(cursor, lo_us: int, hi_us: int, watermark: int, xmin: int,
                  shard: tuple[int, int] | None = None, area=None) -> np.ndarray:
    sql, params = location_selectors.pings_recorded_between_sql("user_id, recorded_at, lat, lng, city_id",
                                                                _utc(lo_us), _utc(hi_us), watermark, xmin,
                                                                shard=shard, area=area)
    return _copy_rows(cursor, sql, params, _ROW)


@dataclass
class _Users:
    """Dense codes for user ids; code order is uuid order (so low/high follow uuids)."""

    hi: np.ndarray
    lo: np.ndarray

    def uuid(self, code: int):
        return uuid.UUID(int=(int(self.hi[code]) << 64) | int(self.lo[code]))


def _context_from_rows(rows: np.ndarray) -> tuple[Context, _Users]:
    hi = rows["user_hi"].astype(np.uint64)
    lo = rows["user_lo"].astype(np.uint64)
    order = np.lexsort((lo, hi))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (hi[order][1:] != hi[order][:-1]) | (lo[order][1:] != lo[order][:-1])
    codes_sorted = np.cumsum(first) - 1
    codes = np.empty(len(order), dtype=np.int64)
    codes[order] = codes_sorted
    users = _Users(hi=hi[order][first], lo=lo[order][first])
    ctx = Context(
        user=codes,
        t=rows["t"].astype(np.int64) + PG_EPOCH_US,
        lat=rows["lat"].astype(np.float64),
        lng=rows["lng"].astype(np.float64),
        city=rows["city"].astype(np.int64),
        new=rows["new"].astype(bool),
    )
    return ctx, users


# -------------------------------------------------------------------------- store


_INCOMING = np.dtype([
    ("nfields", ">i2"),
    ("l_low", ">i4"), ("low_hi", ">u8"), ("low_lo", ">u8"),
    ("l_high", ">i4"), ("high_hi", ">u8"), ("high_lo", ">u8"),
    ("l_s", ">i4"), ("s", ">i8"),
    ("l_e", ">i4"), ("e", ">i8"),
    ("l_lat", ">i4"), ("lat", ">f8"),
    ("l_lng", ">i4"), ("lng", ">f8"),
    ("l_cell", ">i4"), ("cell", ">i8"),
    ("l_city", ">i4"), ("city", ">i4"),
])
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8


def coarse_cells(lat: np.ndarray, lng: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H3 resolution-7 cells (as integers) and their centres; h3 is called once per distinct point."""
    points = np.stack((lat, lng), axis=1)
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    cells = np.fromiter((basic_int.latlng_to_cell(a, b, geo.PLACE_RESOLUTION) for a, b in unique.tolist()),
                        dtype=np.uint64, count=len(unique))
    centres = np.array([basic_int.cell_to_latlng(int(c)) for c in cells]).reshape(-1, 2)
    inverse = inverse.reshape(-1)
    return cells.astype(np.int64)[inverse], centres[inverse, 0], centres[inverse, 1]


def encounter_rows(enc: Encounters, users: _Users) -> bytes:
    """The encounters as a binary COPY stream (fixed-width rows, built by numpy in one go)."""
    rows = np.zeros(len(enc.low), dtype=_INCOMING)
    rows["nfields"] = 8
    for name, size in (("l_low", 16), ("l_high", 16), ("l_s", 8), ("l_e", 8), ("l_lat", 8), ("l_lng", 8),
                       ("l_cell", 8), ("l_city", 4)):
        rows[name] = size
    rows["low_hi"], rows["low_lo"] = users.hi[enc.low], users.lo[enc.low]
    rows["high_hi"], rows["high_lo"] = users.hi[enc.high], users.lo[enc.high]
    rows["s"], rows["e"] = enc.start, enc.end
    rows["cell"], rows["lat"], rows["lng"] = coarse_cells(enc.place_lat, enc.place_lng)
    rows["city"] = enc.place_city
    return _COPY_SIGNATURE + rows.tobytes() + b"\xff\xff"


# A UUIDv7 made in SQL (PostgreSQL 16 has no uuidv7()): the millisecond clock in the first 48
# bits of a random UUID, version bits set to 7.
_UUID7_SQL = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) "
    "FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid"
)

_TS = "timestamptz 'epoch' + {} * interval '1 microsecond'"

def _encounter_groups(source: str, columns: str) -> str:
    """CTEs ``ordered`` and ``grouped`` over the intervals of ``source`` (``columns``: ``low,
    high, s, e`` and any carried along): ``g`` numbers each pair's encounters, two intervals
    being one encounter when the later starts at most the repeat gap (``%(gap)s``) after the
    earlier ones end.  The one merge rule of the store, for new pairs (``_LOCK_SQL``) and
    stored ones (``_MERGE_SQL``) alike."""
    return f"""ordered AS (
    SELECT {columns}, max(e) OVER (PARTITION BY low, high ORDER BY s, e
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
    FROM {source}
), grouped AS (
    SELECT {columns}, count(*) FILTER (WHERE prev_end IS NULL OR s - prev_end > %(gap)s)
               OVER (PARTITION BY low, high ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS g
    FROM ordered
)"""


# Merge the incoming encounter intervals with each pair's stored ones (exact: two intervals are
# one encounter when the later starts at most the repeat gap after the earlier ends), then
# write a record only when what the API shows changes (a new encounter) or when the stored end
# of the latest encounter lags the true one by more than the slack.  Only the pairs that had a
# record run through it: each is locked by this transaction by then (``_LOCK_SQL``, which wrote
# the new pairs' records whole and took them out of ``crossings_incoming``), so the merge reads
# the latest version of each record and no other transaction changes one before the commit.
_MERGE_SQL = """
WITH pairs AS (
    SELECT DISTINCT low, high FROM crossings_incoming
), cur AS MATERIALIZED (  -- read once; inlined into the update, it is planned badly
    SELECT c.id, c.user_low_id AS low, c.user_high_id AS high, c.first_crossed_at, c.last_crossed_at, c.times,
           c.encounter_ends[array_upper(c.encounter_ends, 1)] AS last_end
    FROM crossings c JOIN pairs p ON c.user_low_id = p.low AND c.user_high_id = p.high
), iv AS (
    SELECT low, high, s, e FROM crossings_incoming
    UNION ALL
    SELECT c.user_low_id, c.user_high_id, u.s, u.e
    FROM crossings c
    JOIN pairs p ON c.user_low_id = p.low AND c.user_high_id = p.high,
    unnest(c.encounter_starts, c.encounter_ends) AS u(s, e)
), """ + _encounter_groups("iv", "low, high, s, e") + """, merged AS (
    SELECT low, high, min(s) AS s, max(e) AS e FROM grouped GROUP BY low, high, g
), agg AS (
    SELECT low, high, array_agg(s ORDER BY s) AS starts, array_agg(e ORDER BY s) AS ends,
           count(*) AS times, """ + _TS.format("min(s)") + """ AS first_at,
           """ + _TS.format("max(s)") + """ AS last_at, max(s) AS last_start, max(e) AS last_end
    FROM merged GROUP BY low, high
), upd AS (
    UPDATE crossings c SET
        first_crossed_at = a.first_at, last_crossed_at = a.last_at, times = a.times,
        encounter_starts = a.starts, encounter_ends = a.ends,
        place_lat = coalesce(p.place_lat, c.place_lat), place_lng = coalesce(p.place_lng, c.place_lng),
        place_cell = coalesce(p.cell, c.place_cell),
        city_id = CASE WHEN p.found IS NULL THEN c.city_id ELSE p.city END,
        updated_at = now()
    FROM cur JOIN agg a ON a.low = cur.low AND a.high = cur.high
         LEFT JOIN LATERAL (
             -- Where the latest encounter started: the incoming interval that starts it, if any
             -- (looked up by the index on crossings_incoming, never a scan per record).
             SELECT i.place_lat, i.place_lng, to_hex(i.cell) AS cell, nullif(i.city, 0) AS city, true AS found
             FROM crossings_incoming i WHERE i.low = a.low AND i.high = a.high AND i.s = a.last_start
             ORDER BY i.cell LIMIT 1
         ) p ON true
    WHERE c.id = cur.id
      AND ((cur.first_crossed_at, cur.last_crossed_at, cur.times) IS DISTINCT FROM (a.first_at, a.last_at, a.times)
           OR a.last_end - cur.last_end > %(slack)s)
    RETURNING c.id::text, c.user_low_id::text, c.user_high_id::text,
              (cur.first_crossed_at, cur.last_crossed_at, cur.times) IS DISTINCT FROM (a.first_at, a.last_at, a.times)
)
SELECT * FROM upd
"""


_SETTLED_SQL = """
WITH settled AS (
DELETE FROM crossings_incoming i USING crossings c
WHERE c.user_low_id = i.low AND c.user_high_id = i.high
  AND i.s >= c.encounter_starts[array_upper(c.encounter_starts, 1)]
  AND i.s - c.encounter_ends[array_upper(c.encounter_ends, 1)] <= %(gap)s
  AND i.e - c.encounter_ends[array_upper(c.encounter_ends, 1)] <= %(slack)s
RETURNING i.*
)
INSERT INTO crossings_settled SELECT * FROM settled
"""


def _drop_settled(cursor, params: dict) -> int:
    """Leave out the intervals that change nothing to write: those inside the pair's latest
    encounter (after its start, within the repeat gap of its stored end) that move its end by
    no more than the slack.  Most of a batch is people still together; this keeps the merge
    to the pairs that are new, start an encounter or need their end refreshed.

    Read without a lock: the intervals left out are kept in ``crossings_settled``, and
    ``_restore_settled`` puts back those of the pairs that are written after all (another
    shard may have changed their record since).  A pair left out whole is not touched: as if
    this store ran before the other shard's."""
    cursor.execute(_SETTLED_SQL, params)
    return cursor.rowcount


def _restore_settled(cursor) -> None:
    """Put back the settled intervals of the pairs this store writes anyway: merged with the
    record as it is now (locked), they are true intervals of the pair, so the merge stays exact
    whatever another shard stored since ``_drop_settled`` read the record."""
    cursor.execute("INSERT INTO crossings_incoming SELECT * FROM crossings_settled s "
                   "WHERE (s.low, s.high) IN (SELECT low, high FROM crossings_incoming)")


def _drop_unrecordable(cursor) -> None:
    """Leave out pairs that must not be recorded now: a block either way, or a user erased
    since the pings were loaded (their pings are gone too; the record would break its key)."""
    users = User._meta.db_table
    cursor.execute(f"DELETE FROM crossings_incoming i WHERE {account_selectors.block_between_sql('i.low', 'i.high')}")
    metrics.count_skipped("blocked", cursor.rowcount)
    cursor.execute(f"DELETE FROM crossings_incoming i WHERE NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = i.low) "
                   f"OR NOT EXISTS (SELECT 1 FROM {users} u WHERE u.id = i.high)")
    metrics.count_skipped("user_gone", cursor.rowcount)


# Lock the record of every pair of the batch, or create it with its final values, in key
# order, in one statement.  A new pair's values are its incoming intervals merged (those of
# ``crossings_settled`` too, left out of a record that vanished since: a sweep), as the merge
# would make them, with the place where its latest encounter started: written once, no stub.
# An existing record conflicts and is locked FOR NO KEY UPDATE by the no-op DO UPDATE (its
# WHERE false writes nothing but still locks); ``_MERGE_SQL`` then merges into it.  Another
# store's uncommitted insert of the same pair makes the insert wait for that transaction,
# then lock its record (or insert, if it rolled back or dropped the pair).  Every store takes
# its pairs in the same order in one statement, so two stores never deadlock.  The pairs
# inserted (new for this store) go to ``crossings_new`` with their ids.
_LOCK_SQL = """
WITH src AS (
    SELECT low, high, s, e, place_lat, place_lng, cell, city FROM crossings_incoming
    UNION ALL
    SELECT low, high, s, e, place_lat, place_lng, cell, city FROM crossings_settled
    WHERE (low, high) IN (SELECT low, high FROM crossings_incoming)
), """ + _encounter_groups("src", "low, high, s, e, place_lat, place_lng, cell, city") + """, merged AS (
    -- One encounter: where it started is its first interval's place (the lowest cell on a tie).
    SELECT low, high, min(s) AS s, max(e) AS e,
           (array_agg(place_lat ORDER BY s, cell))[1] AS place_lat,
           (array_agg(place_lng ORDER BY s, cell))[1] AS place_lng,
           (array_agg(cell ORDER BY s, cell))[1] AS cell, (array_agg(city ORDER BY s, cell))[1] AS city
    FROM grouped GROUP BY low, high, g
), agg AS (
    SELECT low, high, array_agg(s ORDER BY s) AS starts, array_agg(e ORDER BY s) AS ends, count(*) AS times,
           min(s) AS first_s, max(s) AS last_s,
           (array_agg(place_lat ORDER BY s DESC))[1] AS place_lat,
           (array_agg(place_lng ORDER BY s DESC))[1] AS place_lng,
           (array_agg(cell ORDER BY s DESC))[1] AS cell, (array_agg(city ORDER BY s DESC))[1] AS city
    FROM merged GROUP BY low, high
), ins AS (
    INSERT INTO crossings (id, user_low_id, user_high_id, first_crossed_at, last_crossed_at, times,
                           place_lat, place_lng, place_cell, city_id, encounter_starts, encounter_ends, updated_at)
    SELECT """ + _UUID7_SQL + """, low, high, """ + _TS.format("first_s") + """, """ + _TS.format("last_s") + """,
           times, place_lat, place_lng, to_hex(cell), nullif(city, 0), starts, ends, now()
    FROM agg
    ORDER BY low, high
    ON CONFLICT (user_low_id, user_high_id) DO UPDATE SET times = crossings.times WHERE false
    RETURNING id, user_low_id, user_high_id
)
INSERT INTO crossings_new SELECT * FROM ins
"""


def _lock_pairs(cursor, params: dict) -> int:
    """Lock the batch's records, inserting the new pairs' records with their final values
    (``_LOCK_SQL``); returns how many pairs are new.  A user erased at this very moment fails
    the foreign key of a new record: the filter runs again and the lock is retried
    (``store_retried``), so no user state stops the batch."""
    for attempt in range(3):
        try:
            with transaction.atomic():  # a savepoint: its row locks go with it on a failure
                cursor.execute(_LOCK_SQL, params)
                return cursor.rowcount
        except IntegrityError:
            logger.warning("storing crossings failed on a vanished user (attempt %d); retrying without it",
                           attempt + 1, exc_info=True)
            metrics.count_skipped("store_retried")
            _drop_unrecordable(cursor)
    raise RuntimeError("could not store the batch's crossings three times in a row")


_CAP_SQL = """
WITH new_pairs AS (
    SELECT c.user_low_id AS low, c.user_high_id AS high, c.first_crossed_at AS s,
           c.last_crossed_at > now() - interval '1 day' AND c.first_crossed_at > now() - interval '1 day' AS today
    FROM crossings_new n JOIN crossings c ON c.user_low_id = n.low AND c.user_high_id = n.high
), ends AS (
    SELECT low AS u, low, high, s, today FROM new_pairs UNION ALL SELECT high, low, high, s, today FROM new_pairs
), ranked AS (
    SELECT u, low, high, row_number() OVER (PARTITION BY u ORDER BY s, low, high) AS r FROM ends
), own AS (
    SELECT u, count(*) FILTER (WHERE today) AS n FROM ends GROUP BY u
), used AS MATERIALIZED (
    -- People first crossed today, less this store's new pairs (ranked instead); once per user.
    SELECT o.u,
           (SELECT count(*) FROM crossings c WHERE c.user_low_id = o.u
              AND c.last_crossed_at > now() - interval '1 day' AND c.first_crossed_at > now() - interval '1 day')
         + (SELECT count(*) FROM crossings c WHERE c.user_high_id = o.u
              AND c.last_crossed_at > now() - interval '1 day' AND c.first_crossed_at > now() - interval '1 day')
         - o.n AS n
    FROM own o
), over AS (
    SELECT DISTINCT r.low, r.high FROM ranked r JOIN used ON used.u = r.u WHERE r.r + used.n > %(cap)s
)
DELETE FROM crossings c USING over o WHERE c.user_low_id = o.low AND c.user_high_id = o.high
RETURNING c.id::text
"""


def _drop_over_cap(cursor, timings: dict | None = None) -> set[str]:
    """Delete this store's new records beyond CROSSINGS_NEW_PER_DAY for either user (new people
    crossed in the last 24 h, counted by first crossing; this store's new pairs ranked by their
    first match, earliest kept); returns their ids.

    Under the cap's lock (``lock_cap``) to the commit: the count sees every new pair other
    stores kept (they committed before releasing it), and no other store counts this store's
    until it commits.  Only the count and the delete run one store at a time."""
    tick = time.perf_counter()
    lock_cap(cursor)
    if timings is not None:
        timings["store_lock_wait"] = time.perf_counter() - tick
    tick = time.perf_counter()
    cursor.execute(_CAP_SQL, {"cap": int(settings.CROSSINGS_NEW_PER_DAY)})
    dropped = {row[0] for row in cursor.fetchall()}
    if timings is not None:
        timings["store_cap"] = time.perf_counter() - tick
    if dropped:
        metrics.NEW_PAIRS_CAPPED.inc(len(dropped))
    return dropped


def _bridge_lagging_ends(cursor) -> None:
    """Make the stored end of each pair's latest encounter exact where it matters.

    A record is not rewritten while its latest encounter goes on, so its stored end may lag
    the true one by up to the slack.  Where that could decide whether this batch's first match
    starts a new encounter (it comes more than the repeat gap after the stored end, but not
    more than gap + slack), the pair's matches after the stored end are recomputed from the
    two users' pings and added to the batch as what they are: matches.
    """
    _, window, gap = _params()
    slack = int(settings.CROSSING_END_SLACK_S) * US
    if slack <= 0:
        return
    cursor.execute(
        "SELECT i.low::text, i.high::text, max(c.encounter_ends[array_upper(c.encounter_ends, 1)]), min(i.s) "
        "FROM crossings_incoming i JOIN crossings c ON c.user_low_id = i.low AND c.user_high_id = i.high "
        "GROUP BY i.low, i.high "
        "HAVING min(i.s) - max(c.encounter_ends[array_upper(c.encounter_ends, 1)]) BETWEEN %s + 1 AND %s",
        [gap, gap + slack],
    )
    for low, high, stored_end, first_new in cursor.fetchall():
        latest = _latest_match_between(cursor, (low, high), stored_end - window, first_new)
        if latest is not None and latest > stored_end:
            cursor.execute(
                "INSERT INTO crossings_incoming (low, high, s, e, place_lat, place_lng, cell, city) "
                "SELECT %s::uuid, %s::uuid, %s, %s, place_lat, place_lng, "
                "('x' || lpad(place_cell, 16, '0'))::bit(64)::bigint, coalesce(city_id, 0) "
                "FROM crossings WHERE user_low_id = %s::uuid AND user_high_id = %s::uuid",
                [low, high, latest, latest, low, high],
            )


def _latest_match_between(cursor, pair: tuple[str, str], lo_us: int, hi_us: int) -> int | None:
    """The latest match time of the two users' matchable pings recorded in [lo_us, hi_us)."""
    sql, params = location_selectors.pings_of_users_sql("user_id, recorded_at, lat, lng, city_id, true",
                                                        list(pair), _utc(lo_us), _utc(hi_us - 1))
    rows = _copy_rows(cursor, sql, params, _ROW)
    if len(rows) == 0:
        return None
    ctx, _users = _context_from_rows(rows)
    seg = find_segments(ctx, **_match_args())
    return int(seg.end.max()) if len(seg.end) else None


def store_encounters(cursor, enc: Encounters, users: _Users, timings: dict | None = None) -> list[tuple]:
    """Merge the run's encounters into the crossing records.

    Returns (id, low, high, visible) of the records written; ``visible`` is whether what the
    API shows changed (a new pair or a new encounter).  A pair that cannot be recorded (a
    block, a user erased meanwhile) is left out and counted; the rest of the batch goes on.
    Shards store in parallel: each locks the records of its pairs in key order (``_LOCK_SQL``)
    and only the daily cap's count runs one store at a time (``_drop_over_cap``).
    """
    if len(enc.low) == 0:
        return []
    cursor.execute(
        "CREATE TEMP TABLE crossings_incoming (low uuid, high uuid, s bigint, e bigint, place_lat float8, "
        "place_lng float8, cell bigint, city integer) ON COMMIT DROP"
    )
    cursor.execute("CREATE TEMP TABLE crossings_settled (LIKE crossings_incoming) ON COMMIT DROP")
    cursor.execute("CREATE TEMP TABLE crossings_new (id uuid, low uuid, high uuid) ON COMMIT DROP")
    with cursor.connection.cursor().copy("COPY crossings_incoming FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(encounter_rows(enc, users))
    params = {"gap": int(settings.CROSSING_REPEAT_GAP_S) * US, "slack": int(settings.CROSSING_END_SLACK_S) * US}
    cursor.execute("ANALYZE crossings_incoming")
    _drop_settled(cursor, params)
    _drop_unrecordable(cursor)
    tick = time.perf_counter()
    new = _lock_pairs(cursor, params)  # from here to the commit, no other store changes these records
    changed = []
    if new:
        cursor.execute("ANALYZE crossings_new")
        # Written whole by the lock: out of the merge.
        cursor.execute("DELETE FROM crossings_incoming i USING crossings_new n WHERE i.low = n.low AND i.high = n.high")
        cursor.execute("SELECT id::text, low::text, high::text, true FROM crossings_new")
        changed = cursor.fetchall()
    if timings is not None:
        timings["store_rows_lock"] = time.perf_counter() - tick
    _bridge_lagging_ends(cursor)
    _restore_settled(cursor)
    cursor.execute("CREATE INDEX ON crossings_incoming (low, high, s)")
    cursor.execute("ANALYZE crossings_incoming")
    cursor.execute(_MERGE_SQL, params)
    changed += cursor.fetchall()
    if new:
        dropped = _drop_over_cap(cursor, timings)
        if dropped:
            changed = [row for row in changed if row[0] not in dropped]
    cursor.execute("DROP TABLE crossings_incoming, crossings_settled, crossings_new")
    return changed


# --------------------------------------------------------------------------- run


def _find(cursor, state: DetectorState, xmin: int, result: DetectionResult, progress,
          shard: tuple[int, int] | None = None):
    cell_m, window, gap = _params()
    tick = time.perf_counter()
    if shard is None:  # the only shard: every city's new pings, read against every city's pings
        times = _batch_times(cursor, state, xmin)
        lat = lng = np.empty(0)
    else:
        times, lat, lng = _batch_points(cursor, state, xmin, shard)
        cities = list(City.objects.values_list("id", "lat", "lng", "radius_km"))
        cities += CityArea.objects.filter(kept_until__gt=timezone.now()).values_list("city_id", "lat", "lng",
                                                                                      "radius_km")
    result.pings = len(times)
    result.timings["batch"] = time.perf_counter() - tick
    parts = []
    for first, last, a, b in time_clusters(times, window):
        tick = time.perf_counter()
        area = None if shard is None else shard_area(lat[a:b], lng[a:b], cities)
        rows = _load_context(cursor, first - window, last + window, state.xid_watermark, xmin, shard, area)
        ctx, users = _context_from_rows(rows)
        result.timings["load"] = result.timings.get("load", 0) + time.perf_counter() - tick
        tick = time.perf_counter()
        enc, matches = detect(ctx, cell_m=cell_m, window_us=window, repeat_gap_us=gap)
        result.timings["match"] = result.timings.get("match", 0) + time.perf_counter() - tick
        result.context_pings += len(ctx)
        result.matches += matches
        parts.append((enc, users))
        if progress:
            progress(f"  {b - a} new pings recorded {_fmt(first)}..{_fmt(last)}: context {len(ctx)}, "
                     f"{matches} ping pairs matched, {len(enc.low)} encounters")
    tick = time.perf_counter()
    enc, users = _combine(parts)
    result.timings["merge"] = time.perf_counter() - tick
    result.pairs = int(np.count_nonzero(np.diff(enc.low) | np.diff(enc.high))) + 1 if len(enc.low) else 0
    return enc, users


def _combine(parts: list[tuple[Encounters, _Users]]) -> tuple[Encounters, _Users]:
    if not parts:
        e = np.empty(0, np.int64)
        return Encounters(e, e, e, e, np.empty(0), np.empty(0), e), _Users(np.empty(0, np.uint64),
                                                                         np.empty(0, np.uint64))
    if len(parts) == 1:
        return parts[0]
    # Clusters have their own user codes: recode into one shared code space by uuid.
    all_hi = np.concatenate([u.hi for _, u in parts] or [np.empty(0, np.uint64)])
    all_lo = np.concatenate([u.lo for _, u in parts] or [np.empty(0, np.uint64)])
    order = np.lexsort((all_lo, all_hi))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (all_hi[order][1:] != all_hi[order][:-1]) | (all_lo[order][1:] != all_lo[order][:-1])
    code_sorted = np.cumsum(first) - 1
    global_code = np.empty(len(order), dtype=np.int64)
    global_code[order] = code_sorted
    users = _Users(hi=all_hi[order][first], lo=all_lo[order][first])
    segs, offset = [], 0
    for enc, u in parts:
        remap = global_code[offset:offset + len(u.hi)]
        offset += len(u.hi)
        segs.append(Segments(user_a=remap[enc.low], user_b=remap[enc.high], start=enc.start, end=enc.end,
                             place_lat=enc.place_lat, place_lng=enc.place_lng, place_city=enc.place_city))
    return merge_intervals(Segments.concat(segs), repeat_gap_us=_params()[2]), users


def _fmt(us: int) -> str:
    return str(np.datetime64(us, "us").astype("datetime64[s]")).replace("T", " ")


def run_detection(*, wait: bool = True, dry_run: bool = False, progress=None,
                  shard: int | None = None) -> DetectionResult:
    """Process every pending ping once (docs/subsystems/detection.md); idempotent.

    ``shard``: only that detection shard's pings (CROSSING_SHARDS; each shard's runs are
    serial, shards run in parallel); None: every shard, one after the other.
    """
    count = shard_count()
    if shard is None and count > 1:
        results, failed = [], []
        for index in range(count):
            if progress:
                progress(f"shard {index} of {count}:")
            try:
                results.append(run_detection(wait=wait, dry_run=dry_run, progress=progress, shard=index))
            except Exception as exc:  # one shard's failure must not hold the others back
                logger.exception("detection shard %d of %d failed; the other shards go on", index, count)
                failed.append(exc)
        if failed:
            raise failed[0]
        return DetectionResult.combine(results)
    index = shard or 0
    if not 0 <= index < count:
        raise ValueError(f"shard {index} does not exist (CROSSING_SHARDS={count})")
    started = time.perf_counter()
    result = DetectionResult()
    if not DetectorState.objects.filter(pk=index + 1, shards=count).exists():
        _reconfigure(count)
    with transaction.atomic(), connection.cursor() as cursor:
        state = _claim(index, count, wait)
        if state is None:
            result.skipped = True
            return result
        xmin, received_after = _horizon(cursor)
        enc, users = _find(cursor, state, xmin, result, progress, None if count == 1 else (index, count))
        if dry_run:
            transaction.set_rollback(True)
        else:
            tick = time.perf_counter()
            written = store_encounters(cursor, enc, users, result.timings)
            changed = [row[:3] for row in written if row[3]]
            result.timings["store"] = time.perf_counter() - tick
            result.changed = len(changed)
            result.written = len(written)
            result.seconds = time.perf_counter() - started
            DetectorState.objects.filter(pk=index + 1).update(
                xid_watermark=xmin, received_after=received_after, last_batch_pings=result.pings,
                last_batch_matches=result.matches, last_batch_seconds=result.seconds,
            )
            if changed:
                transaction.on_commit(lambda: _after_commit(changed))
            tick = time.perf_counter()
    if not dry_run:  # the watermark's update and the commit (under the cap's lock, if taken)
        result.timings["commit"] = time.perf_counter() - tick
    result.seconds = time.perf_counter() - started
    logger.info("detect_crossings: %s", result.summary(), extra={"timings": result.timings})
    return result


def _after_commit(changed: list[tuple]) -> None:
    user_ids = {uid for _id, low, high in changed for uid in (low, high)}
    try:
        cx_cache.bump_users(user_ids)
    except Exception:  # Redis down: pages expire on their TTL; never lose the batch for it
        logger.warning("could not invalidate crossing caches", exc_info=True)
    signals.crossing_recorded.send(sender=DetectorState, user_ids=sorted(user_ids),
                                   crossing_ids=[row[0] for row in changed])
