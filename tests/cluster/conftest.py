"""One loopback cluster for the whole tests/cluster session (deploy/cluster/topology.py).

PostgreSQL primary + 2 streaming replicas (every statement logged, so that a test can count
which server served a read), a Redis Cluster of 3 masters + 3 replicas, 3 gunicorn instances
serving the project plus the test-only probe views (tests/cluster/probe.py), 2 uvicorn
instances for WebSockets, nginx in front.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from deploy.cluster.topology import Topology
from tests.waiting import DEADLINE_S, wait_until

LAG_LIMIT_S = 2.0
HEALTH_TTL_S = 0.5
# Registrations and logins per client address and hour (the suite's own come from 127.0.0.1).
AUTH_IP_LIMIT = 20


@pytest.fixture(scope="session")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="crossings-cluster-"))
    topology = Topology(
        root=root, log_statements=True, wsgi_app="tests.cluster.probe:application", workers_per_app=2,
        extra_env={"REPLICA_MAX_LAG_S": str(LAG_LIMIT_S), "REPLICA_HEALTH_TTL_S": str(HEALTH_TTL_S),
                   # Limits on (tests/cluster/test_client_ip.py), but none a load test reaches.
                   "RATE_LIMIT_USER": "1000000/minute", "RATE_LIMIT_AUTH_PHONE": "1000000/minute",
                   "RATE_LIMIT_AUTH_IP": f"{AUTH_IP_LIMIT}/hour",
                   # A killed ASGI instance's slots free themselves in 10 s, not 90 (test_websockets.py).
                   "WS_HEARTBEAT_S": "3", "WS_STALE_S": "10"},
    )
    try:
        topology.start(celery=False)
        yield topology
    finally:
        topology.stop()
        if not os.environ.get("KEEP_CLUSTER_ROOT"):
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class Probe:
    """A user of the probe API, through nginx."""

    base: str
    user_id: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    def get_me(self) -> dict:
        response = self.session.get(f"{self.base}/_probe/me/", headers=self._auth(), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def set_name(self, name: str) -> dict:
        response = self.session.patch(f"{self.base}/_probe/me/", json={"display_name": name},
                                      headers=self._auth(), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


def new_user(cluster: Topology) -> Probe:
    response = requests.post(f"{cluster.nginx_url}/_probe/users/", timeout=10)
    response.raise_for_status()
    body = response.json()
    return Probe(cluster.nginx_url, body["id"], body["access"])


def reads_per_server(cluster: Topology, user_id: str) -> list[int]:
    """How many probe reads of ``user_id`` each server (primary, replica1, replica2) executed."""
    marker = f"probe-read {user_id}"
    counts = []
    for index in range(len(cluster.pg_ports)):
        log = cluster.pgdata(index) / "server.log"
        counts.append(sum(1 for line in log.read_text(errors="replace").splitlines()
                          if marker in line and ("statement:" in line or "execute" in line)))
    return counts


@dataclass
class LoadResult:
    ok: int = 0
    failed: list = field(default_factory=list)
    latencies: list = field(default_factory=list)


class Load:
    """A few client threads sending requests through nginx until stopped (bounded)."""

    def __init__(self, make_request, clients: int = 4, max_seconds: float = DEADLINE_S):
        self.make_request = make_request
        self.clients = clients
        self.max_seconds = max_seconds
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def _run(self, index: int):
        session = requests.Session()
        deadline = time.monotonic() + self.max_seconds
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = self.make_request(session, index, n)
                error = None if response.status_code < 400 else f"HTTP {response.status_code}: {response.text[:200]}"
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            with self._lock:
                self.result.latencies.append(elapsed)
                if error:
                    self.result.failed.append((time.monotonic(), index, error))
                else:
                    self.result.ok += 1
            n += 1

    def served_more(self, count: int, what: str) -> None:
        """Wait (polling, generous deadline) until ``count`` more requests succeeded."""
        target = self.result.ok + count
        wait_until(lambda: self.result.ok >= target, DEADLINE_S, what)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
