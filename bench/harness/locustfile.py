"""One concurrent user of docs/load-model.md, for Locust; run it through ``make loadtest``.

``MobileUser`` makes the mix at a fixed arrival rate; the floor classes and ``AbuserUser`` serve
the claims.  Its environment (BENCH_*), the window and the output: docs/benchmarks/README.md, "The load test".
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import os
import random
import time
from collections import defaultdict

import gevent
import redis
from locust import HttpUser, constant, events, task
from PIL import Image

from bench.harness.summary import summarise

MIX_PER_MINUTE = {  # docs/load-model.md, "One concurrent user"
    "ping": 2, "crossings": 1, "feed": 1, "profile": 0.5, "me": 0.25, "connections": 0.25,
    "messages": 0.5, "send_message": 0.5, "connect": 0.05, "story": 0.02,
}
REQUESTS_PER_MINUTE = sum(MIX_PER_MINUTE.values())  # 6.07
SPEEDUP = float(os.environ.get("BENCH_SPEEDUP", "1"))
MEAN_THINK_S = 60.0 / REQUESTS_PER_MINUTE / SPEEDUP
DURATION_S = float(os.environ.get("BENCH_DURATION", "30"))
WARMUP_S = float(os.environ.get("BENCH_WARMUP", "5"))
LOGIN_MODE = os.environ.get("BENCH_LOGIN", "api")
API = "/api/v1"


def exponential_think(_user=None) -> float:
    return random.expovariate(1.0 / MEAN_THINK_S)


def _load_users() -> list[dict]:
    path = os.environ.get("BENCH_USERS_FILE")
    if not path or not os.path.exists(path):
        return []
    with open(path) as fh:
        return json.load(fh)


_USERS = _load_users()
_user_index = itertools.count()


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 80, 40)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------- measured window


class Window:
    """The measured part of the run: opened once all users are in, closed after DURATION_S."""

    def __init__(self):
        self.open = False
        self.ready = 0
        self.records: dict[str, list] = defaultdict(list)
        self.started_at = None
        self.cpu_before = None
        self.redis_before = None
        self.environment = None

    def user_ready(self, environment) -> None:
        self.ready += 1
        expected = int(os.environ.get("BENCH_EXPECTED_USERS") or environment.parsed_options.num_users or 0)
        if not self.open and self.ready == expected:
            # A short warm-up first: each worker's first requests import and compile lazily.
            gevent.spawn_later(WARMUP_S, self.start, environment)

    def start(self, environment) -> None:
        self.environment = environment
        environment.runner.stats.reset_all()
        self.records.clear()
        self.cpu_before = _tiers().sample() if _tiers() else None
        self.redis_before = _redis_stats()
        self.started_at = time.monotonic()
        self.open = True
        gevent.spawn_later(DURATION_S, self.finish)

    def record(self, name, response_time, length, response, exception) -> None:
        if not self.open:
            return
        headers = getattr(response, "headers", None) or {}
        self.records[name].append((
            response_time, length, exception is None,
            _int(headers.get("X-Bench-Queries")), _int(headers.get("X-Bench-Queries-Replica")),
            _int(headers.get("X-Bench-Cache-Gets")), _int(headers.get("X-Bench-Cache-Hits")),
            getattr(response, "status_code", 0),
        ))

    def finish(self) -> None:
        if not self.open:
            return
        self.open = False
        elapsed = time.monotonic() - self.started_at
        cpu = None
        if self.cpu_before is not None:
            from bench.harness.cpu import Tiers

            cpu = Tiers.delta(self.cpu_before, _tiers().sample())
        redis_after = _redis_stats()
        result = summarise(self.records, elapsed, cpu, self.redis_before, redis_after)
        out = os.environ.get("BENCH_OUT")
        if out:
            with open(out, "w") as fh:
                json.dump(result, fh, indent=2)
        self.environment.runner.quit()


WINDOW = Window()
_TIERS = None


def _tiers():
    global _TIERS
    if _TIERS is None and os.environ.get("BENCH_CPU_PIDS"):
        from bench.harness.cpu import Tiers

        _TIERS = Tiers(json.loads(os.environ["BENCH_CPU_PIDS"]))
    return _TIERS


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _redis_stats() -> dict | None:
    url = os.environ.get("BENCH_REDIS_URL")
    if not url:
        return None

    try:
        info = redis.Redis.from_url(url).info("stats")
    except Exception:
        return None
    return {k: info.get(k, 0) for k in ("keyspace_hits", "keyspace_misses", "total_commands_processed")}


@events.request.add_listener
def _on_request(request_type, name, response_time, response_length, response=None, exception=None, **_kw):
    WINDOW.record(name, response_time, response_length, response, exception)


# ---------------------------------------------------------------------- the users


def _ids_in(payload, keys=("user", "other_user", "person", "author")) -> list[str]:
    """User ids found in a list response, whatever the exact item shape."""
    items = payload.get("results", payload) if isinstance(payload, dict) else payload
    ids = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        for key in keys:
            value = item.get(key)
            if isinstance(value, dict) and value.get("id"):
                ids.append(value["id"])
                break
        else:
            if item.get("user_id"):
                ids.append(item["user_id"])
    return ids


class MobileUser(HttpUser):
    """A signed-in phone with the app open (docs/load-model.md)."""

    wait_time = exponential_think

    def on_start(self):
        index = next(_user_index)
        self.account = _USERS[index % len(_USERS)] if _USERS else {}
        self.lat = self.account.get("lat", 52.52) + random.uniform(-0.01, 0.01)
        self.lng = self.account.get("lng", 13.405) + random.uniform(-0.01, 0.01)
        self.crossed: list[str] = []
        self.connections: list[dict] = []
        self.access = None
        self.login()
        self.refresh_state()
        WINDOW.user_ready(self.environment)

    # -- session

    def login(self):
        if LOGIN_MODE == "api" and self.account.get("password"):
            with self.client.post(f"{API}/auth/login/", json={"phone": self.account["phone"],
                                  "password": self.account["password"]}, name="POST /auth/login/",
                                  catch_response=True) as resp:
                if resp.status_code == 200:
                    self.access = resp.json().get("access")
                    resp.success()
                else:
                    resp.failure(f"login {resp.status_code}")
        if not self.access:
            self.access = self.account.get("access")
        self.client.headers["Authorization"] = f"Bearer {self.access}"

    def refresh_state(self):
        """What a freshly opened app loads: whom I crossed, my connections (outside the window)."""
        resp = self.client.get(f"{API}/crossings/", name="GET /crossings/")
        if resp.ok:
            self.crossed = _ids_in(resp.json())
        resp = self.client.get(f"{API}/connections/?status=accepted", name="GET /connections/")
        if resp.ok:
            body = resp.json()
            self.connections = body.get("results", []) if isinstance(body, dict) else []

    def _check(self, resp, allowed=(200, 201, 204, 409)):
        if resp.status_code == 401:  # the access token expired (5 minutes): log in again
            self.login()
        if resp.status_code in allowed:
            resp.success()
        else:
            resp.failure(f"{resp.status_code}: {resp.text[:120]}")

    # -- the mix (weights are per-minute rates x 100)

    @task(200)
    def ping(self):
        self.lat += random.uniform(-0.0003, 0.0003)
        self.lng += random.uniform(-0.0003, 0.0003)
        now = dt.datetime.now(dt.UTC)
        count = 1 if random.random() < 0.8 else random.randint(2, 10)
        pings = [{"lat": round(self.lat, 6), "lng": round(self.lng, 6),
                  "recorded_at": (now - dt.timedelta(seconds=30 * i)).isoformat(), "accuracy_m": 10}
                 for i in reversed(range(count))]
        with self.client.post(f"{API}/locations/", json={"pings": pings}, name="POST /locations/",
                              catch_response=True) as resp:
            self._check(resp)

    @task(100)
    def crossings(self):
        with self.client.get(f"{API}/crossings/", name="GET /crossings/", catch_response=True) as resp:
            self._check(resp, allowed=(200,))
            if resp.status_code == 200:
                self.crossed = _ids_in(resp.json()) or self.crossed

    @task(100)
    def feed(self):
        with self.client.get(f"{API}/stories/feed/", name="GET /stories/feed/", catch_response=True) as resp:
            self._check(resp, allowed=(200,))

    @task(50)
    def profile(self):
        if not self.crossed:
            return self.me()
        with self.client.get(f"{API}/users/{random.choice(self.crossed)}/", name="GET /users/[id]/",
                             catch_response=True) as resp:
            self._check(resp, allowed=(200, 404))  # 404: blocked or no longer visible since listed

    @task(25)
    def me(self):
        with self.client.get(f"{API}/me/", name="GET /me/", catch_response=True) as resp:
            self._check(resp, allowed=(200,))

    @task(25)
    def connections_list(self):
        with self.client.get(f"{API}/connections/?status=accepted", name="GET /connections/",
                             catch_response=True) as resp:
            self._check(resp, allowed=(200,))
            if resp.status_code == 200:
                self.connections = resp.json().get("results", []) or self.connections

    @task(50)
    def messages(self):
        if not self.connections:
            return self.connections_list()
        conn = random.choice(self.connections)
        with self.client.get(f"{API}/connections/{conn['id']}/messages/", name="GET /connections/[id]/messages/",
                             catch_response=True) as resp:
            self._check(resp, allowed=(200, 404))

    @task(50)
    def send_message(self):
        if not self.connections:
            return self.connections_list()
        conn = random.choice(self.connections)
        with self.client.post(f"{API}/connections/{conn['id']}/messages/", json={"body": "see you there?"},
                              name="POST /connections/[id]/messages/", catch_response=True) as resp:
            self._check(resp, allowed=(201, 404))

    @task(5)
    def connect(self):
        if not self.crossed:
            return self.connections_list()
        with self.client.post(f"{API}/connections/", json={"user_id": random.choice(self.crossed)},
                              name="POST /connections/", catch_response=True) as resp:
            self._check(resp, allowed=(200, 201, 403, 404, 409))

    @task(2)
    def story(self):
        files = {"media": ("story.png", _tiny_png(), "image/png")}
        with self.client.post(f"{API}/stories/", data={"caption": "bench", "visibility": "public"}, files=files,
                              name="POST /stories/", catch_response=True) as resp:
            self._check(resp, allowed=(201,))


def _only(user_class, names: str) -> None:
    """Keep only the named tasks (``BENCH_ONLY=feed,me``): one endpoint's cost, measured alone."""
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    kept = [t for t in user_class.tasks if getattr(t, "__name__", "") in wanted]
    if not kept:
        raise ValueError(f"BENCH_ONLY={names!r} names no task of {user_class.__name__}")
    user_class.tasks = kept


if os.environ.get("BENCH_ONLY"):
    _only(MobileUser, os.environ["BENCH_ONLY"])


# ------------------------------------------------------------------ floor and abuse


class _FloorUser(HttpUser):
    """The same arrival process as MobileUser, on a bench-only floor view."""

    abstract = True
    wait_time = exponential_think
    path = ""

    def on_start(self):
        WINDOW.user_ready(self.environment)

    @task
    def hit(self):
        self.client.get(self.path, name=f"GET {self.path}")


class FloorDjangoUser(_FloorUser):
    path = "/bench/floor/django/"


class FloorDRFUser(_FloorUser):
    path = "/bench/floor/drf/"


class FloorDRFQueryUser(_FloorUser):
    path = "/bench/floor/drf-query/"

    @task
    def hit(self):
        user_id = random.choice(_USERS)["id"] if _USERS and "id" in _USERS[0] else ""
        self.client.get(f"{self.path}?id={user_id}", name=f"GET {self.path}")


class AbuserUser(HttpUser):
    """A client hammering one expensive endpoint (a chat's messages) as fast as it can, for the
    rate-limiting claim; ``BENCH_ABUSERS`` of them share one account, as a script would."""

    wait_time = constant(float(os.environ.get("BENCH_ABUSE_WAIT_S", "0")))
    weight = 0
    fixed_count = int(os.environ.get("BENCH_ABUSERS", "0"))

    def on_start(self):
        account = _USERS[-1] if _USERS else {}
        self.client.headers["Authorization"] = f"Bearer {account.get('access')}"
        self.path = f"{API}/crossings/"
        resp = self.client.get(f"{API}/connections/?status=accepted", name="abuse:setup")
        if resp.ok and resp.json().get("results"):
            self.path = f"{API}/connections/{resp.json()['results'][0]['id']}/messages/"
        WINDOW.user_ready(self.environment)

    @task
    def hammer(self):
        with self.client.get(self.path, name="abuse:GET", catch_response=True) as resp:
            if resp.status_code in (200, 429):
                resp.success()
