"""Writing and reading the per-user event log: seq allocation, replay, redaction, pruning.

``record`` numbers events per user atomically (one row lock per user, held to commit, so
seqs commit in order) and publishes them after commit.
Design: docs/realtime.md.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.db import connections, transaction
from django.utils import timezone
from psycopg import Pipeline
from psycopg.pq import TransactionStatus

from core.db import router as db_router
from realtime import bus
from realtime.models import Cursor, Event

REDACTED = "redacted"
INERROR = TransactionStatus.INERROR
PIPELINE = Pipeline.is_supported()  # libpq 14 or later; else Django's atomic block (three round trips)

# One statement: bump each user's counter (rows locked in user order, held to commit) and
# insert the events numbered from it; returns each user's new last seq.  ``later`` is how many
# of the same user's events follow an event in the batch (its seq is last_seq - later).
_RECORD = """
WITH allocated AS (
    INSERT INTO realtime_cursor (user_id, last_seq)
    SELECT u, n FROM unnest(%s::uuid[], %s::bigint[]) AS t(u, n) ORDER BY u
    ON CONFLICT (user_id) DO UPDATE SET last_seq = realtime_cursor.last_seq + EXCLUDED.last_seq
    RETURNING user_id, last_seq
), logged AS (
    INSERT INTO realtime_event (user_id, seq, type, payload, peer_id, created_at)
    SELECT e.u, a.last_seq - e.later, e.t, e.p::jsonb, e.peer::uuid, %s
    FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::text[], %s::text[]) AS e(u, later, t, p, peer)
    JOIN allocated a ON a.user_id = e.u
)
SELECT user_id, last_seq FROM allocated
"""


@dataclass(frozen=True)
class Entry:
    user_id: uuid.UUID
    type: str
    payload: dict
    peer_id: uuid.UUID | None = None


def as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def envelope(event_type: str, seq: int, payload: dict, at: datetime) -> dict:
    """What a client receives for one event."""
    return {"type": event_type, "seq": seq, "data": payload, "at": at.isoformat()}


def record(entries: list[Entry]) -> list[tuple[uuid.UUID, int]]:
    """Append events to their users' logs and publish them once committed; ``(user, seq)`` of each.

    One statement.  Inside a caller's transaction it runs in a savepoint, so a failure rolls
    back these events only (the caller decides what it means): the savepoint, the statement
    and its release go to PostgreSQL in one round trip (``_in_savepoint``).  Outside one, in
    its own transaction.
    """
    if not entries:
        return []
    entries = [Entry(as_uuid(e.user_id), e.type, e.payload, as_uuid(e.peer_id) if e.peer_id else None)
               for e in entries]
    counts = Counter(e.user_id for e in entries)
    users = sorted(counts)  # rows are locked in one order: two batches cannot deadlock
    seen: Counter[uuid.UUID] = Counter()
    later = []
    for e in entries:
        seen[e.user_id] += 1
        later.append(counts[e.user_id] - seen[e.user_id])
    now = timezone.now()
    params: list[Any] = [users, [counts[u] for u in users], now, [e.user_id for e in entries], later,
                         [e.type for e in entries],
                         [orjson.dumps(e.payload, option=orjson.OPT_NON_STR_KEYS).decode() for e in entries],
                         [str(e.peer_id) if e.peer_id else None for e in entries]]
    connection = connections["default"]
    if connection.in_atomic_block and PIPELINE:
        rows = _in_savepoint(connection, _RECORD, params)
    else:  # its own transaction, or a savepoint without pipeline mode
        with transaction.atomic(using="default"), connection.cursor() as cursor:
            cursor.execute(_RECORD, params)
            rows = cursor.fetchall()
    last = {as_uuid(user): seq for user, seq in rows}
    numbered = [(e.user_id, last[e.user_id] - n) for e, n in zip(entries, later, strict=True)]
    stamp = time.time()
    messages = [(user, {"k": "ev", "t": stamp, "peer": str(e.peer_id) if e.peer_id else None,
                        **envelope(e.type, seq, e.payload, now)})
                for e, (user, seq) in zip(entries, numbered, strict=True)]
    transaction.on_commit(lambda: bus.publish(messages), using="default")
    return numbered


_SAVEPOINT = "realtime_record"


def _in_savepoint(connection, sql: str, params: list) -> list[tuple]:
    """``sql``'s rows, run in a savepoint of the current transaction: ``SAVEPOINT``, the
    statement and ``RELEASE`` in one round trip (psycopg's pipeline mode), instead of three
    and Django's (and django-cachalot's) atomic block around them.  A failure rolls back to
    the savepoint (the caller's transaction goes on as if nothing was tried) and is raised
    as Django's database error, as the atomic block did."""
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = connection.connection
        try:
            with raw.pipeline():
                raw.execute(f"SAVEPOINT {_SAVEPOINT}")
                cursor.execute(sql, params)  # through Django's wrappers (metrics, the raw-write hook)
                raw.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        except Exception:
            if raw.info.transaction_status == INERROR:
                raw.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                raw.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            raise
        return cursor.fetchall()


def current_seq(user_id) -> int:
    with db_router.use_primary():
        return Cursor.objects.filter(user_id=user_id).values_list("last_seq", flat=True).first() or 0


def replay(user_id, after: int, upto: int | None, limit: int) -> list[dict]:
    """Events of ``user_id`` with ``after < seq <= upto``, oldest first, at most ``limit``.

    Each is an envelope plus ``peer``; redacted events come back with type ``redacted`` (the
    caller skips them but moves past their seq).
    """
    with db_router.use_primary():
        rows = Event.objects.filter(user_id=user_id, seq__gt=after)
        if upto is not None:
            rows = rows.filter(seq__lte=upto)
        return [{**envelope(t, seq, payload, at), "peer": str(peer) if peer else None}
                for t, seq, payload, at, peer in rows.order_by("seq").values_list(
                    "type", "seq", "payload", "created_at", "peer_id")[:limit]]


def missing_after(user_id, after: int) -> bool:
    """True when events after ``after`` were pruned: the client must reload with REST."""
    with db_router.use_primary():
        if after >= current_seq(user_id):
            return False
        return not Event.objects.filter(user_id=user_id, seq=after + 1).exists()


def redact_between(a_id, b_id, types: tuple[str, ...] | None = None) -> int:
    """Blank the logged events each of two users has about the other (kept as seq placeholders)."""
    done = 0
    for owner, peer in ((a_id, b_id), (b_id, a_id)):
        rows = Event.objects.using("default").filter(user_id=owner, peer_id=peer).exclude(type=REDACTED)
        if types is not None:
            rows = rows.filter(type__in=types)
        else:
            rows = rows.exclude(type="connection.removed")
        done += rows.update(type=REDACTED, payload={})
    return done


def erase_user(user_id) -> None:
    """The account goes: its log and counter, and what others' logs say about it."""
    Event.objects.using("default").filter(user_id=user_id).delete()
    Cursor.objects.using("default").filter(user_id=user_id).delete()
    Event.objects.using("default").filter(peer_id=user_id).update(type=REDACTED, payload={})


def prune(before: datetime, batch_size: int = 5000) -> int:
    """Delete events created before ``before``, in batches; returns how many went."""
    total = 0
    while True:
        with connections["default"].cursor() as cursor:
            cursor.execute("DELETE FROM realtime_event WHERE id IN (SELECT id FROM realtime_event "
                           "WHERE created_at < %s LIMIT %s)", [before, batch_size])
            deleted = cursor.rowcount
        total += deleted
        if deleted < batch_size:
            return total
