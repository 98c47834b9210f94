"""The WebSocket endpoint end to end: a real uvicorn, real PostgreSQL and Redis, the
``websockets`` client.  Authentication and close codes, events, message.send, resume,
the per-user cap across two instances, blocks and revocations."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed

from accounts import services as account_services
from crossings.models import Crossing
from crossings.signals import crossing_recorded
from realtime import bus, events
from realtime.events import Entry
from realtime.models import Event
from tests.conftest import client_for
from tests.factories import make_connection, make_crossing, make_user
from tests.realtime.conftest import open_socket
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _token(user) -> str:
    _session, access, _refresh = account_services.open_session(user, user_agent="pytest", ip="127.0.0.1")
    return access


def _token_expiring_in(user, seconds: float) -> str:
    session, _access, _refresh = account_services.open_session(user, user_agent="pytest", ip="127.0.0.1")
    now = datetime.now(UTC)
    payload = {"sub": str(user.pk), "sid": str(session.pk), "stf": False, "typ": "access",
               "iat": int(now.timestamp()), "exp": int((now + timedelta(seconds=seconds)).timestamp())}
    return jwt.encode(payload, settings.JWT_SIGNING_KEY, algorithm=settings.JWT_ALGORITHM)


def _refused(url, token=None, **kwargs) -> tuple[int, str]:
    client = open_socket(url, token, hello=False, **kwargs)
    return client.closed_with()


# ------------------------------------------------------------------------- authentication


def test_authentication_paths_and_close_codes(ws_server, sockets):
    alice = make_user()
    token = _token(alice)

    code, reason = _refused(ws_server.url)
    assert code == 4401 and "token is required" in reason
    code, reason = _refused(ws_server.url, "not-a-token")
    assert code == 4401 and "invalid" in reason
    code, reason = _refused(ws_server.url, _token_expiring_in(alice, -10))
    assert code == 4401 and "expired" in reason
    # The query string is never read.
    code, _reason = _refused(ws_server.url + f"?token={token}")
    assert code == 4401

    by_header = open_socket(ws_server.url, token)
    sockets.append(by_header)
    assert by_header.hello["user_id"] == str(alice.pk)
    assert by_header.hello["seq"] == 0 and by_header.hello["max_connections"] == 3

    by_protocol = open_socket(ws_server.url, token, subprotocol=True)
    sockets.append(by_protocol)
    assert by_protocol.conn.subprotocol == "crossings.v1"
    assert by_protocol.hello["user_id"] == str(alice.pk)

    by_protocol.send({"type": "nonsense"})
    assert by_protocol.recv()["status"] == 400
    by_protocol.conn.send("not json")
    assert by_protocol.recv()["status"] == 400
    by_protocol.send({"type": "resume", "after": "x"})
    assert by_protocol.recv()["status"] == 400


def test_revoked_session_and_deactivated_account_are_refused_and_closed(ws_server, sockets):
    alice, bob = make_user(), make_user()
    session, access, _refresh = account_services.open_session(alice, user_agent="pytest", ip="127.0.0.1")
    other_access = _token(alice)
    first = open_socket(ws_server.url, access)
    second = open_socket(ws_server.url, other_access)
    sockets += [first, second]

    account_services.revoke_session(session.pk)
    code, reason = first.closed_with()
    assert (code, reason) == (4401, "Session revoked.")
    code, _reason = _refused(ws_server.url, access)
    assert code == 4401
    second.send({"type": "ping", "ref": 1})
    assert second.recv_until(lambda m: m["type"] == "pong")["ref"] == 1  # the other session stays

    bob_socket = open_socket(ws_server.url, _token(bob))
    sockets.append(bob_socket)
    account_services.deactivate_user(bob.pk)
    code, reason = bob_socket.closed_with()
    assert code in (4401, 4403)  # all sessions revoked and the account deactivated: either closes it


def test_expiring_token_warns_then_closes_unless_refreshed(ws_server, sockets):
    alice = make_user()
    lapsing = open_socket(ws_server.url, _token_expiring_in(alice, 10))
    refreshed = open_socket(ws_server.url, _token_expiring_in(alice, 10))
    sockets += [lapsing, refreshed]

    assert lapsing.recv()["type"] == "token.expiring"
    assert refreshed.recv()["type"] == "token.expiring"
    refreshed.send({"type": "auth", "token": _token(alice)})
    assert refreshed.recv_until(lambda m: m["type"] == "auth.ok")["token_expires_at"] > time.time() + 60

    assert lapsing.closed_with() == (4401, "Access token has expired.")
    deadline = refreshed.hello["token_expires_at"] + 2
    while time.time() < deadline:
        refreshed.send({"type": "ping"})
        assert refreshed.recv_until(lambda m: m["type"] == "pong")

    someone_else = make_user()
    refreshed.send({"type": "auth", "token": _token(someone_else)})
    assert refreshed.closed_with() == (4401, "The token is for another user.")


# --------------------------------------------------------------------------------- events


def test_chat_over_rest_and_socket(ws_server, sockets):
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    alice_socket = open_socket(ws_server.url, _token(alice))
    bob_socket = open_socket(ws_server.url, _token(bob))
    sockets += [alice_socket, bob_socket]

    response = client_for(alice).post(f"/api/v1/connections/{conn.pk}/messages/", {"body": "hi Bob"})
    assert response.status_code == 201
    [event] = bob_socket.events(1)
    assert event["type"] == "message.new" and event["seq"] == 1
    assert event["data"]["body"] == "hi Bob" and event["data"]["message_id"] == response.json()["id"]
    assert event["data"]["sender_id"] == str(alice.pk)

    bob_socket.send({"type": "message.send", "connection_id": str(conn.pk), "body": " hello Alice ", "ref": "r1"})
    sent = bob_socket.recv_until(lambda m: m["type"] == "message.sent")
    assert sent["ref"] == "r1"
    stored = conn.messages.get(pk=sent["message_id"])
    assert stored.body == "hello Alice" and stored.sender_id == bob.pk
    received = [e for e in alice_socket.events(2) if e["data"]["message_id"] == sent["message_id"]]
    assert received and received[0]["data"]["body"] == "hello Alice"

    # The REST rules: validation, visibility, unknown fields.
    bob_socket.send({"type": "message.send", "connection_id": str(conn.pk), "body": "   ", "ref": "r2"})
    error = bob_socket.recv_until(lambda m: m["type"] == "error")
    assert (error["status"], error["ref"]) == (400, "r2") and "body" in error["detail"]
    bob_socket.send({"type": "message.send", "connection_id": str(uuid.uuid4()), "body": "x"})
    assert bob_socket.recv_until(lambda m: m["type"] == "error")["status"] == 404
    bob_socket.send({"type": "message.send", "connection_id": "nope", "body": "x"})
    assert bob_socket.recv_until(lambda m: m["type"] == "error")["status"] == 404
    bob_socket.send({"type": "message.send", "connection_id": str(conn.pk), "body": "x", "extra": 1})
    assert bob_socket.recv_until(lambda m: m["type"] == "error")["status"] == 400
    stranger = make_user()
    stranger_socket = open_socket(ws_server.url, _token(stranger))
    sockets.append(stranger_socket)
    stranger_socket.send({"type": "message.send", "connection_id": str(conn.pk), "body": "x"})
    assert stranger_socket.recv_until(lambda m: m["type"] == "error")["status"] == 404


def test_message_send_shares_the_rest_rate_limit(ws_server, sockets, settings):
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    alice_socket = open_socket(ws_server.url, _token(alice))
    sockets.append(alice_socket)
    client = client_for(alice)
    statuses = []
    for _ in range(110):  # the "user" rate: 100 a minute, REST and socket together
        statuses.append(client.get("/api/v1/connections/").status_code)
        if statuses[-1] == 429:
            break
    assert 429 in statuses
    alice_socket.send({"type": "message.send", "connection_id": str(conn.pk), "body": "x", "ref": 7})
    error = alice_socket.recv_until(lambda m: m["type"] == "error")
    assert (error["status"], error["ref"]) == (429, 7)


def test_connection_story_and_crossing_events(ws_server, sockets):
    alice, bob, carol = make_user(), make_user(), make_user()
    make_crossing(alice, bob)
    bob_socket = open_socket(ws_server.url, _token(bob))
    alice_socket = open_socket(ws_server.url, _token(alice))
    sockets += [bob_socket, alice_socket]

    response = client_for(alice).post("/api/v1/connections/", {"user_id": str(bob.pk)})
    assert response.status_code == 201
    conn_id = response.json()["id"]
    [requested] = bob_socket.events(1)
    assert requested["type"] == "connection.requested"
    assert requested["data"] == {"connection_id": conn_id, "user_id": str(alice.pk)}

    assert client_for(bob).post(f"/api/v1/connections/{conn_id}/accept/").status_code == 200
    [accepted] = alice_socket.events(1)
    assert accepted["type"] == "connection.accepted" and accepted["data"]["user_id"] == str(bob.pk)
    assert bob_socket.events(1)[0]["type"] == "connection.accepted"

    response = client_for(alice).post("/api/v1/stories/", {"text": "sunny"})
    assert response.status_code == 201, response.content
    [story] = bob_socket.events(1)
    assert story["type"] == "story.new"
    assert story["data"] == {"story_id": response.json()["id"], "author_id": str(alice.pk)}

    crossing = make_crossing(bob, carol)
    crossing_recorded.send(sender=Crossing, user_ids=[str(bob.pk), str(carol.pk)], crossing_ids=[str(crossing.pk)])
    [crossed] = bob_socket.events(1)
    assert crossed["type"] == "crossing.new"
    assert crossed["data"]["crossing_id"] == str(crossing.pk) and crossed["data"]["user_id"] == str(carol.pk)
    assert "place_lat" not in crossed["data"] and "lat" not in str(crossed["data"])

    assert client_for(alice).delete(f"/api/v1/connections/{conn_id}/").status_code == 204
    [removed] = bob_socket.events(1)
    assert removed["type"] == "connection.removed" and removed["data"] == {"user_id": str(alice.pk)}
    seqs = [e.seq for e in Event.objects.filter(user_id=bob.pk).order_by("seq")]
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_read_receipt_reaches_the_sender_and_the_readers_other_devices(ws_server, sockets):
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    alice_socket = open_socket(ws_server.url, _token(alice))
    bob_other_device = open_socket(ws_server.url, _token(bob))
    sockets += [alice_socket, bob_other_device]
    sent = client_for(alice).post(f"/api/v1/connections/{conn.pk}/messages/", {"body": "read me"}).json()
    alice_socket.events(1)
    bob_other_device.events(1)

    response = client_for(bob).post(f"/api/v1/connections/{conn.pk}/messages/read/", {"up_to": sent["id"]},
                                    format="json")
    assert response.status_code == 200
    [receipt] = alice_socket.events(1)
    assert receipt["type"] == "message.read"
    data = receipt["data"]
    assert (data["connection_id"], data["user_id"], data["up_to"]) == (str(conn.pk), str(bob.pk), sent["id"])
    assert datetime.fromisoformat(data["read_at"]) == datetime.fromisoformat(sent["created_at"])
    assert bob_other_device.events(1)[0]["type"] == "message.read"
    # Reading again (the marker does not move) says nothing more.
    client_for(bob).post(f"/api/v1/connections/{conn.pk}/messages/read/", {"up_to": sent["id"]}, format="json")
    alice_socket.send({"type": "ping", "ref": "end"})
    assert alice_socket.recv() == {"type": "pong", "ref": "end"}


# ------------------------------------------------------------------------- resume


def test_resume_after_a_disconnect_loses_nothing_and_repeats_nothing(ws_server, sockets):
    alice, bob = make_user(), make_user()
    conn = make_connection(alice, bob)
    alice_client = client_for(alice)
    bob_token = _token(bob)
    first = open_socket(ws_server.url, bob_token)
    sockets.append(first)
    for n in range(3):
        alice_client.post(f"/api/v1/connections/{conn.pk}/messages/", {"body": f"before {n}"})
    seen = first.events(3)
    assert [e["seq"] for e in seen] == [1, 2, 3]
    first.close()

    for n in range(5):  # while Bob is away
        alice_client.post(f"/api/v1/connections/{conn.pk}/messages/", {"body": f"away {n}"})
    second = open_socket(ws_server.url, bob_token)
    sockets.append(second)
    assert second.hello["seq"] == 8
    second.send({"type": "resume", "after": 3})
    alice_client.post(f"/api/v1/connections/{conn.pk}/messages/", {"body": "live"})
    got = second.events(6)
    assert [e["seq"] for e in got] == [4, 5, 6, 7, 8, 9]
    assert [e["data"]["body"] for e in got] == [f"away {n}" for n in range(5)] + ["live"]
    second.send({"type": "ping", "ref": "end"})
    assert second.recv()["type"] == "pong"  # nothing else came: no duplicate

    # Older than the retention window: pruned, and a resume from before it says so.
    Event.objects.filter(user_id=bob.pk, seq__lte=5).update(created_at=datetime.now(UTC) - timedelta(days=2))
    from realtime.tasks import prune_events

    assert prune_events() >= 5
    second.send({"type": "resume", "after": 2})
    resync = second.recv()
    assert resync["type"] == "resync" and resync["after"] == 2
    assert [e["seq"] for e in second.events(4)] == [6, 7, 8, 9]


def test_a_slow_reader_is_dropped_and_resumes_from_the_log(short_queue_server, sockets):
    """A client that stops reading is dropped (4408) once 20 live events wait for it, its
    backlog freed; it reads what was already on the wire, reconnects and resumes, losing nothing."""
    bob, alice = make_user(), make_user()
    token = _token(bob)
    # The client library stops reading the TCP socket once 2 frames wait in its queue.
    slow = open_socket(short_queue_server.url, token, max_queue=2)
    sockets.append(slow)
    heartbeats, _births = bus.slot_keys(bob.pk)
    redis = bus.client()
    assert redis.zcard(heartbeats) == 1
    # ~16 MB of events: more than the loopback socket buffers hold, so the server's sends block.
    padding = "x" * 8000
    total = 0
    for _batch in range(20):
        events.record([Entry(bob.pk, "story.new", {"story_id": str(uuid.uuid4()), "author_id": str(alice.pk),
                                                   "pad": padding}, alice.pk) for _ in range(100)])
        total += 100
        if redis.zcard(heartbeats) == 0:
            break
    # Dropped: its slot is free and nothing more is queued for it.
    wait_until(lambda: redis.zcard(heartbeats) == 0, 60, "the slow socket to be dropped")

    seen = []
    code, reason = None, ""
    try:
        while True:
            message = slow.recv()
            if "seq" in message and message["type"] != "hello":
                seen.append(message["seq"])
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        code, reason = closed.rcvd.code, closed.rcvd.reason
    assert code == 4408 and "resume" in reason
    assert seen == list(range(1, len(seen) + 1)) and len(seen) < total

    again = open_socket(short_queue_server.url, token)
    sockets.append(again)
    again.send({"type": "resume", "after": seen[-1] if seen else 0})
    rest = again.events(total - len(seen))
    assert [e["seq"] for e in rest] == list(range(len(seen) + 1, total + 1))
    again.send({"type": "ping", "ref": "end"})
    assert again.recv() == {"type": "pong", "ref": "end"}


def test_live_events_fill_a_gap_from_the_log(ws_server, sockets):
    """An event whose publication was lost is delivered, in order, before the next live one."""
    alice, bob = make_user(), make_user()
    bob_socket = open_socket(ws_server.url, _token(bob))
    sockets.append(bob_socket)
    url = settings.REALTIME_REDIS_URL
    settings.REALTIME_REDIS_URL = "unix:///nonexistent/redis.sock"  # this process cannot publish
    bus._client = None
    try:
        events.record([Entry(bob.pk, "story.new", {"story_id": "lost"}, alice.pk)])
    finally:
        settings.REALTIME_REDIS_URL = url
        bus._client = None
    events.record([Entry(bob.pk, "story.new", {"story_id": "live"}, alice.pk)])
    got = bob_socket.events(2)
    assert [(e["seq"], e["data"]["story_id"]) for e in got] == [(1, "lost"), (2, "live")]


# ----------------------------------------------------------------------------- the cap


def test_a_fourth_socket_closes_the_oldest_across_instances(ws_servers, sockets):
    alice = make_user()
    token = _token(alice)
    first, second, third = (open_socket(ws_servers[i % 2].url, token) for i in range(3))
    sockets += [first, second, third]
    fourth = open_socket(ws_servers[1].url, token)
    sockets.append(fourth)
    assert first.closed_with() == (4409, "Too many connections; this one was the oldest.")
    for client in (second, third, fourth):
        client.send({"type": "ping"})
        assert client.recv_until(lambda m: m["type"] == "pong")
    fifth = open_socket(ws_servers[0].url, token)
    sockets.append(fifth)
    assert second.closed_with()[0] == 4409


def test_slots_of_a_crashed_instance_free_themselves(ws_server, sockets):
    """Slots whose heartbeat stopped over WS_STALE_S ago do not count toward the cap."""
    alice = make_user()
    heartbeats, births = bus.slot_keys(alice.pk)
    old = time.time() - settings.WS_STALE_S - 5
    redis = bus.client()
    for n in range(3):
        redis.zadd(heartbeats, {f"crashed{n}": old})
        redis.zadd(births, {f"crashed{n}": old - 100})
    token = _token(alice)
    mine = [open_socket(ws_server.url, token) for _ in range(3)]
    sockets += mine
    for client in mine:
        client.send({"type": "ping"})
        assert client.recv_until(lambda m: m["type"] == "pong")
    assert sorted(m.decode() for m in redis.zrange(births, 0, -1)) == sorted(c.hello["socket_id"] for c in mine)


def test_heartbeats_keep_slots_and_close_a_socket_whose_slot_is_gone(fast_heartbeat_server, sockets):
    """An eviction whose message this instance missed: the next heartbeat finds the slot gone."""
    alice = make_user()
    client = open_socket(fast_heartbeat_server.url, _token(alice))
    sockets.append(client)
    heartbeats, births = bus.slot_keys(alice.pk)
    redis = bus.client()
    sid = client.hello["socket_id"]
    first = redis.zscore(heartbeats, sid)
    wait_until(lambda: redis.zscore(heartbeats, sid) != first, what="the heartbeat to refresh the slot")
    redis.zrem(heartbeats, sid)
    redis.zrem(births, sid)
    assert client.closed_with() == (4409, "Too many connections; this one was the oldest.")


# ---------------------------------------------------------------------------- blocks


def test_a_block_stops_delivery_at_once_and_hides_the_past(ws_server, sockets):
    alice, bob, carol = make_user(), make_user(), make_user()
    conn = make_connection(alice, bob)
    bob_token = _token(bob)
    bob_socket = open_socket(ws_server.url, bob_token)
    sockets.append(bob_socket)
    client_for(alice).post(f"/api/v1/connections/{conn.pk}/messages/", {"body": "secret"})
    assert bob_socket.events(1)[0]["data"]["body"] == "secret"

    assert client_for(alice).post("/api/v1/blocks/", {"user_id": str(bob.pk)}).status_code in (200, 201)
    [removed] = bob_socket.events(1)
    assert removed["type"] == "connection.removed"
    # An event about Alice that was already on its way, then one about Carol.
    events.record([Entry(bob.pk, "story.new", {"story_id": "from-alice"}, alice.pk)])
    events.record([Entry(bob.pk, "story.new", {"story_id": "from-carol"}, carol.pk)])
    [after] = bob_socket.events(1)
    assert after["data"]["story_id"] == "from-carol"

    replay = open_socket(ws_server.url, bob_token)
    sockets.append(replay)
    replay.send({"type": "resume", "after": 0})
    got = replay.events(2)
    assert [(m["type"], m["data"].get("story_id")) for m in got] == [("connection.removed", None),
                                                                      ("story.new", "from-carol")]
    replay.send({"type": "ping"})
    assert replay.recv()["type"] == "pong"  # nothing else: the message and Alice's story stay hidden
    assert Event.objects.filter(user_id=bob.pk, payload__body="secret").count() == 0
