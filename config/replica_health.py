"""Which replicas may serve reads right now.

The check is cheap: each process remembers, per replica, whether it was healthy and until
when that answer holds (``REPLICA_HEALTH_TTL_S``).  Only when that expires does it ask the
replica for its replay lag.  With ``wait_for_wal`` (a WAL position the user's last write
reached on the primary) a replica is used only once it has replayed past that position.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

_HEALTH: dict[str, tuple[float, bool, str | None]] = {}  # alias -> (valid until, healthy, replay lsn)


def _ttl() -> float:
    return getattr(settings, "REPLICA_HEALTH_TTL_S", 2.0)


def _probe(alias: str) -> tuple[bool, str | None]:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(),"
                " COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0),"
                " pg_last_wal_replay_lsn()::text,"
                " pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
            )
            in_recovery, lag, replay_lsn, caught_up = cursor.fetchone()
    except Exception:
        logger.warning("replica %s is unreachable; reads go elsewhere", alias, exc_info=True)
        return False, None
    if not in_recovery:
        return True, None  # a mirror of the primary (tests) or a promoted server: always current
    # An idle primary makes replay_timestamp old although nothing is missing: caught_up says so.
    healthy = bool(caught_up) or float(lag) <= settings.REPLICA_MAX_LAG_S
    return healthy, replay_lsn


def replica_state(alias: str) -> tuple[bool, str | None]:
    now = time.monotonic()
    cached = _HEALTH.get(alias)
    if cached and cached[0] > now:
        return cached[1], cached[2]
    healthy, lsn = _probe(alias)
    _HEALTH[alias] = (now + _ttl(), healthy, lsn)
    return healthy, lsn


def forget() -> None:
    """Drop cached health (tests, and after an operator changes the topology)."""
    _HEALTH.clear()


def _lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def usable_replicas(aliases: list[str], wait_for_wal: str | None = None) -> list[str]:
    usable = []
    for alias in aliases:
        healthy, replay_lsn = replica_state(alias)
        if not healthy:
            continue
        if wait_for_wal and replay_lsn is not None and _lsn_value(replay_lsn) < _lsn_value(wait_for_wal):
            # Maybe it has caught up since the cached probe: ask again before giving up on it.
            _HEALTH.pop(alias, None)
            healthy, replay_lsn = replica_state(alias)
            if not healthy or (replay_lsn is not None and _lsn_value(replay_lsn) < _lsn_value(wait_for_wal)):
                continue
        usable.append(alias)
    return usable


def primary_wal_position() -> str | None:
    """The primary's current WAL insert position, or None if the primary is not replicating."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return cursor.fetchone()[0]
    except Exception:
        logger.warning("could not read the primary's WAL position", exc_info=True)
        return None
