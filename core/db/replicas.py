"""Which read replicas may serve reads right now: health, lag and replay position.

Probed at most once per ``REPLICA_HEALTH_TTL_S`` per process (no query pays for it) and marked
down at once when a query fails; ``replica_lag`` also serves /metrics and ``replica_status``.
Design: docs/subsystems/read-routing.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

LAG_SQL = """
SELECT pg_is_in_recovery(),
       pg_last_wal_receive_lsn()::text,
       pg_last_wal_replay_lsn()::text,
       COALESCE(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), true),
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
"""


@dataclass
class ReplicaStatus:
    alias: str
    reachable: bool
    in_recovery: bool = False
    receive_lsn: str | None = None
    replay_lsn: str | None = None
    caught_up: bool = False
    lag_seconds: float | None = None
    error: str = ""


_HEALTH: dict[str, tuple[float, bool, str | None]] = {}  # alias -> (valid until, healthy, replay lsn)


def _ttl() -> float:
    return getattr(settings, "REPLICA_HEALTH_TTL_S", 1.0)


def _connect_timeout() -> int:
    return max(1, int(getattr(settings, "REPLICA_CONNECT_TIMEOUT_S", 1)))


def _query(alias: str, fresh_connection: bool) -> tuple | None:
    if not fresh_connection:
        with connections[alias].cursor() as cursor:
            cursor.execute(LAG_SQL)
            return cursor.fetchone()
    params = connections[alias].get_connection_params()
    for key in ("pool", "server_side_binding", "prepare_threshold", "cursor_factory", "context"):
        params.pop(key, None)
    params["connect_timeout"] = _connect_timeout()
    with psycopg.connect(**params, autocommit=True) as conn:
        return conn.execute(LAG_SQL).fetchone()


def replica_lag(alias: str, fresh_connection: bool = False) -> ReplicaStatus:
    """Ask one replica how far behind it is (the router, /metrics and ``replica_status``).

    The lag is the age of the last replayed transaction, except when the replica has
    replayed everything it received: an idle primary makes that timestamp old although
    nothing is missing, so a caught-up replica reports 0.  A server that is not in recovery
    (a mirror in tests, or a promoted replica) has no lag.
    """
    try:
        row = _query(alias, fresh_connection)
        if row is None:
            raise RuntimeError("the replica answered no row")
        in_recovery, receive_lsn, replay_lsn, caught_up, age = row
    except Exception as exc:
        return ReplicaStatus(alias, reachable=False, error=f"{type(exc).__name__}: {exc}"[:200])
    if not in_recovery:
        return ReplicaStatus(alias, reachable=True, caught_up=True, lag_seconds=0.0)
    lag = 0.0 if caught_up or age is None else max(float(age), 0.0)
    return ReplicaStatus(alias, reachable=True, in_recovery=True, receive_lsn=receive_lsn, replay_lsn=replay_lsn,
                         caught_up=bool(caught_up), lag_seconds=lag)


def _probe(alias: str, was_healthy: bool) -> tuple[bool, str | None]:
    status = replica_lag(alias, fresh_connection=not was_healthy)
    if not status.reachable:
        logger.warning("replica %s is unreachable (%s); reads go elsewhere", alias, status.error)
        return False, None
    if not status.in_recovery:
        return True, None  # a mirror of the primary (tests) or a promoted server: always current
    lag = status.lag_seconds or 0.0
    healthy = lag <= settings.REPLICA_MAX_LAG_S
    if not healthy:
        logger.warning("replica %s lags %.1fs (limit %ss); reads go elsewhere", alias, lag,
                       settings.REPLICA_MAX_LAG_S)
    return healthy, status.replay_lsn


def replica_state(alias: str) -> tuple[bool, str | None]:
    """(healthy, replay position) of ``alias``, probed at most once per TTL per process."""
    now = time.monotonic()
    cached = _HEALTH.get(alias)
    if cached and cached[0] > now:
        return cached[1], cached[2]
    healthy, lsn = _probe(alias, was_healthy=cached is None or cached[1])
    _HEALTH[alias] = (time.monotonic() + _ttl(), healthy, lsn)
    return healthy, lsn


def mark_down(alias: str) -> None:
    """A query failed on ``alias``: skip it until the next probe (one TTL from now) says otherwise.

    Its pooled connections are dropped too: after a restart every one of them is dead.
    """
    _HEALTH[alias] = (time.monotonic() + _ttl(), False, None)
    close_pool = getattr(connections[alias], "close_pool", None)
    if close_pool is not None:
        try:
            close_pool()
        except Exception:  # closing a pool of dead connections must not hide the real error
            logger.warning("could not close the pool of replica %s", alias, exc_info=True)


def forget() -> None:
    """Drop cached health (tests, and after an operator changes the topology)."""
    _HEALTH.clear()


def lsn_value(lsn: str) -> int:
    """A PostgreSQL LSN ('16/B374D848') as a comparable integer."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def usable_replicas(aliases: list[str], wait_for_wal: str | None = None) -> list[str]:
    """The healthy replicas among ``aliases`` that have replayed past ``wait_for_wal``."""
    usable = []
    wanted = lsn_value(wait_for_wal) if wait_for_wal else None
    for alias in aliases:
        healthy, replay_lsn = replica_state(alias)
        if not healthy:
            continue
        if wanted is not None and replay_lsn is not None and lsn_value(replay_lsn) < wanted:
            continue
        usable.append(alias)
    return usable


def primary_wal_position() -> str | None:
    """The primary's WAL insert position: past the commit record of every finished write.

    ``pg_current_wal_insert_lsn`` rather than ``pg_current_wal_lsn``: with
    ``synchronous_commit = off`` a commit record may still sit in the WAL buffers, before
    the write position, and a replica that replayed up to the write position would miss it.
    """
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
            return cursor.fetchone()[0]
    except Exception:
        logger.warning("could not read the primary's WAL position", exc_info=True)
        return None
