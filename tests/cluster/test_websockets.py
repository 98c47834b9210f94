"""WebSockets through nginx over the two ASGI instances: the per-user cap across them, and an
instance killed (SIGKILL) while messages are sent: its clients reconnect to the other one,
resume, and receive every message exactly once after de-duplication by seq; the dead
instance's slots free themselves.

The cluster's instances refresh slots every WS_HEARTBEAT_S and free one after WS_STALE_S
(shortened in tests/cluster/conftest.py so that the wait stays short; production: 30 / 90 s).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time

import pytest
import redis
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.cluster.conftest import Probe, new_user
from tests.waiting import DEADLINE_S, wait_until

SEND_INTERVAL_S = 0.02  # the sender's pace during the kill: about 50 messages/s

pytestmark = pytest.mark.cluster


def ws_url(cluster, port: int | None = None) -> str:
    """Through nginx, or straight to one instance's port."""
    if port is None:
        return cluster.nginx_url.replace("http://", "ws://") + "/ws/v1/"
    return f"ws://127.0.0.1:{port}/ws/v1/"


def open_ws(url: str, token: str) -> tuple[ClientConnection, dict]:
    # Entered by hand: the caller closes it (conn.close()), as the context manager would.
    conn = contextlib.ExitStack().enter_context(connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                                        open_timeout=30, close_timeout=5))
    hello = json.loads(conn.recv(timeout=30))
    assert hello["type"] == "hello", hello
    return conn, hello


def connect_pair(cluster, a: Probe, b: Probe) -> str:
    response = requests.post(f"{cluster.nginx_url}/_probe/connect/", json={"a": a.user_id, "b": b.user_id},
                             timeout=10)
    response.raise_for_status()
    return response.json()["id"]


def slot_count(cluster, user_id: str) -> int:
    client = redis.Redis.from_url(cluster.broker_url)
    keys = client.keys(f"*:rt:hb:{user_id}")
    return sum(client.zcard(key) for key in keys)


def close_code(conn: ClientConnection) -> int | None:
    try:
        while True:
            conn.recv(timeout=DEADLINE_S)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def test_the_cap_holds_across_both_instances(cluster):
    user = new_user(cluster)
    first, _ = open_ws(ws_url(cluster, cluster.ws_ports[0]), user.token)
    second, _ = open_ws(ws_url(cluster, cluster.ws_ports[1]), user.token)
    third, _ = open_ws(ws_url(cluster), user.token)
    try:
        assert slot_count(cluster, user.user_id) == 3
        fourth, _ = open_ws(ws_url(cluster), user.token)
        assert close_code(first) == 4409  # the oldest, on the first instance
        fourth.send(json.dumps({"type": "ping", "ref": "x"}))
        assert json.loads(fourth.recv(timeout=DEADLINE_S)) == {"type": "pong", "ref": "x"}
        second.send(json.dumps({"type": "ping", "ref": "y"}))  # the other instance's socket stays
        assert json.loads(second.recv(timeout=DEADLINE_S)) == {"type": "pong", "ref": "y"}
        wait_until(lambda: slot_count(cluster, user.user_id) == 3, DEADLINE_S, "three slots")
        fourth.close()
    finally:
        for conn in (first, second, third):
            conn.close()


class Receiver(threading.Thread):
    """A client through nginx that reconnects after a drop and resumes after its last seq."""

    def __init__(self, cluster, user: Probe):
        super().__init__(daemon=True)
        self.cluster, self.user = cluster, user
        self.last_seq = 0
        self.bodies: dict[int, str] = {}  # seq -> message body (one entry per seq: de-duplicated)
        self.received = 0  # every message.new, duplicates included
        self.drops = 0
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def _open(self):
        try:
            return open_ws(ws_url(self.cluster), self.user.token)
        except (OSError, ConnectionClosed, TimeoutError):  # nginx may still try the dead instance once
            return None

    def run(self):
        deadline = time.monotonic() + 4 * DEADLINE_S
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                opened = wait_until(lambda: self.stop.is_set() or self._open(), DEADLINE_S, "a reconnect through nginx",
                                    interval=0.2)
                if opened is True:  # told to stop while reconnecting
                    return
                conn, hello = opened
                with contextlib.closing(conn):
                    if self.connected.is_set():
                        conn.send(json.dumps({"type": "resume", "after": self.last_seq}))
                    else:
                        self.last_seq = hello["seq"]
                    self.connected.set()
                    self._read(conn)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _read(self, conn: ClientConnection) -> None:
        while not self.stop.is_set():
            try:
                message = json.loads(conn.recv(timeout=0.5))
            except TimeoutError:
                continue
            except ConnectionClosed:
                self.drops += 1
                return
            if message.get("type") == "message.new":
                self.received += 1
                self.bodies.setdefault(message["seq"], message["data"]["body"])
                self.last_seq = max(self.last_seq, message["seq"])


def test_killing_an_instance_under_traffic_loses_no_message(cluster):
    sender = new_user(cluster)
    receivers = [Receiver(cluster, new_user(cluster)) for _ in range(6)]
    chats = [connect_pair(cluster, sender, r.user) for r in receivers]
    for receiver in receivers:
        receiver.start()
    for receiver in receivers:
        assert receiver.connected.wait(DEADLINE_S), "a receiver could not connect"

    sent: list[set[str]] = [set() for _ in receivers]
    failures: list[str] = []
    stopped = threading.Event()

    def send():
        session = requests.Session()
        n = 0
        while not stopped.is_set():
            index = n % len(receivers)
            body = f"m{n}"
            response = session.post(f"{cluster.nginx_url}/api/v1/connections/{chats[index]}/messages/",
                                    json={"body": body}, headers=sender._auth(), timeout=15)
            if response.status_code == 201:
                sent[index].add(body)
            else:
                failures.append(f"{response.status_code} {response.text[:200]}")
            n += 1
            if stopped.wait(SEND_INTERVAL_S):  # the traffic's pace (~50 messages/s), not a wait for anything
                return

    def delivered() -> int:
        return sum(len(r.bodies) for r in receivers)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    killed = False
    try:
        wait_until(lambda: delivered() >= 30, DEADLINE_S, "messages delivered before the kill")
        cluster.stop_ws(0)  # SIGKILL: no close frame, no slot freed
        killed = True
        wait_until(lambda: any(r.drops for r in receivers), DEADLINE_S, "the dead instance's clients to drop")
        dropped = [r for r in receivers if r.drops]
        kept = [r for r in receivers if not r.drops]
        at_kill = sum(len(s) for s in sent)
        wait_until(lambda: sum(len(s) for s in sent) >= at_kill + 60, DEADLINE_S, "messages sent after the kill")
    finally:
        stopped.set()
        thread.join(30)

    try:
        assert failures == []
        assert dropped and kept, "both instances held receivers (nginx least_conn over a shared zone)"
        for receiver, expected in zip(receivers, sent, strict=True):
            wait_until(lambda r=receiver, e=expected: set(r.bodies.values()) >= e, DEADLINE_S,
                       "every message sent during the outage delivered")
        for receiver, expected in zip(receivers, sent, strict=True):
            assert receiver.error is None, receiver.error
            # Exactly once after de-duplication: one seq per message, every seq a message sent.
            assert sorted(receiver.bodies.values()) == sorted(expected)
            assert sorted(receiver.bodies) == list(range(min(receiver.bodies), max(receiver.bodies) + 1))

        # The dead instance's slots free themselves: a user reconnected from it holds its live
        # socket plus the dead one's entry until WS_STALE_S passes; the next connect drops it.
        survivor_user = dropped[0].user

        def stale_slot_gone() -> bool:
            probe, _ = open_ws(ws_url(cluster), survivor_user.token)
            probe.close()
            return slot_count(cluster, survivor_user.user_id) == 1

        wait_until(stale_slot_gone, DEADLINE_S, "the dead instance's slot to expire", interval=1.0)
    finally:
        for receiver in receivers:
            receiver.stop.set()
        for receiver in receivers:
            receiver.join(30)
        if killed:
            cluster.start_ws(0)
            cluster.wait_ws(0)
