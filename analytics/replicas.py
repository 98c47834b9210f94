"""Replication lag of each read replica, for ``manage.py replica_status`` and /metrics."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections

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


def replica_lag(alias: str) -> ReplicaStatus:
    """Ask one replica how far behind it is.

    The lag is the age of the last replayed transaction, except when the replica has
    replayed everything it received: an idle primary makes that timestamp old although
    nothing is missing, so a caught-up replica reports 0.  A server that is not in recovery
    (a mirror in tests, or a promoted replica) has no lag.
    """
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(LAG_SQL)
            in_recovery, receive_lsn, replay_lsn, caught_up, age = cursor.fetchone()
    except Exception as exc:
        return ReplicaStatus(alias, reachable=False, error=f"{type(exc).__name__}: {exc}"[:200])
    if not in_recovery:
        return ReplicaStatus(alias, reachable=True, caught_up=True, lag_seconds=0.0)
    lag = 0.0 if caught_up or age is None else max(float(age), 0.0)
    return ReplicaStatus(alias, reachable=True, in_recovery=True, receive_lsn=receive_lsn, replay_lsn=replay_lsn,
                         caught_up=bool(caught_up), lag_seconds=lag)
