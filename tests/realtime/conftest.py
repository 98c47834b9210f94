"""Real uvicorn servers for the WebSocket tests, against this run's test database and Redis.

Two servers (two "instances") start once per session on free loopback ports; tests connect
with the ``websockets`` client.  Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from core.management.commands.serve import asgi_command
from tests.waiting import wait_until

DEADLINE_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AsgiServer:
    def __init__(self, name: str, **overrides: str):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"ws-{name}-", suffix=".log", delete=False)
        database = settings.DATABASES["default"]["NAME"]
        url = urlsplit(settings.DATABASE_URL)._replace(path=f"/{database}").geturl()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "SECRET_KEY": settings.SECRET_KEY,
            "JWT_SIGNING_KEY": settings.JWT_SIGNING_KEY,
            "DATABASE_URL": url,
            "REDIS_URL": settings.REDIS_URL,
            "REALTIME_REDIS_URL": settings.REALTIME_REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CACHE_KEY_PREFIX": settings.CACHE_KEY_PREFIX,
            "DB_POOL_MIN_SIZE": "1",
            "DB_POOL_MAX_SIZE": "4",
            "LOG_JSON": "0",
            "UVICORN_WS_PER_MESSAGE_DEFLATE": "false",  # as deployed (docs/realtime.md)
            **overrides,
        }
        # Plain per-process metrics: prometheus_client turns multiprocess mode on when the
        # variable is present at all, even empty.
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("prometheus_multiproc_dir", None)
        self.proc = subprocess.Popen(asgi_command(sys.executable, f"127.0.0.1:{self.port}"), env=env,
                                     cwd=settings.BASE_DIR, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v1/"

    def wait_ready(self) -> None:
        wait_until(self._listening, DEADLINE_S, "uvicorn to listen")

    def _listening(self) -> bool:
        assert self.proc.poll() is None, f"uvicorn exited: {self.output()}"
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def output(self) -> str:
        with open(self.log.name) as f:
            return f.read()[-4000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.unlink(self.log.name)


@pytest.fixture(scope="session")
def ws_servers(django_db_setup, django_db_blocker):
    servers = [AsgiServer("a"), AsgiServer("b")]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def _running(name: str, **settings):
    server = AsgiServer(name, **settings)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fast_heartbeat_server(django_db_setup, django_db_blocker):
    """A third instance that refreshes its slots twice a second (the heartbeat path)."""
    with _running("hb", WS_HEARTBEAT_S="0.5") as server:
        yield server


@pytest.fixture(scope="session")
def short_queue_server(django_db_setup, django_db_blocker):
    """An instance that drops a socket 20 live events behind (the slow-reader path)."""
    with _running("slow", WS_MAX_PENDING_EVENTS="20") as server:
        yield server


@pytest.fixture(scope="session")
def gc_schedule_server(django_db_setup, django_db_blocker):
    """An instance whose collection schedule (realtime.heap) freezes and thaws within a second."""
    with _running("gc", WS_GC_FREEZE_S="0.2", WS_GC_THAW_S="1") as server:
        yield server


@pytest.fixture
def ws_server(ws_servers):
    return ws_servers[0]


class Client:
    """A WebSocket client that reads JSON messages with one generous deadline."""

    def __init__(self, conn: ClientConnection, stack: contextlib.ExitStack):
        self.conn = conn
        self.stack = stack

    def send(self, message: dict) -> None:
        self.conn.send(json.dumps(message))

    def recv(self, timeout: float = DEADLINE_S) -> dict:
        return json.loads(self.conn.recv(timeout=timeout))

    def recv_until(self, predicate, timeout: float = DEADLINE_S) -> dict:
        """The first message satisfying ``predicate`` (earlier ones are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(0.1, deadline - time.monotonic()))
            if predicate(message):
                return message

    def events(self, count: int, timeout: float = DEADLINE_S) -> list[dict]:
        """The next ``count`` events (messages with a seq)."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            message = self.recv(max(0.1, deadline - time.monotonic()))
            if "seq" in message and message["type"] != "hello":
                got.append(message)
        return got

    def closed_with(self, timeout: float = DEADLINE_S) -> tuple[int, str]:
        """Wait for the server to close; its close code and reason."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.conn.recv(timeout=max(0.1, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code, closed.rcvd.reason

    def close(self) -> None:
        self.stack.close()


def open_socket(url: str, token: str | None = None, *, subprotocol: bool = False, hello: bool = True,
                **connect_options) -> Client:
    headers = {}
    protocols = None
    if token and subprotocol:
        protocols = ["crossings.v1", f"bearer.{token}"]
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    stack = contextlib.ExitStack()
    conn = stack.enter_context(connect(url, additional_headers=headers, subprotocols=protocols,
                                       open_timeout=DEADLINE_S, close_timeout=10, **connect_options))
    client = Client(conn, stack)
    if hello:
        message = client.recv()
        assert message["type"] == "hello", message
        client.hello = message  # type: ignore[attr-defined]
    return client


@pytest.fixture
def sockets():
    """Clients opened by a test, closed after it."""
    opened: list[Client] = []
    yield opened
    for client in opened:
        try:
            client.close()
        except Exception:
            pass
