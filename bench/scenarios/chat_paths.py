"""App CPU per request of the chat endpoints, the code before this round of issue 17 and after, in one process.

    python -m bench.scenarios.chat_paths [--batches 12 --batch 100]
    python -m bench.scenarios.chat_paths --lean [--batches 12 --batch 100] [--after-first]

One Django WSGI handler on the harness's seeded bench database (no HTTP server, no client),
signed in as users with an accepted connection.  POST and GET connections/{id}/messages/ run
in batches that alternate between the two code paths, so a noisy machine slows both alike:
"before" is a copy of the code at main 0d4ff04 (below: the view methods, the send service
that read the sender's flags and the chat in two round trips, and the event log's writer
in Django's atomic block); "after" is the code of this checkout.  The figure is the thread
CPU time per request, median over the batches, and the ratio.  (The previous round compared
against main bbcf8e1: this script's history.)  ``--lean``: GET only, DRF's path ("before",
``MessageListView.lean_get = False``) against the lean one ("after"), the rest of the code this
checkout's.  Figures: docs/benchmarks/performance.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import orjson

from bench.harness.in_process import alternate, chatting_users, django_on_bench, thread_ms, wsgi_environ

# Copies of main 0d4ff04's statements (realtime.events._RECORD, connections.services._STORE_MESSAGE).
OLD_RECORD = """
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
OLD_STORE_MESSAGE = (
    "INSERT INTO messages (id, connection_id, sender_id, body, erased, created_at) "
    "SELECT %s, id, %s, %s, false, %s FROM connections WHERE id = %s AND status = %s "
    "FOR NO KEY UPDATE"
)


def old_paths():
    """The code before this round's change (main 0d4ff04), as functions to swap in."""
    import uuid

    from django.conf import settings
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.db import connections, router, transaction
    from django.http import Http404
    from django.utils import timezone
    from rest_framework import status as http_status
    from rest_framework.response import Response

    from accounts import selectors as account_selectors
    from connections import services, signals
    from connections.api import serializers as s
    from connections.api import views
    from connections.models import Connection, ConnectionStatus, Message
    from connections.selectors import UNREAD_NS, cached_chat
    from core.cache import keys as cachekeys
    from realtime import bus, events
    from realtime.events import Entry, as_uuid

    def record(entries):
        """realtime.events.record: the statement in Django's atomic block (a savepoint: SAVEPOINT,
        the statement, RELEASE, each a round trip)."""
        if not entries:
            return []
        entries = [Entry(as_uuid(e.user_id), e.type, e.payload, as_uuid(e.peer_id) if e.peer_id else None)
                   for e in entries]
        counts = Counter(e.user_id for e in entries)
        users = sorted(counts)
        seen: Counter = Counter()
        later = []
        for e in entries:
            seen[e.user_id] += 1
            later.append(counts[e.user_id] - seen[e.user_id])
        now = timezone.now()
        with transaction.atomic(using="default"):
            with connections["default"].cursor() as cursor:
                cursor.execute(OLD_RECORD, [users, [counts[u] for u in users], now, [e.user_id for e in entries],
                                         later, [e.type for e in entries],
                                         [orjson.dumps(e.payload, option=orjson.OPT_NON_STR_KEYS).decode()
                                          for e in entries],
                                         [str(e.peer_id) if e.peer_id else None for e in entries]])
                last = {as_uuid(user): seq for user, seq in cursor.fetchall()}
            numbered = [(e.user_id, last[e.user_id] - n) for e, n in zip(entries, later, strict=True)]
            stamp = time.time()
            messages = [(user, {"k": "ev", "t": stamp, "peer": str(e.peer_id) if e.peer_id else None,
                                **events.envelope(e.type, seq, e.payload, now)})
                        for e, (user, seq) in zip(entries, numbered, strict=True)]
            transaction.on_commit(lambda: bus.publish(messages), using="default")
        return numbered

    def clean_body(body):
        if not isinstance(body, str):
            raise ValidationError({"body": ["Must be text."]})
        body = body.strip()
        if not body:
            raise ValidationError({"body": ["A message cannot be empty."]})
        limit = settings.CHAT_MAX_MESSAGE_CHARS
        if len(body) > limit:
            raise ValidationError({"body": [f"At most {limit} characters."]})
        if "\x00" in body:
            raise ValidationError({"body": ["Null characters are not allowed."]})
        return body

    def delivered_(sender_id):
        active, shadow_banned = account_selectors.profile_flags([sender_id]).get(
            uuid.UUID(str(sender_id)), (False, False))
        if not active:
            raise PermissionDenied(services.DEACTIVATED_SENDER)
        return not shadow_banned

    def chat_connection(user_id, connection_id):
        try:
            cid = uuid.UUID(str(connection_id))
        except (TypeError, ValueError, AttributeError):
            raise Http404 from None
        known, unread = cached_chat(user_id, cid)
        if known is not None:
            return known, unread
        conn = Connection.objects.filter(pk=cid).first()
        if conn is None or not conn.is_member(user_id):
            raise Http404
        if account_selectors.is_blocked_between(conn.user_low_id, conn.user_high_id):
            raise Http404
        if conn.status != ConnectionStatus.ACCEPTED:
            raise PermissionDenied("You can chat only with accepted connections.")
        return conn, unread

    def send_message(*, user_id, connection_id, body):
        """connections.services.send_message: the sender's flags and the chat read in two round
        trips, the message_sent callback registered with no listener."""
        body = clean_body(body)
        delivered = delivered_(user_id)
        with transaction.atomic():
            conn, _unread = chat_connection(user_id, connection_id)
            if not delivered:
                return Message(connection_id=conn.pk, sender_id=user_id, body=body)
            message = Message(connection_id=conn.pk, sender_id=user_id, body=body)
            with connections[router.db_for_write(Message, instance=message)].cursor() as cursor:
                cursor.execute(OLD_STORE_MESSAGE, [message.pk, uuid.UUID(str(user_id)), body,
                                                         message.created_at, conn.pk,
                                                         ConnectionStatus.ACCEPTED.value])
                if cursor.rowcount != 1:
                    raise Http404
            recipient = conn.other(user_id)
            cachekeys.bump_on_commit([(UNREAD_NS, recipient)])
            signals.message_stored.send(sender=Message, message_id=message.pk, connection_id=conn.pk,
                                        sender_id=user_id, recipient_id=recipient, body=message.body,
                                        created_at=message.created_at)
            transaction.on_commit(lambda: signals.message_sent.send(
                sender=Message, message_id=message.pk, connection_id=conn.pk, sender_id=user_id,
                recipient_id=recipient))
        return message

    def get(self, request, connection_id):
        me = request.user.pk
        conn, unread = services.chat_connection(user_id=me, connection_id=connection_id, with_unread=True)
        paginator = views.MessagePagination()
        page = paginator.paginate_queryset(views.selectors.MessageRows(conn.pk), request, view=self)
        if page and "cursor" not in request.query_params and unread.get(str(conn.pk)):
            services.mark_read(user_id=me, connection=conn, until=page[0]["created_at"])
        return paginator.get_paginated_response([s.message_row_out(row) for row in page])

    def post(self, request, connection_id):
        """The view: the body checked by DRF's serializer."""
        serializer = s.MessageIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = services.send_message(user_id=request.user.pk, connection_id=connection_id,
                                        body=serializer.validated_data["body"])
        return Response(s.message_out(message), status=http_status.HTTP_201_CREATED)

    return {"get": get, "post": post, "send_message": send_message, "record": record}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12, help="batches per code path and endpoint (alternating)")
    parser.add_argument("--batch", type=int, default=100, help="requests per batch")
    parser.add_argument("--after-first", action="store_true", help="run each pair's 'after' batch first")
    parser.add_argument("--old", default="get,post,send_message,record",
                        help="which pieces 'before' takes from the old code (the rest from this checkout): "
                             "one lever at a time, e.g. --old record")
    parser.add_argument("--lean", action="store_true",
                        help="GET only: DRF's path (before) against the lean path (after)")
    args = parser.parse_args(argv)
    django_on_bench()
    from django.core.handlers.wsgi import WSGIHandler

    from connections import services
    from connections.api import views
    from realtime import events

    conns, tokens = chatting_users("bench chat paths")
    handler = WSGIHandler()
    old = old_paths()
    pieces = set() if args.lean else set(args.old.split(","))
    new = {"get": views.MessageListView.get, "post": views.MessageListView.post,
           "send_message": services.send_message, "record": events.record}

    def use(path: str) -> None:
        """Swap the view methods, the service and the event log's writer (outside the timed part)."""
        code = {piece: (old if path == "before" and piece in pieces else new)[piece] for piece in new}
        views.MessageListView.get = code["get"]  # type: ignore[method-assign]
        views.MessageListView.post = code["post"]  # type: ignore[method-assign]
        services.send_message = code["send_message"]
        events.record = code["record"]
        # The lean read is this checkout's: off for "before" when it takes the old view (or --lean).
        views.MessageListView.lean_get = not (path == "before" and (args.lean or "get" in pieces))

    body = orjson.dumps({"body": "see you there?"})
    endpoints = {
        "POST connections/{id}/messages/": lambda i: wsgi_environ(
            "POST", f"/api/v1/connections/{conns[i % len(conns)].pk}/messages/", tokens[i % len(conns)], body),
        "GET connections/{id}/messages/": lambda i: wsgi_environ(
            "GET", f"/api/v1/connections/{conns[i % len(conns)].pk}/messages/", tokens[i % len(conns)]),
    }

    if args.lean:
        del endpoints["POST connections/{id}/messages/"]

    def batch(path, make, n) -> float:
        use(path)
        return thread_ms(handler, [make(i) for i in range(n)])

    print(f"{len(conns)} connections; {args.batches} alternating batches of {args.batch} per code path and "
          f"endpoint{' (after first)' if args.after_first else ''}; "
          f"{'DRF against the lean path' if args.lean else f'old: {args.old}'}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for name, make in endpoints.items():
        first, second = (lambda make=make: batch("before", make, args.batch),
                         lambda make=make: batch("after", make, args.batch))
        if args.after_first:
            ma, mb = alternate(second, first, args.batches)
        else:
            mb, ma = alternate(first, second, args.batches)
        rows.append((name, mb, ma))
        print(f"{name:32} before {mb:.3f} ms   after {ma:.3f} ms   ratio {ma / mb:.3f}", flush=True)
    use("after")
    print("\n| endpoint | app CPU ms before | after | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, mb, ma in rows:
        print(f"| {name} | {mb:.3f} | {ma:.3f} | {ma / mb:.2f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
