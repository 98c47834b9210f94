"""App CPU per request of the chat endpoints, the code before issue 17's change and after, in one process.

    python -m bench.scenarios.chat_paths [--batches 12 --batch 100]

One Django WSGI handler on the harness's seeded bench database (no HTTP server, no client),
signed in as users with an accepted connection.  POST and GET connections/{id}/messages/ run
in batches that alternate between the two code paths, so a noisy machine slows both alike:
"before" is a copy of the code at main bbcf8e1 (below: the view methods, and the real-time
receiver that read the message back after commit and logged its events in a second
transaction); "after" is the code of this checkout (events logged in the message's own
transaction, the page read by SQL compiled once).  The figure is the thread CPU time per
request, median over the batches, and the ratio.  Figures: docs/benchmarks/performance.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import orjson

from bench.harness.in_process import alternate, chatting_users, django_on_bench, thread_ms, wsgi_environ

OLD_ALLOCATE = """
INSERT INTO realtime_cursor (user_id, last_seq)
SELECT u, n FROM unnest(%s::uuid[], %s::bigint[]) AS t(u, n) ORDER BY u
ON CONFLICT (user_id) DO UPDATE SET last_seq = realtime_cursor.last_seq + EXCLUDED.last_seq
RETURNING user_id, last_seq
"""


def old_paths():
    """The code before the change (main bbcf8e1), as functions to swap in."""
    from django.db import connections, transaction
    from django.utils import timezone
    from rest_framework import status as http_status
    from rest_framework.response import Response

    from connections import services
    from connections.api import serializers as s
    from connections.api import views
    from connections.models import Message
    from core.db import router as db_router
    from realtime import bus, events
    from realtime.events import Entry, as_uuid
    from realtime.models import Event

    def record(entries):
        entries = [Entry(as_uuid(e.user_id), e.type, e.payload, as_uuid(e.peer_id) if e.peer_id else None)
                   for e in entries]
        counts = Counter(e.user_id for e in entries)
        users = sorted(counts)
        now = timezone.now()
        with transaction.atomic(using="default"):
            with connections["default"].cursor() as cursor:
                cursor.execute(OLD_ALLOCATE, [users, [counts[u] for u in users]])
                last = {as_uuid(user): seq for user, seq in cursor.fetchall()}
            following = {user: last[user] - counts[user] + 1 for user in users}
            rows = []
            for e in entries:
                rows.append(Event(user_id=e.user_id, seq=following[e.user_id], type=e.type, payload=e.payload,
                                  peer_id=e.peer_id, created_at=now))
                following[e.user_id] += 1
            Event.objects.using("default").bulk_create(rows, batch_size=2000)
            stamp = time.time()
            messages = [(row.user_id, {"k": "ev", "t": stamp, "peer": str(row.peer_id) if row.peer_id else None,
                                       **events.envelope(row.type, row.seq, row.payload, now)}) for row in rows]
            transaction.on_commit(lambda: bus.publish(messages), using="default")
        return rows

    def on_message_sent(sender, message_id, connection_id, sender_id, recipient_id, **kwargs):
        try:
            with db_router.use_primary():
                row = Message.objects.filter(pk=message_id).values("body", "created_at").first()
            if row is None:
                return
            payload = {"message_id": str(message_id), "connection_id": str(connection_id),
                       "sender_id": str(sender_id), "body": row["body"], "created_at": row["created_at"].isoformat()}
            record([Entry(recipient_id, "message.new", payload, sender_id),
                    Entry(sender_id, "message.new", payload, recipient_id)])
        except Exception:
            pass

    def get(self, request, connection_id):
        me = request.user.pk
        conn, unread = services.chat_connection(user_id=me, connection_id=connection_id, with_unread=True)
        paginator = views.MessagePagination()
        page = paginator.paginate_queryset(
            Message.objects.filter(connection_id=conn.pk).only("id", "sender_id", "body", "created_at"),
            request, view=self)
        if page and "cursor" not in request.query_params and unread.get(str(conn.pk)):
            services.mark_read(user_id=me, connection=conn, until=page[0].created_at)
        return paginator.get_paginated_response([s.message_out(m) for m in page])

    def post(self, request, connection_id):
        serializer = s.MessageIn(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = services.send_message(user_id=request.user.pk, connection_id=connection_id,
                                        body=serializer.validated_data["body"])
        return Response(s.message_out(message), status=http_status.HTTP_201_CREATED)

    return {"get": get, "post": post, "on_message_sent": on_message_sent}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12, help="batches per code path and endpoint (alternating)")
    parser.add_argument("--batch", type=int, default=100, help="requests per batch")
    args = parser.parse_args(argv)
    django_on_bench()
    from django.core.handlers.wsgi import WSGIHandler

    from connections import signals
    from connections.api import views
    from realtime import receivers

    conns, tokens = chatting_users("bench chat paths")
    handler = WSGIHandler()
    old = old_paths()
    new = {"get": views.MessageListView.get, "post": views.MessageListView.post}

    def use(path: str) -> None:
        """Swap the view methods and the real-time receiver (outside the timed part)."""
        code = old if path == "before" else new
        views.MessageListView.get = code["get"]  # type: ignore[method-assign]
        views.MessageListView.post = code["post"]  # type: ignore[method-assign]
        if path == "before":
            signals.message_stored.disconnect(dispatch_uid="realtime.message_stored")
            signals.message_sent.connect(old["on_message_sent"], dispatch_uid="bench.old_message_sent")
        else:
            signals.message_sent.disconnect(dispatch_uid="bench.old_message_sent")
            signals.message_stored.connect(receivers.on_message_stored, dispatch_uid="realtime.message_stored")

    body = orjson.dumps({"body": "see you there?"})
    endpoints = {
        "POST connections/{id}/messages/": lambda i: wsgi_environ(
            "POST", f"/api/v1/connections/{conns[i % len(conns)].pk}/messages/", tokens[i % len(conns)], body),
        "GET connections/{id}/messages/": lambda i: wsgi_environ(
            "GET", f"/api/v1/connections/{conns[i % len(conns)].pk}/messages/", tokens[i % len(conns)]),
    }

    def batch(path, make, n) -> float:
        use(path)
        return thread_ms(handler, [make(i) for i in range(n)])

    print(f"{len(conns)} connections; {args.batches} alternating batches of {args.batch} per code path and "
          f"endpoint; load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for name, make in endpoints.items():
        mb, ma = alternate(lambda make=make: batch("before", make, args.batch),
                           lambda make=make: batch("after", make, args.batch), args.batches)
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
