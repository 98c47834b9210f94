"""DDL for the pings table's partitions: names, creation ahead, moving rows out of DEFAULT
partitions, dropping, and a report of what exists.

Every operation is idempotent and takes short locks (``lock_timeout``, retried).
Layout and design: docs/subsystems/partitions.md.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction

from locations.models import NO_CITY

logger = logging.getLogger(__name__)

PARENT = "locations_ping"
NOCITY = "locations_ping_nocity"
LOCK_TIMEOUT_MS = 2000
LOCK_RETRIES = 5
MAINTENANCE_LOCK_ID = 7_261_934_001  # pg_advisory_xact_lock key of partition maintenance

_DAY_RE = re.compile(r"^(?P<list>locations_ping_(?:city\d+|nocity))_p(?P<day>\d{8})$")


class LockNotAcquired(Exception):
    """A partition operation gave up after its retries: another transaction held the lock."""


def list_partition(city_id: int) -> str:
    return NOCITY if city_id == NO_CITY else f"locations_ping_city{int(city_id)}"


def day_partition(list_name: str, day: date) -> str:
    return f"{list_name}_p{day:%Y%m%d}"


def default_partition(list_name: str) -> str:
    return f"{list_name}_pdefault"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def quote_ident(name: str) -> str:
    """Quote an identifier we built ourselves (only [a-z0-9_])."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"unexpected partition name {name!r}")
    return f'"{name}"'


def existing_tables() -> set[str]:
    """Names of every partition, at any depth, of the pings table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relid::regclass::text FROM pg_partition_tree(%s::regclass) WHERE relid::regclass::text <> %s",
            [PARENT, PARENT],
        )
        return {row[0] for row in cursor.fetchall()}


def _with_lock_retry(label: str, operation) -> None:
    """Run ``operation`` in a transaction with a short lock timeout, retrying with backoff."""
    for attempt in range(1, LOCK_RETRIES + 1):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}")
                # One maintenance operation at a time across processes (beat, commands, the
                # admin): each re-checks what exists once it holds this lock.
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [MAINTENANCE_LOCK_ID])
                operation(cursor)
            return
        except Exception as exc:  # psycopg LockNotAvailable arrives wrapped in OperationalError
            if "lock timeout" not in str(exc) or attempt == LOCK_RETRIES:
                if "lock timeout" in str(exc):
                    raise LockNotAcquired(f"{label}: lock not acquired after {attempt} attempts") from exc
                raise
            logger.warning("%s: lock timeout (attempt %d), retrying", label, attempt)
            time.sleep(min(0.2 * 2**attempt, 3.0))


def create_list_partition(city_id: int) -> bool:
    """Create a city's LIST partition and its DEFAULT day partition; False if it existed.

    PostgreSQL scans the DEFAULT list partition (pings outside every city) to check that it
    holds no row of the new city: such rows cannot exist, since a city's pings are routed
    to it only once its partition is made, in the same transaction as the city.
    """
    name = list_partition(city_id)
    if city_id == NO_CITY or name in existing_tables():
        return False

    def create(cursor):
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return
        # Normally empty: rows of this city can sit in the DEFAULT list partition only if the
        # city was written without its partition (e.g. straight into the table).  Move them.
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {NOCITY} WHERE city_id = %s)", [city_id])
        has_rows = cursor.fetchone()[0]
        if has_rows:
            cursor.execute(
                f"CREATE TEMP TABLE _moved_pings ON COMMIT DROP AS WITH d AS (DELETE FROM {NOCITY} "
                "WHERE city_id = %s RETURNING *) SELECT * FROM d",
                [city_id],
            )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {quote_ident(name)} PARTITION OF {PARENT} FOR VALUES IN ({int(city_id)}) "
            "PARTITION BY RANGE (recorded_at)"
        )
        default = quote_ident(default_partition(name))
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {default} PARTITION OF {quote_ident(name)} DEFAULT")
        if has_rows:
            cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM _moved_pings")

    _with_lock_retry(f"create {name}", create)
    return True


def create_day_partition(list_name: str, day: date) -> int:
    """Create one day partition; rows already caught by the DEFAULT day partition move into it.

    Returns how many rows moved.  ``CREATE TABLE ... PARTITION OF`` refuses to run while the
    DEFAULT partition holds rows of the new range, so they are lifted out first (DELETE ...
    RETURNING into a temporary table) and inserted back through the parent once the day
    exists, all in one transaction: no reader ever sees them missing.
    """
    name = day_partition(list_name, day)
    start, end = day_bounds(day)
    default = quote_ident(default_partition(list_name))
    moved = 0

    def create(cursor):
        nonlocal moved
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE recorded_at >= %s AND recorded_at < %s)",
                       [start, end])
        has_rows = cursor.fetchone()[0]
        if has_rows:
            cursor.execute(
                f"CREATE TEMP TABLE _moved_pings ON COMMIT DROP AS WITH d AS (DELETE FROM {default} "
                "WHERE recorded_at >= %s AND recorded_at < %s RETURNING *) SELECT * FROM d",
                [start, end],
            )
            moved = cursor.rowcount
        # DDL takes no bind parameters: the bounds are literals we formatted ourselves.
        cursor.execute(
            f"CREATE TABLE {quote_ident(name)} PARTITION OF {quote_ident(list_name)} "
            f"FOR VALUES FROM ('{start:%Y-%m-%d %H:%M:%S}+00') TO ('{end:%Y-%m-%d %H:%M:%S}+00')"
        )
        if has_rows:
            cursor.execute(f"INSERT INTO {quote_ident(name)} SELECT * FROM _moved_pings")

    _with_lock_retry(f"create {name}", create)
    if moved:
        logger.info("moved %d pings from %s into %s", moved, default_partition(list_name), name)
    return moved


@dataclass(frozen=True)
class DayPartition:
    name: str
    list_name: str
    day: date


def day_partitions(tables: set[str] | None = None) -> list[DayPartition]:
    """Every day partition, oldest first."""
    result = []
    for table in tables if tables is not None else existing_tables():
        match = _DAY_RE.match(table)
        if match:
            day = datetime.strptime(match["day"], "%Y%m%d").date()
            result.append(DayPartition(table, match["list"], day))
    return sorted(result, key=lambda p: (p.day, p.name))


def partition_has_live_rows(name: str, now: datetime) -> bool:
    """Whether any row of this partition has not expired yet (uses the expires_at index)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quote_ident(name)} WHERE expires_at > %s)", [now])
        return cursor.fetchone()[0]


def drop_day_partition(partition: DayPartition) -> None:
    """Detach then drop a day partition.

    DETACH takes an ACCESS EXCLUSIVE lock on the city partition for an instant (``DETACH
    ... CONCURRENTLY`` is refused when a DEFAULT partition exists): the lock timeout keeps
    a waiting DETACH from holding up inserts for more than ``LOCK_TIMEOUT_MS``, and the
    operation is retried.  The DROP of the detached table no longer touches the parent.
    """

    def drop(cursor):
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [partition.name])
        if not cursor.fetchone()[0]:
            return
        cursor.execute(f"ALTER TABLE {quote_ident(partition.list_name)} DETACH PARTITION {quote_ident(partition.name)}")
        cursor.execute(f"DROP TABLE {quote_ident(partition.name)}")

    _with_lock_retry(f"drop {partition.name}", drop)


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    parent: str
    level: int
    is_leaf: bool
    bounds: str
    rows: int
    total_bytes: int


def partition_report() -> list[PartitionInfo]:
    """Every partition with its bounds, estimated rows (exact for small tables) and size."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relid::regclass::text, t.parentrelid::regclass::text, t.level, t.isleaf,
                   coalesce(pg_get_expr(c.relpartbound, c.oid), ''),
                   CASE WHEN t.isleaf THEN greatest(c.reltuples, 0)::bigint ELSE 0 END,
                   CASE WHEN t.isleaf THEN pg_total_relation_size(t.relid) ELSE 0 END
            FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid
            WHERE t.level > 0
            ORDER BY t.relid::regclass::text
            """,
            [PARENT],
        )
        rows = [PartitionInfo(*row) for row in cursor.fetchall()]
        exact = []
        for info in rows:
            # reltuples is -1/0 until the first ANALYZE: count small leaves exactly.
            if info.is_leaf and info.total_bytes < 64 * 1024 * 1024:
                cursor.execute(f"SELECT count(*) FROM {quote_ident(info.name)}")
                info = PartitionInfo(**{**info.__dict__, "rows": cursor.fetchone()[0]})
            exact.append(info)
        return exact
