"""A chat message's ``message.new`` events, logged in the message's own transaction: their seqs
and payload, publication after commit only, a failure that keeps the message, shadow bans,
and a removal racing the send.  Real PostgreSQL and Redis (its pub/sub), no socket server."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime

import orjson
import pytest
import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db import connections as db_connections

from accounts import services as account_services
from connections import services, signals
from connections.models import Message
from realtime import bus, events, receivers
from realtime.events import Entry
from realtime.models import Cursor, Event
from tests.conftest import client_for
from tests.factories import make_connection, make_user
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

DEADLINE_S = 60.0


def url(conn) -> str:
    return f"/api/v1/connections/{conn.pk}/messages/"


@contextlib.contextmanager
def listening(*users):
    """A Redis subscriber to these users' channels (the one a WebSocket instance would hold)."""
    client = redis.Redis.from_url(settings.REALTIME_REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*[bus.user_channel(user.pk) for user in users])
    try:
        yield pubsub
    finally:
        pubsub.close()
        client.close()


def published(pubsub) -> list[dict]:
    """Everything published to the subscribed channels so far: Redis answers a PING on this
    connection only after delivering every message published before it."""
    pubsub.ping()
    got = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=max(0.1, deadline - time.monotonic()))
        if message is None:
            continue  # a subscription's confirmation (ignored), or nothing yet
        if message["type"] == "pong":
            return got
        if message["type"] == "message":
            got.append(orjson.loads(message["data"]))
    raise AssertionError("no answer to PING")


def logged(user, event_type: str | None = None) -> list[tuple[int, str, dict]]:
    rows = Event.objects.filter(user_id=user.pk).order_by("seq")
    if event_type:
        rows = rows.filter(type=event_type)
    return [(row.seq, row.type, row.payload) for row in rows]


def test_both_sides_get_the_next_seq_with_the_stored_text_published_after_commit():
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    events.record([Entry(bob.pk, "story.new", {"story_id": "earlier"}, alice.pk)])  # bob's log is at seq 1

    with listening(alice, bob) as pubsub:
        response = client_for(alice).post(url(conn), {"body": "  see you there?  "}, format="json")
        assert response.status_code == 201
        sent = response.json()
        stored = Message.objects.get(pk=sent["id"])
        payload = {"message_id": sent["id"], "connection_id": str(conn.pk), "sender_id": str(alice.pk),
                   "body": "see you there?", "created_at": stored.created_at.isoformat()}
        assert datetime.fromisoformat(sent["created_at"]) == stored.created_at
        assert logged(bob, "message.new") == [(2, "message.new", payload)]
        assert logged(alice) == [(1, "message.new", payload)]
        assert Event.objects.get(user_id=bob.pk, seq=2).peer_id == alice.pk
        assert Event.objects.get(user_id=alice.pk, seq=1).peer_id == bob.pk
        assert dict(Cursor.objects.filter(user_id__in=[alice.pk, bob.pk]).values_list("user_id", "last_seq")) == {
            alice.pk: 1, bob.pk: 2}

        got = {(m["type"], m["seq"], m["peer"]): m["data"] for m in published(pubsub) if m["type"] == "message.new"}
        assert got == {("message.new", 2, str(alice.pk)): payload, ("message.new", 1, str(bob.pk)): payload}

        # Logged inside the message's transaction, published only once it commits.
        with transaction.atomic():
            message = services.send_message(user_id=bob.pk, connection_id=conn.pk, body="on my way")
            assert [seq for seq, _t, _p in logged(alice, "message.new")] == [1, 2]
            assert published(pubsub) == []
        assert [(m["seq"], m["peer"], m["data"]["message_id"]) for m in published(pubsub)] == [
            (2, str(bob.pk), str(message.pk)), (3, str(alice.pk), str(message.pk))]


def test_a_failure_in_the_realtime_part_keeps_the_message(caplog):
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    # Bob's log holds seq 1 but his counter row is missing: numbering the new event collides
    # with it (a real IntegrityError from PostgreSQL, inside the message's transaction).
    Event.objects.create(user_id=bob.pk, seq=1, type="story.new", payload={}, peer_id=alice.pk)

    with listening(alice, bob) as pubsub:
        response = client_for(alice).post(url(conn), {"body": "kept"}, format="json")
        assert response.status_code == 201
        assert Message.objects.filter(pk=response.json()["id"], body="kept").exists()
        assert "could not handle message_stored" in caplog.text
        # The events of both sides were rolled back together (a savepoint), nothing published.
        assert not Event.objects.filter(type="message.new").exists()
        assert not Cursor.objects.filter(user_id__in=[alice.pk, bob.pk]).exists()
        assert published(pubsub) == []

    # The message is in the chat, and the next one is logged once the counter is right.
    Cursor.objects.create(user_id=bob.pk, last_seq=1)
    assert client_for(alice).post(url(conn), {"body": "next"}, format="json").status_code == 201
    assert [m["body"] for m in client_for(bob).get(url(conn)).json()["results"]] == ["next", "kept"]
    assert [(seq, t) for seq, t, _p in logged(bob)] == [(1, "story.new"), (2, "message.new")]


def test_a_failed_record_in_a_transaction_rolls_back_its_own_events_only():
    """Inside a caller's transaction the events are written in a savepoint: a failure is
    Django's IntegrityError, undoes that batch alone, and the transaction goes on."""
    alice, bob = make_user(), make_user()
    # Bob's log holds seq 1 without a counter row: numbering an event of his collides with it.
    Event.objects.create(user_id=bob.pk, seq=1, type="story.new", payload={}, peer_id=alice.pk)
    with listening(alice, bob) as pubsub:
        with transaction.atomic():
            events.record([Entry(alice.pk, "story.new", {"n": 1}, bob.pk)])
            with pytest.raises(IntegrityError):
                events.record([Entry(alice.pk, "story.new", {"n": 2}, bob.pk),
                               Entry(bob.pk, "story.new", {"n": 2}, alice.pk)])
            events.record([Entry(alice.pk, "story.new", {"n": 3}, bob.pk)])
            assert published(pubsub) == []
        assert [(m["seq"], m["data"]) for m in published(pubsub)] == [(1, {"n": 1}), (2, {"n": 3})]
    assert logged(alice) == [(1, "story.new", {"n": 1}), (2, "story.new", {"n": 3})]
    assert logged(bob) == [(1, "story.new", {})]
    assert not Cursor.objects.filter(user_id=bob.pk).exists()


def test_a_shadow_banned_message_is_neither_stored_nor_announced():
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    account_services.set_shadow_ban([alice.pk], True)
    with listening(alice, bob) as pubsub:
        response = client_for(alice).post(url(conn), {"body": "into the void"}, format="json")
        assert response.status_code == 201 and response.json()["body"] == "into the void"
        assert published(pubsub) == []
    assert not Message.objects.exists()
    assert not Event.objects.filter(user_id__in=[alice.pk, bob.pk]).exists()


def _someone_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] > 0


def _racing(action, done: str) -> tuple[threading.Thread, list[object]]:
    """A thread (not started) that runs ``action`` on its own database connection; ``outcome``
    gets ``done``, or the exception it raised."""
    outcome: list[object] = []

    def run():
        try:
            action()
            outcome.append(done)
        except Exception as exc:  # pragma: no cover - reported by the caller's assertion
            outcome.append(exc)
        finally:
            db_connections.close_all()

    return threading.Thread(target=run), outcome


def test_a_removal_racing_a_send_waits_for_it_and_redacts_its_events():
    """The send logs its events while it holds the connection's row lock: a removal that comes
    in the meantime waits for the commit, then deletes the message and redacts the events.
    No event is left about a message that does not exist (no read-back needed)."""
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    remover, outcome = _racing(lambda: services.remove_connection(user_id=bob.pk, connection_id=conn.pk),
                               "removed")

    def while_sending(sender, **kwargs):  # after realtime's receiver: the events are logged
        remover.start()
        wait_until(_someone_waits_for_a_lock, DEADLINE_S, "the removal to wait for the send's row lock")

    signals.message_stored.connect(while_sending, dispatch_uid="test.race")
    try:
        message = services.send_message(user_id=alice.pk, connection_id=conn.pk, body="racing")
    finally:
        signals.message_stored.disconnect(dispatch_uid="test.race")
    remover.join(timeout=DEADLINE_S)
    assert outcome == ["removed"]
    assert not Message.objects.filter(pk=message.pk).exists()
    for user in (alice, bob):
        assert [(seq, t, p) for seq, t, p in logged(user)] == [
            (1, "redacted", {}), (2, "connection.removed", {"user_id": str((bob if user == alice else alice).pk)})]


def test_an_erasure_racing_a_send_to_that_user_waits_for_it_without_a_deadlock(caplog):
    """The send holds its connection's lock and then takes both users' event counters; the
    erasure of the recipient locks their connections before it deletes their counter, so it
    waits for the send instead of holding the counter the send needs (a deadlock)."""
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    events.record([Entry(bob.pk, "story.new", {"story_id": "earlier"}, alice.pk)])  # bob has a counter row
    eraser, outcome = _racing(lambda: account_services.erase_user(bob.pk), "erased")

    def before_the_events(sender, **kwargs):
        eraser.start()
        wait_until(_someone_waits_for_a_lock, DEADLINE_S, "the erasure to wait for the send's row lock")

    # Run this receiver before realtime's (which takes the counters), then put realtime's back after it.
    signals.message_stored.disconnect(dispatch_uid="realtime.message_stored")
    signals.message_stored.connect(before_the_events, dispatch_uid="test.erase_race")
    signals.message_stored.connect(receivers.on_message_stored, dispatch_uid="realtime.message_stored")
    try:
        services.send_message(user_id=alice.pk, connection_id=conn.pk, body="last words")
    finally:
        signals.message_stored.disconnect(dispatch_uid="test.erase_race")
    eraser.join(timeout=DEADLINE_S)
    assert outcome == ["erased"]
    assert "could not handle" not in caplog.text  # the send's events were logged, not rolled back
    assert not Message.objects.exists() and not Event.objects.filter(user_id=bob.pk).exists()
    assert [(seq, t) for seq, t, _p in logged(alice)] == [(1, "redacted")]  # what alice's log said of bob
