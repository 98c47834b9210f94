"""Chat between accepted connections: permissions, limits, pagination, unread counts, erasure."""

from __future__ import annotations

import pytest

from connections.models import Message
from tests.conftest import client_for
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat():
    a, b = make_user(display_name="Ann"), make_user(display_name="Ben")
    conn = make_connection(a, b)
    return conn, a, b, client_for(a), client_for(b)


def url(conn) -> str:
    return f"/api/v1/connections/{conn.pk}/messages/"


def send(client, conn, body):
    return client.post(url(conn), {"body": body}, format="json")


def test_connections_chat_newest_first(chat):
    conn, _a, b, ca, cb = chat
    assert send(ca, conn, "hi").status_code == 201
    assert send(cb, conn, "  hello  ").status_code == 201
    body = ca.get(url(conn)).json()
    assert [m["body"] for m in body["results"]] == ["hello", "hi"]
    assert body["results"][0]["sender_id"] == str(b.pk)


def test_pages_with_a_cursor(chat):
    conn, _a, _b, ca, cb = chat
    for i in range(5):
        send(ca, conn, f"m{i}")
    first = cb.get(url(conn) + "?page_size=3").json()
    assert [m["body"] for m in first["results"]] == ["m4", "m3", "m2"]
    second = cb.get(first["next"]).json()
    assert [m["body"] for m in second["results"]] == ["m1", "m0"] and second["next"] is None


def test_reading_a_conversation_checks_membership_from_the_cache(chat, round_trips, django_assert_num_queries):
    conn, _a, _b, ca, cb = chat
    send(cb, conn, "hi")
    ca.get(url(conn))  # reads it: marks it read, which changes the unread counts
    ca.get(url(conn))  # ...loaded again here, now every cache is warm
    round_trips.clear()
    with django_assert_num_queries(1):  # the page; membership, block and unread counts come from Redis
        assert [m["body"] for m in ca.get(url(conn)).json()["results"]] == ["hi"]
    assert len(round_trips) == 2  # the rate limit; the connection index, hidden set and unread counts


def test_sending_reads_the_senders_flags_with_the_chat_in_one_round_trip(chat, round_trips,
                                                                         django_capture_on_commit_callbacks):
    conn, a, _b, ca, _cb = chat
    with django_capture_on_commit_callbacks(execute=True):
        send(ca, conn, "warm")  # every cache the send reads is warm now
    round_trips.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert send(ca, conn, "hi").status_code == 201
    # The rate limit; the sender's flags with the connection index and hidden set; the
    # recipient's unread counts bumped before and after commit; the sender's read-your-writes
    # marker; the events published.
    assert len(round_trips) == 6
    assert Message.objects.filter(sender=a, body="hi").exists()


# What the serializer takes as it is (checked by hand in the view), and what it refuses.
BODIES = ["hi", "  trimmed\n", "\u00a0nbsp\u00a0", "x" * 2000, " " + "x" * 2000 + " ", "emoji \U0001F600",
          "", "   ", "\u2003", "x" * 2001, "a\x00b", None, 7, True, ["x"], {"a": 1}]


@pytest.mark.parametrize("body", BODIES)
def test_the_body_is_judged_as_the_serializer_judges_it(chat, body):
    from connections.api.serializers import MessageIn

    conn, _a, _b, ca, _cb = chat
    serializer = MessageIn(data={"body": body})
    response = send(ca, conn, body)
    if serializer.is_valid():
        assert response.status_code == 201, response.content
        assert response.json()["body"] == serializer.validated_data["body"]
        assert Message.objects.get(pk=response.json()["id"]).body == serializer.validated_data["body"]
    else:
        assert response.status_code == 400
        assert response.json()["fields"] == {"body": [str(e) for e in serializer.errors["body"]]}, response.json()
        assert not Message.objects.exists()


@pytest.mark.parametrize("raw", [b'{"body": "hi", "extra": 1}', b'{}', b'["hi"]', b'"hi"', b'{"body": "\\ud800x"}'])
def test_other_shapes_of_json_are_refused_by_the_serializer(chat, raw):
    conn, _a, _b, ca, _cb = chat
    response = ca.post(url(conn), raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not Message.objects.exists()


def test_a_stranger_guessing_a_connection_id_gets_404_from_the_database(chat, django_assert_max_num_queries):
    conn, _a, _b, _ca, _cb = chat
    stranger = client_for(make_user())
    make_connection(make_user(), stranger.user)  # a connection index of their own, without this one
    assert stranger.get(url(conn)).status_code == 404
    assert send(stranger, conn, "hey").status_code == 404
    assert not Message.objects.exists()


@pytest.mark.parametrize("body", ["", "   ", "x" * 2001, None, ["x"], {"a": 1}, "a\x00b"])
def test_bad_messages_are_a_400(chat, body):
    conn, _a, _b, ca, _cb = chat
    assert send(ca, conn, body).status_code == 400
    assert not Message.objects.exists()


def test_only_accepted_connections_chat(chat):
    conn, a, _b, ca, _cb = chat
    stranger = client_for(make_user())
    assert send(stranger, conn, "hey").status_code == 404
    assert stranger.get(url(conn)).status_code == 404
    pending = make_connection(make_user(), a, status="pending")
    assert send(ca, pending, "hey").status_code == 403
    assert ca.get(url(pending)).status_code == 403
    assert ca.get("/api/v1/connections/nope/messages/").status_code == 404
    assert not Message.objects.exists()


def test_removed_or_blocked_connection_refuses_and_stores_nothing(chat, django_capture_on_commit_callbacks):
    from accounts import services as account_services

    conn, a, b, ca, cb = chat
    send(ca, conn, "before")
    assert cb.delete(f"/api/v1/connections/{conn.pk}/").status_code == 204
    assert send(ca, conn, "after removal").status_code == 404
    assert not Message.objects.exists()  # the conversation went with the connection
    conn2 = make_connection(a, b)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.block_user(blocker_id=a.pk, blocked_id=b.pk)
    assert send(cb, conn2, "after block").status_code == 404
    assert cb.get(url(conn2)).status_code == 404
    assert not Message.objects.exists()


def _unread(client) -> dict:
    return {item["user"]["display_name"]: item["unread_count"]
            for item in client.get("/api/v1/connections/").json()["results"]}


def test_unread_counts_per_conversation(chat):
    conn, _a, b, ca, cb = chat
    c = make_user(display_name="Cat")
    conn_c = make_connection(c, b)
    cc = client_for(c)
    assert _unread(cb) == {"Ann": 0, "Cat": 0}  # cached
    send(ca, conn, "1")
    send(ca, conn, "2")
    send(cc, conn_c, "3")
    assert _unread(cb) == {"Ann": 2, "Cat": 1}
    assert _unread(ca) == {"Ben": 0}  # own messages are not unread
    cb.get(url(conn))  # reading marks the conversation read
    assert _unread(cb) == {"Ann": 0, "Cat": 1}
    send(ca, conn, "4")
    assert _unread(cb) == {"Ann": 1, "Cat": 1}


def test_erasing_an_account_deletes_its_messages_content(chat, django_capture_on_commit_callbacks):
    from accounts import services as account_services
    from connections import services

    conn, a, b, ca, cb = chat
    send(ca, conn, "secret")
    send(cb, conn, "reply")
    services.erase_messages_of(a.pk)  # what the user_erasing receiver does
    assert Message.objects.get(sender=a).body == ""
    assert Message.objects.get(sender=b).body == "reply"
    with django_capture_on_commit_callbacks(execute=True):
        account_services.erase_user(a.pk)
    assert not Message.objects.filter(body="secret").exists()


def test_events_are_sent_after_commit(django_capture_on_commit_callbacks):
    from connections import signals
    from tests.factories import make_crossing

    events = []

    def record(signal_name):
        def receiver(sender, **kwargs):
            events.append((signal_name, {k: str(v) for k, v in kwargs.items() if k != "signal"}))
        return receiver

    receivers = {name: record(name) for name in ("connection_requested", "connection_accepted", "message_sent")}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver)
    try:
        a, b = make_user(), make_user()
        make_crossing(a, b)
        ca, cb = client_for(a), client_for(b)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            conn_id = ca.post("/api/v1/connections/", {"user_id": str(b.pk)}, format="json").json()["id"]
        assert events == []  # nothing before the commit
        for callback in callbacks:
            callback()
        with django_capture_on_commit_callbacks(execute=True):
            cb.post(f"/api/v1/connections/{conn_id}/accept/")
            message_id = cb.post(f"/api/v1/connections/{conn_id}/messages/", {"body": "hi"}, format="json").json()["id"]
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver)
    people = {"requester_id": str(a.pk), "recipient_id": str(b.pk), "connection_id": conn_id}
    assert events == [
        ("connection_requested", people),
        ("connection_accepted", people),
        ("message_sent", {"message_id": message_id, "connection_id": conn_id, "sender_id": str(b.pk),
                          "recipient_id": str(a.pk)}),
    ]


def read_url(conn) -> str:
    return f"/api/v1/connections/{conn.pk}/messages/read/"


def test_a_read_receipt_moves_the_marker_forward_only(chat):
    conn, _a, _b, ca, cb = chat
    first = send(ca, conn, "one").json()
    second = send(ca, conn, "two").json()
    listed = cb.get("/api/v1/connections/").json()["results"]
    assert listed[0]["unread_count"] == 2

    response = cb.post(read_url(conn), {"up_to": first["id"]}, format="json")
    assert response.status_code == 200
    assert response.json()["up_to"] == first["id"] and response.json()["moved"] is True
    assert cb.get("/api/v1/connections/").json()["results"][0]["unread_count"] == 1

    assert cb.post(read_url(conn), {"up_to": second["id"]}, format="json").json()["moved"] is True
    assert cb.get("/api/v1/connections/").json()["results"][0]["unread_count"] == 0
    # Never back.
    assert cb.post(read_url(conn), {"up_to": first["id"]}, format="json").json()["moved"] is False
    assert cb.get("/api/v1/connections/").json()["results"][0]["unread_count"] == 0


def test_a_read_receipt_is_refused_clearly(chat):
    conn, _a, _b, ca, cb = chat
    mine = send(ca, conn, "hi").json()
    carol = make_user()
    other_conn = make_connection(carol, make_user())
    elsewhere = send(client_for(carol), other_conn, "x").json()

    for body, field in (({}, "up_to"), ({"up_to": 7}, "up_to"), ({"up_to": "nope"}, "up_to"),
                        ({"up_to": elsewhere["id"]}, "up_to"), ({"up_to": mine["id"], "x": 1}, "x")):
        response = cb.post(read_url(conn), body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json()["fields"], response.json()
    # Not your chat: 404, like the chat itself.
    stranger = client_for(make_user())
    assert stranger.post(read_url(conn), {"up_to": mine["id"]}, format="json").status_code == 404



def test_pages_walk_both_ways_through_equal_times_as_the_queryset_did(chat):
    """The page query is compiled once (selectors.MessageRows): every page and cursor is the one
    the ORM queryset gave the same paginator, ties in created_at included (offset cursors)."""
    from base64 import b64encode
    from datetime import datetime, timedelta

    from django.utils import timezone
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from connections.api.serializers import message_out, message_row_out
    from connections.api.views import MessagePagination
    from connections.selectors import MessageRows

    conn, a, b, ca, _cb = chat
    base = timezone.now() - timedelta(minutes=5)
    offsets = [0, 1, 1, 1, 2, 2, 3]
    Message.objects.bulk_create([Message(connection=conn, sender=(a if i % 2 else b), body=f"m{i}",
                                         created_at=base + timedelta(seconds=s)) for i, s in enumerate(offsets)])

    def both(link: str) -> tuple[str | None, str | None]:
        request = Request(APIRequestFactory().get(link))
        before, after = MessagePagination(), MessagePagination()
        old = before.paginate_queryset(
            Message.objects.filter(connection_id=conn.pk).only("id", "sender_id", "body", "created_at"), request)
        new = after.paginate_queryset(MessageRows(conn.pk), request)
        assert [message_row_out(row) for row in new] == [message_out(m) for m in old]
        links = (after.get_next_link(), after.get_previous_link())
        assert links == (before.get_next_link(), before.get_previous_link())
        return links

    seen, link = 0, "http://testserver" + url(conn) + "?page_size=2"
    forward = [link]
    while (link := both(link)[0]) is not None:
        forward.append(link)
        seen += 1
    assert seen == 3  # 2 + 2 + 2 + 1
    link = both(forward[-1])[1]
    while link is not None:
        following, link = both(link)
        assert following is not None
        both(following)  # and forward again from a reversed cursor

    # The API walks the same way.
    expected = [(str(m.id), m.body, m.created_at)
                for m in Message.objects.filter(connection=conn).order_by("-created_at", "-id")]
    got, link = [], url(conn) + "?page_size=2"
    while link:
        page = ca.get(link).json()
        got += [(m["id"], m["body"], datetime.fromisoformat(m["created_at"])) for m in page["results"]]
        link = page["next"]
    assert got == expected

    # A cursor whose position is not a time is refused clearly, never a 500.
    bad = b64encode(b"p=not-a-time").decode()
    response = ca.get(url(conn) + f"?cursor={bad}")
    assert response.status_code == 400, response.content


def test_sending_pins_the_senders_next_reads_to_the_primary(chat):
    """Read-your-writes: the message is stored by one SQL statement, routed as the ORM's write
    would be, so the router remembers the write and the sender's next read skips the replicas."""
    from django.core.cache import cache

    from core.db import router as db_router

    conn, a, _b, ca, _cb = chat
    assert cache.get(db_router._marker_key(str(a.pk))) is None
    assert send(ca, conn, "mine").status_code == 201
    assert cache.get(db_router._marker_key(str(a.pk))) is not None


def test_unread_counts_from_the_aggregate_compiled_once():
    """``load_unread`` runs SQL the ORM compiled once: each call binds its own user, and every
    rule of the count holds whichever side of the pair the reader is on."""
    from datetime import timedelta

    from django.utils import timezone

    from connections.selectors import load_unread

    me, low_peer, high_peer, stranger = make_user(), make_user(), make_user(), make_user()
    t0 = timezone.now() - timedelta(hours=1)
    # One conversation where I am the low side and one where I am the high side.
    as_low = make_connection(me, low_peer)
    as_high = make_connection(high_peer, me)
    for conn in (as_low, as_high):
        conn.refresh_from_db()
    pending = make_connection(stranger, me, status="pending")

    def message(conn, sender, minutes):
        return Message.objects.create(connection=conn, sender=sender, body="x",
                                      created_at=t0 + timedelta(minutes=minutes))

    mine_low = str(me.pk) == str(as_low.user_low_id)
    peer_of = {as_low.pk: low_peer, as_high.pk: high_peer}
    for conn in (as_low, as_high):
        message(conn, peer_of[conn.pk], 1)
        message(conn, peer_of[conn.pk], 10)
        message(conn, me, 11)  # my own: never unread
    message(pending, stranger, 5)  # a pending request's chat: not counted
    message(as_low, None, 12)  # a sender since erased (SET_NULL): not counted
    assert load_unread(me.pk) == {str(as_low.pk): 2, str(as_high.pk): 2}

    # Read up to minute 5 in the first conversation, on my side of the pair only.
    mine = "low_last_read_at" if mine_low else "high_last_read_at"
    type(as_low).objects.filter(pk=as_low.pk).update(**{mine: t0 + timedelta(minutes=5)})
    assert load_unread(me.pk) == {str(as_low.pk): 1, str(as_high.pk): 2}
    # The peers see their own unread messages, bound to their ids by the same statement.
    assert load_unread(low_peer.pk) == {str(as_low.pk): 1}
    assert load_unread(high_peer.pk) == {str(as_high.pk): 1}
    assert load_unread(stranger.pk) == {}
