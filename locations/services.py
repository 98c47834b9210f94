"""Location use cases: ingesting pings, cities and their partitions, expiry of pings.

Ingest costs one Redis round trip and one batched INSERT on the common path.
Design: docs/subsystems/partitions.md.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from accounts.models import User
from core import geo
from core.cache.client import redis_client
from core.observability import metrics
from locations import partitions, selectors
from locations.models import City, Ping, PingStatus
from locations.validation import PingIn

logger = logging.getLogger(__name__)
PRIMARY = DEFAULT_DB_ALIAS  # writes, and reads that must see them, go to the primary

#: How far from a batch the database is searched for the accepted pings around it.  Bounded
#: so that the query touches only the day partitions near the batch (planning cost grows with
#: partitions); a ping farther away in time rarely makes a movement implausible (1 800 km in
#: 6 h), and a spoofer could wait that long anyway.
PLAUSIBILITY_LOOKAROUND = timedelta(hours=6)
#: How many rows one expiry DELETE statement removes (keeps each statement short).
DELETE_BATCH = 10_000


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    implausible: int


def retention() -> timedelta:
    return timedelta(hours=settings.PING_RETENTION_HOURS)


# ------------------------------------------------------------------------------- ingest


def _last_ping_key(user_id) -> str:
    """The full Redis key (Django's cache key format, so the cache's tools see it)."""
    return cache.make_key(f"loc:last:{user_id}")


@dataclass(frozen=True, order=True)
class _Anchor:
    """A stored (or just judged) ping of the user, as far as the ping rules need it."""

    recorded_at: datetime
    lat: float = field(compare=False)
    lng: float = field(compare=False)
    accuracy_m: float | None = field(default=None, compare=False)
    matchable: bool = field(default=True, compare=False)

    def encode(self) -> str:
        micros = (self.recorded_at - _EPOCH) // _MICROSECOND  # exact, unlike a float timestamp
        accuracy = "" if self.accuracy_m is None else repr(self.accuracy_m)
        return f"{micros},{self.lat!r},{self.lng!r},{accuracy}"

    @classmethod
    def decode(cls, raw: str, matchable: bool = True) -> _Anchor:
        micros, lat, lng, accuracy = raw.split(",")
        anchor = cls(_EPOCH + int(micros) * _MICROSECOND, float(lat), float(lng),
                     float(accuracy) if accuracy else None, matchable)
        if not (-90 <= anchor.lat <= 90 and -180 <= anchor.lng <= 180) or anchor.recorded_at.year < 2000:
            raise ValueError("out of range")
        return anchor


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class _Last:
    """The user's newest accepted ping and newest matchable ping (what a live batch is judged against)."""

    accepted: _Anchor | None
    matchable: _Anchor | None

    def encode(self) -> str:
        return "|".join(a.encode() if a is not None else "" for a in (self.accepted, self.matchable))

    @classmethod
    def decode(cls, raw) -> _Last | None:
        """The cached value, or None when it cannot be read (written by an older release, or
        damaged): the database then answers, as for a cold cache."""
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
            accepted, matchable = text.split("|")
            return cls(_Anchor.decode(accepted, matchable=False) if accepted else None,
                       _Anchor.decode(matchable) if matchable else None)
        except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
            logger.warning("unreadable last-ping cache value %r; asking the database", raw)
            return None

    def expires_in(self) -> int:
        """Seconds until the newest of its pings expires: the cached copy never outlives the rows."""
        newest = max((a.recorded_at for a in (self.accepted, self.matchable) if a is not None), default=None)
        if newest is None:
            return 0
        return int((newest + retention() - timezone.now()).total_seconds())


def _speed_kmh(a: _Anchor, b: _Anchor) -> float:
    """Speed between two pings on their real time difference, less the GPS jitter their
    reported accuracies allow (at most MATCH_JITTER_MAX_M; none when not reported)."""
    jitter = min((a.accuracy_m or 0.0) + (b.accuracy_m or 0.0), settings.MATCH_JITTER_MAX_M)
    distance = max(geo.distance_m(a.lat, a.lng, b.lat, b.lng) - jitter, 0.0)
    if distance == 0.0:
        return 0.0
    seconds = abs((b.recorded_at - a.recorded_at).total_seconds())
    return math.inf if seconds == 0 else distance / seconds * 3.6


class _LastPing:
    """The user's last accepted and last matchable pings, kept in Redis with one round trip on
    the common path.

    The batch's newest ping is written optimistically with ``SET ... GET`` (as the newest
    accepted and matchable ping), which returns the previous value in the same round trip.
    When that guess turns out wrong (the newest ping is not matchable, or the batch is older
    than the cached ping) the right value is written back: a second round trip on the rare
    path only.  Redis down: the database answers.
    """

    def __init__(self, user_id):
        self.key = _last_ping_key(user_id)
        self.written: _Last | None = None
        self.previous: _Last | None = None

    def swap(self, guess: _Last) -> None:
        ttl = guess.expires_in()
        try:
            client = redis_client()
            if ttl > 0:
                raw = client.set(self.key, guess.encode(), ex=ttl, get=True)
                self.written = guess
            else:
                raw = client.get(self.key)
        except Exception:
            logger.warning("last-ping cache unavailable", exc_info=True)
            return
        if raw is not None:
            self.previous = _Last.decode(raw)

    def settle(self, final: _Last | None) -> None:
        if final == self.written:
            return
        try:
            if final is None or final.expires_in() <= 0:
                redis_client().delete(self.key)
            else:
                redis_client().set(self.key, final.encode(), ex=final.expires_in())
        except Exception:
            logger.warning("last-ping cache unavailable", exc_info=True)


# The accepted (not implausible) and the matchable ping just before and just after the batch,
# and every ping inside it.
_NEIGHBOURS_SQL = f"""
(SELECT recorded_at, lat, lng, accuracy_m, status FROM {Ping._meta.db_table}
  WHERE user_id = %(u)s::uuid AND status <> 1 AND recorded_at < %(lo)s AND recorded_at >= %(lo_bound)s
    AND expires_at > %(now)s
  ORDER BY recorded_at DESC LIMIT 1)
UNION ALL
(SELECT recorded_at, lat, lng, accuracy_m, status FROM {Ping._meta.db_table}
  WHERE user_id = %(u)s::uuid AND status = 0 AND recorded_at < %(lo)s AND recorded_at >= %(lo_bound)s
    AND expires_at > %(now)s
  ORDER BY recorded_at DESC LIMIT 1)
UNION ALL
(SELECT recorded_at, lat, lng, accuracy_m, status FROM {Ping._meta.db_table}
  WHERE user_id = %(u)s::uuid AND recorded_at >= %(lo)s AND recorded_at <= %(hi)s
  ORDER BY recorded_at LIMIT 2000)
UNION ALL
(SELECT recorded_at, lat, lng, accuracy_m, status FROM {Ping._meta.db_table}
  WHERE user_id = %(u)s::uuid AND status <> 1 AND recorded_at > %(hi)s AND recorded_at <= %(hi_bound)s
  ORDER BY recorded_at LIMIT 1)
UNION ALL
(SELECT recorded_at, lat, lng, accuracy_m, status FROM {Ping._meta.db_table}
  WHERE user_id = %(u)s::uuid AND status = 0 AND recorded_at > %(hi)s AND recorded_at <= %(hi_bound)s
  ORDER BY recorded_at LIMIT 1)
"""


@dataclass
class _Stored:
    """What the database knows around a batch: accepted neighbours, and every stored time."""

    anchors: list[_Anchor]  # accepted pings, time order; ``matchable`` says which may match
    times: dict[datetime, int]  # recorded_at -> status


def _stored_neighbours(user_id, lo: datetime, hi: datetime, now: datetime) -> _Stored:
    """The user's accepted and matchable pings around [lo, hi] and inside it, and the times of
    all pings stored inside it (to recognise a client's retry)."""
    # The primary (a replica may not have the user's last ping yet), and psycopg directly:
    # cachalot would parse this SQL on every call for a table it never caches.
    with connections[PRIMARY].cursor() as cursor:
        cursor.cursor.execute(_NEIGHBOURS_SQL, {"u": user_id, "lo": lo, "hi": hi, "now": now,
                                         "lo_bound": lo - PLAUSIBILITY_LOOKAROUND,
                                         "hi_bound": hi + PLAUSIBILITY_LOOKAROUND})
        rows = cursor.fetchall()
    anchors = {t: _Anchor(t, lat, lng, accuracy, status == PingStatus.MATCHABLE)
               for t, lat, lng, accuracy, status in rows if status != PingStatus.IMPLAUSIBLE}
    return _Stored(sorted(anchors.values()), {row[0]: row[4] for row in rows})


def _stored_for(user_id, batch: Sequence[PingIn], now: datetime, last: _LastPing) -> _Stored:
    """Stored pings the batch must be checked against.

    A live client sends pings in order, so the cached last accepted and last matchable pings
    are all that is needed; a late batch, a retried one (its times are not after the cached
    ping) or a cold cache asks the database.
    """
    newest = _anchor(batch[-1], matchable=True)
    last.swap(_Last(newest, newest))
    previous = last.previous
    if previous is not None and (previous.accepted is None or previous.accepted.recorded_at < batch[0].recorded_at):
        anchors = {a.recorded_at: a for a in (previous.accepted, previous.matchable) if a is not None}
        return _Stored(sorted(anchors.values()), {})
    return _stored_neighbours(user_id, batch[0].recorded_at, batch[-1].recorded_at, now)


def _anchor(ping: PingIn, matchable: bool) -> _Anchor:
    return _Anchor(ping.recorded_at, ping.lat, ping.lng, ping.accuracy_m, matchable)


def _judge(batch: Sequence[PingIn], anchors: list[_Anchor], now: datetime) -> list[int]:
    """Status per ping of a time-sorted batch, judged ping by ping in time order against the
    stored neighbours and the batch's pings judged before it (docs/crossings.md):

    IMPLAUSIBLE  faster than MAX_PLAUSIBLE_SPEED_KMH from the accepted ping before or to the one after;
    LATE         received more than CROSSING_LIVE_S after it was recorded;
    DENSE / FAST less than MATCH_MIN_INTERVAL_S from, or faster than MATCH_MAX_SPEED_KMH to or
                 from, the matchable ping before or after it;
    MATCHABLE    otherwise (the INSERT turns it into GHOST or UNVERIFIED from the user's state).
    """
    accepted = list(anchors)
    statuses: list[int] = []
    live_since = now - timedelta(seconds=settings.CROSSING_LIVE_S)
    for ping in batch:
        here = _anchor(ping, matchable=False)
        i = bisect.bisect_left(accepted, here)
        before = accepted[i - 1] if i else None
        after = accepted[i] if i < len(accepted) else None
        if any(other is not None and _speed_kmh(other, here) > settings.MAX_PLAUSIBLE_SPEED_KMH
               for other in (before, after)):
            statuses.append(PingStatus.IMPLAUSIBLE)
            continue
        status = PingStatus.MATCHABLE if ping.recorded_at >= live_since else PingStatus.LATE
        if status == PingStatus.MATCHABLE:
            neighbours = [_nearest_matchable(accepted, i, -1), _nearest_matchable(accepted, i, 1)]
            for other in (n for n in neighbours if n is not None):
                if abs((other.recorded_at - ping.recorded_at).total_seconds()) < settings.MATCH_MIN_INTERVAL_S:
                    status = PingStatus.DENSE
                    break
                if _speed_kmh(other, here) > settings.MATCH_MAX_SPEED_KMH:
                    status = PingStatus.FAST
                    break
        statuses.append(status)
        accepted.insert(i, _anchor(ping, matchable=status == PingStatus.MATCHABLE))
    return statuses


def _nearest_matchable(accepted: list[_Anchor], i: int, step: int) -> _Anchor | None:
    j = i - 1 if step < 0 else i
    while 0 <= j < len(accepted):
        if accepted[j].matchable:
            return accepted[j]
        j += step
    return None


def _array(values) -> str:
    """A PostgreSQL array literal of numbers or ISO times (nothing there needs quoting).

    Built with one join, it costs a fraction of psycopg's per-element array adaptation,
    which was most of the app CPU of a 100-ping batch.
    """
    return "{" + ",".join(map(str, values)) + "}"


def _insert_sql(*, many_users: bool = False, one_ping: bool = False) -> str:
    # The user's state is read inside the INSERT: no extra round trip, and the state in force
    # at ingest is the one that counts (verifying later does not make old pings match).  A
    # user that no longer exists (erased while its token was still valid) inserts nothing.
    # ``many_users``: the pings of several users in one statement, a user id per ping as the
    # first array instead of one id last (the drain of bench/scenarios/ping_log.py).
    # ``one_ping``: one row of typed parameters instead of arrays, for the single ping a phone
    # sends every 30 s: unnest's six array literals and its function scan were a third of the
    # statement's PostgreSQL CPU and a quarter of its app CPU (docs/benchmarks/locations.md
    # section 4).
    ids, id_column, user = ("%s::text::uuid[], ", "user_id, ", "u.user_id") if many_users else ("", "", "%s::uuid")
    if one_ping:
        rows = "(VALUES (%s::integer, %s::timestamptz, %s::float8, %s::float8, %s::real, %s::smallint))"
    else:
        rows = (f"unnest({ids}%s::text::integer[], %s::text::timestamptz[], %s::text::float8[], %s::text::float8[],"
                f"\n                %s::text::real[], %s::text::smallint[])")
    return f"""
    INSERT INTO {Ping._meta.db_table} (user_id, city_id, recorded_at, lat, lng, accuracy_m, status, expires_at)
    SELECT g.id, u.city_id, u.recorded_at, u.lat, u.lng, u.accuracy_m,
           CASE WHEN u.status <> {int(PingStatus.MATCHABLE)} THEN u.status
                WHEN g.ghost_mode THEN {int(PingStatus.GHOST)}
                WHEN NOT g.is_verified THEN {int(PingStatus.UNVERIFIED)}
                ELSE u.status END,
           u.recorded_at + %s::interval
    FROM {rows}
         AS u({id_column}city_id, recorded_at, lat, lng, accuracy_m, status)
    JOIN {User._meta.db_table} g ON g.id = {user}
    """


_INSERT_SQL = _insert_sql()
_INSERT_ONE_SQL = _insert_sql(one_ping=True)
#: Store a single ping with ``_INSERT_ONE_SQL`` (``False``: as a batch of one, through the arrays,
#: as before; bench/scenarios/ping_me_paths.py compares the two).
ONE_PING_ROW = True


class UserGone(Exception):
    """The user was erased: nothing of theirs may be stored any more."""


def ingest_pings(user, pings: Iterable[PingIn], *, now: datetime | None = None) -> IngestResult:
    """Store a batch of validated pings of ``user`` (a user or its id; the API validates with
    ``validation.clean_pings``) and say how many were plausible.

    Every ping is stored with the status the ping rules give it (``_judge``); only MATCHABLE
    pings are ever matched.  A retried batch is not stored twice.  Raises UserGone when the
    user no longer exists.
    """
    user_id = getattr(user, "pk", user)
    now = now or timezone.now()
    batch = sorted(pings, key=lambda p: p.recorded_at)
    if not batch:
        return IngestResult(0, 0)
    last = _LastPing(user_id)
    stored = _stored_for(user_id, batch, now, last)
    batch, retried = _drop_retried(batch, stored)
    if not batch:
        last.settle(_newest(stored.anchors, last.previous))
        return retried
    statuses = _judge(batch, stored.anchors, now)
    _insert(user_id, batch, statuses, last)
    accepted = [_anchor(p, matchable=s == PingStatus.MATCHABLE)
                for p, s in zip(batch, statuses, strict=True) if s != PingStatus.IMPLAUSIBLE]
    implausible = len(batch) - len(accepted)
    metrics.count_pings(len(accepted), implausible)  # newly stored only: a retry is not counted twice
    last.settle(_newest([*stored.anchors, *accepted], last.previous))
    return IngestResult(accepted=len(accepted) + retried.accepted, implausible=implausible + retried.implausible)


def _drop_retried(batch: list[PingIn], stored: _Stored) -> tuple[list[PingIn], IngestResult]:
    """A retry (the client did not see our answer): pings already stored are not stored twice;
    they are counted as they were judged the first time."""
    if not stored.times:
        return batch, IngestResult(0, 0)
    retried = [stored.times[p.recorded_at] for p in batch if p.recorded_at in stored.times]
    bad = sum(1 for status in retried if status == PingStatus.IMPLAUSIBLE)
    fresh = [p for p in batch if p.recorded_at not in stored.times]
    return fresh, IngestResult(accepted=len(retried) - bad, implausible=bad)


def _newest(anchors: list[_Anchor], previous: _Last | None) -> _Last | None:
    """The newest accepted and newest matchable ping among ``anchors`` and the cached ones."""
    pool = list(anchors)
    if previous is not None:
        pool += [a for a in (previous.accepted, previous.matchable) if a is not None]
    accepted = max(pool, default=None)
    matchable = max((a for a in pool if a.matchable), default=None)
    if accepted is None:
        return None
    return _Last(accepted, matchable)


def _insert(user_id, batch: list[PingIn], statuses: list[int], last: _LastPing) -> None:
    """One INSERT of the whole batch into the city partitions (a single ping: one row of
    parameters, ``_INSERT_ONE_SQL``; more: arrays, ``_INSERT_SQL``).

    On the primary, but not through the router: a ping must not pin the user's reads to the
    primary for REPLICA_PIN_SECONDS (with a ping every 30 s that would be a sixth of their
    reads, plus a WAL-position query per ping); the one read of pings a user makes,
    GET locations/, reads the primary itself.  Straight to psycopg: django-cachalot's hook
    on raw SQL lists every table of the project on each write (~0.2 ms), for a table it
    never caches.
    """
    city_ids = selectors.city_ids_for_points((p.lat, p.lng) for p in batch)
    if len(batch) == 1 and ONE_PING_ROW:
        ping = batch[0]
        sql, params = _INSERT_ONE_SQL, [retention(), city_ids[0], ping.recorded_at, ping.lat, ping.lng,
                                        ping.accuracy_m, int(statuses[0]), user_id]
    else:
        sql, params = _INSERT_SQL, [
            retention(), _array(city_ids), _array([p.recorded_at.isoformat() for p in batch]),
            _array([repr(p.lat) for p in batch]), _array([repr(p.lng) for p in batch]),
            _array(["NULL" if p.accuracy_m is None else repr(p.accuracy_m) for p in batch]),
            _array([int(s) for s in statuses]), user_id,
        ]
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.cursor.execute(sql, params)
            inserted = cursor.cursor.rowcount
    except BaseException:
        last.settle(last.previous)  # nothing was stored: put the previous value back
        raise
    if inserted == 0:
        last.settle(None)
        raise UserGone(user_id)


def delete_user_pings(user_id) -> int:
    """Delete every stored ping of a user (their own request, or account erasure)."""
    deleted, _ = Ping.objects.filter(user_id=user_id).delete()
    try:
        redis_client().delete(_last_ping_key(user_id))
    except Exception:
        logger.warning("last-ping cache unavailable", exc_info=True)
    return deleted


# ------------------------------------------------------------------ cities, partitions


@transaction.atomic
def save_city(city: City) -> City:
    """Save a city (new or changed) and make sure its partitions exist, in one transaction."""
    city.full_clean()
    city.save()
    partitions.create_list_partition(city.id)
    today = timezone.now().astimezone(UTC).date()
    list_name = partitions.list_partition(city.id)
    for offset in range(-1, 3):
        partitions.create_day_partition(list_name, today + timedelta(days=offset))
    return city


def create_city(*, slug: str, name: str, lat: float, lng: float, radius_km: float, active: bool = True) -> City:
    return save_city(City(slug=slug, name=name, lat=lat, lng=lng, radius_km=radius_km, active=active))


@dataclass
class EnsureResult:
    created: list[str] = field(default_factory=list)
    moved_rows: int = 0


def missing_partitions(days_ahead: int = 3, now: datetime | None = None) -> list[tuple[str, tuple]]:
    """Partitions that ``ensure_partitions`` would create, as (name, creator-arguments)."""
    now = (now or timezone.now()).astimezone(UTC)
    tables = partitions.existing_tables()
    wanted: list[tuple[str, tuple]] = []
    list_names = [partitions.NOCITY]
    for city_id in City.objects.order_by("id").values_list("id", flat=True):
        name = partitions.list_partition(city_id)
        if name not in tables:
            wanted.append((name, ("list", city_id)))
        list_names.append(name)
    first_day = (now - retention()).date()
    last_day = (now + timedelta(days=days_ahead)).date()
    for list_name in list_names:
        day = first_day
        while day <= last_day:
            name = partitions.day_partition(list_name, day)
            if name not in tables:
                wanted.append((name, ("day", list_name, day)))
            day += timedelta(days=1)
    return wanted


def ensure_partitions(days_ahead: int = 3, now: datetime | None = None, *, progress=None) -> EnsureResult:
    """Create every missing city partition and day partition from the oldest retained day to
    ``days_ahead`` days ahead.  Idempotent; rows caught meanwhile by a DEFAULT partition are
    moved into the day they belong to."""
    result = EnsureResult()
    for name, spec in missing_partitions(days_ahead, now):
        if spec[0] == "list":
            partitions.create_list_partition(spec[1])
        else:
            result.moved_rows += partitions.create_day_partition(spec[1], spec[2])
        result.created.append(name)
        if progress:
            progress(name)
    return result


# ------------------------------------------------------------------------------ expiry


@dataclass
class SweepResult:
    dropped: list[str] = field(default_factory=list)
    deleted_rows: int = 0


def _expired_leaves(tables: set[str]) -> list[str]:
    days = {p.name for p in partitions.day_partitions(tables)}
    defaults = {t for t in tables if t.endswith("_pdefault")}
    return sorted(days | defaults)


def sweep_expired(now: datetime | None = None, dry_run: bool = False, *, progress=None) -> SweepResult:
    """Remove expired pings: whole day partitions by DROP, the expired edge by bounded DELETEs.

    A day partition goes once no new ping can land in it (its day ended more than
    ``PING_RETENTION_HOURS`` ago: older pings are refused) and none of its rows is still
    live; ``ensure_partitions`` keeps exactly the days after that, so the two never undo
    each other's work.  Rows that expired inside a day still holding live ones are deleted in batches
    of ``DELETE_BATCH`` by ctid, partition by partition, so no statement runs long.
    """
    now = now or timezone.now()
    result = SweepResult()
    tables = partitions.existing_tables()
    for partition in partitions.day_partitions(tables):
        if partitions.day_bounds(partition.day)[1] > now - retention():
            continue
        if partitions.partition_has_live_rows(partition.name, now):
            continue
        if not dry_run:
            partitions.drop_day_partition(partition)
        tables.discard(partition.name)
        result.dropped.append(partition.name)
        if progress:
            progress(f"dropped {partition.name}" if not dry_run else f"would drop {partition.name}")
    for leaf in _expired_leaves(tables):
        deleted = _count_expired(leaf, now) if dry_run else _delete_expired(leaf, now)
        result.deleted_rows += deleted
        if deleted and progress:
            progress(f"{'would delete' if dry_run else 'deleted'} {deleted} rows from {leaf}")
    return result


def _count_expired(table: str, now: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.quote_ident(table)} WHERE expires_at <= %s", [now])
        return cursor.fetchone()[0]


def _delete_expired(table: str, now: datetime) -> int:
    total = 0
    sql = (f"DELETE FROM {partitions.quote_ident(table)} WHERE ctid = ANY(ARRAY("
           f"SELECT ctid FROM {partitions.quote_ident(table)} WHERE expires_at <= %s LIMIT {DELETE_BATCH}))")
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [now])
            deleted = cursor.rowcount
        total += deleted
        if deleted < DELETE_BATCH:
            return total


class IngestSteps:
    """The steps of ``ingest_pings`` for benchmarks of other ways to store pings
    (bench/scenarios/ping_log.py: the pings through a durable log, measured and not built;
    docs/benchmarks/locations.md section 3; bench/scenarios/ping_insert.py: the INSERT's
    statements and table layouts, section 4).  Not an API for the app: ``ingest_pings`` is."""

    last_ping_key = staticmethod(_last_ping_key)
    Anchor = _Anchor
    Last = _Last
    anchor = staticmethod(_anchor)
    stored_neighbours = staticmethod(_stored_neighbours)
    judge = staticmethod(_judge)
    newest = staticmethod(_newest)
    array = staticmethod(_array)
    insert_sql = staticmethod(_insert_sql)
