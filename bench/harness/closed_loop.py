"""The load model's mix near saturation: app, database and Redis CPU per request, beside the floor.

    make bench-closed [USERS=5000] [ROUNDS=3] [REQUESTS=3000] [CLIENTS=8] [WORKERS=4]
    python -m bench.harness.closed_loop --users 5000 --rounds 3 [--write-docs]

Each client thread sends its next request as soon as the last one is answered (closed loop), so
gunicorn's workers are always busy and no idle overhead is billed to a request.  One run measures,
in interleaved rounds, the bare Django and DRF floor views, the whole mix (docs/load-model.md's
weights) and each endpoint of the mix alone, on a seeded data set (``seed_demo``: pings,
crossings, connections, messages, stories); each figure is the median of the rounds.  CPU is
read from the process trees of gunicorn, PostgreSQL and Redis (bench/harness/cpu.py), so the
client's own CPU is never counted.  How to read the figures: docs/benchmarks/README.md,
"The closed-loop run".
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench.harness import servers
from bench.harness.common import BASE_DIR, RESULTS_DIR, marked_block, replace_marked_block, write_result
from bench.harness.cpu import Tiers
from bench.harness.dataset import MIN_SEEDED, ensure_seeded

API = "/api/v1"
# docs/load-model.md, "One concurrent user": requests per minute of each endpoint.
MIX_PER_MINUTE = {
    "ping": 2, "crossings": 1, "feed": 1, "profile": 0.5, "me": 0.25, "connections": 0.25,
    "messages": 0.5, "send_message": 0.5, "connect": 0.05, "story": 0.02,
}
# The same users with events pushed over a WebSocket instead of polling (docs/benchmarks/realtime.md,
# "Pushed events instead of polling"): user actions stay; each list is read once per app session
# of PUSH_SESSION_MIN minutes, plus when an event that does not carry the data says it changed
# (story.new carries ids only: 0.02 stories a minute x ~10 connections re-read the feed).
# message.new carries the body and connection.* the connection and user ids: open chats and the
# connection list are not re-read for them.
PUSH_SESSION_MIN = 5
PUSH_MIX_PER_MINUTE = {
    "ping": 2, "profile": 0.5, "send_message": 0.5, "connect": 0.05, "story": 0.02,
    "crossings": 1 / PUSH_SESSION_MIN, "feed": 1 / PUSH_SESSION_MIN + 0.2,
    "connections": 1 / PUSH_SESSION_MIN, "me": 1 / PUSH_SESSION_MIN, "messages": 1 / PUSH_SESSION_MIN,
}
# Events a user's sockets receive per minute under that model: message.new to the recipient and to
# the sender's own devices (2 x 0.5), story.new 0.2, connection.* 0.1 (crossing.new: ~40 a month).
PUSH_EVENTS_PER_MINUTE = 1.3
ENDPOINT_NAMES = {
    "ping": "POST locations/ (one ping)", "send_message": "POST connections/{id}/messages/",
    "messages": "GET connections/{id}/messages/", "me": "GET me/", "connections": "GET connections/",
    "crossings": "GET crossings/", "feed": "GET stories/feed/", "profile": "GET users/{id}/",
    "connect": "POST connections/", "story": "POST stories/ (upload)",
}
# Per-endpoint goals of app CPU ms per request (the performance issue's targets).
GOALS_APP_MS = {"ping": 0.8, "send_message": 1.2, "messages": 1.2, "me": 1.2}
GOAL_DEFAULT_MS = 1.5
GOAL_MIX_APP_MS, GOAL_MIX_DB_MS = 1.0, 0.25
FLOORS = {"floor_django": "/bench/floor/django/", "floor_drf": "/bench/floor/drf/"}
# Measured alone, besides the mix (connect and story are 1 % of the mix: in the mix only).
ALONE = ["ping", "send_message", "messages", "me", "connections", "crossings", "feed", "profile"]


@dataclass
class Viewer:
    token: str
    lat: float
    lng: float
    connections: list[str] = field(default_factory=list)
    crossed: list[str] = field(default_factory=list)
    clock: datetime | None = None  # recorded_at of this user's last ping


# A phone pings every 30 s; the server judges a ping less than MATCH_MIN_INTERVAL_S (20 s) after
# the last one "dense" (stored, never matched, and a second Redis write).  A closed loop sends
# far more pings per user than that, so each user's pings carry their own clock, PING_STEP
# apart, starting in the past but within CROSSING_LIVE_S (600 s) of now: every ping is judged
# as a live phone's would be, as long as the run has enough users (--viewers).  The clock goes
# on from the user's newest stored ping (the seed's, or an earlier run's): a ping older than
# that one is a late batch to the server, which reads the user's stored pings around it (a
# query per ping) instead of the cached last ping, and measures a phone's rare path instead of
# its every-30-s one.  When no room is left before now, pings are sent at now: dense, not late.
PING_STEP = timedelta(seconds=21)
PING_BACKLOG = timedelta(seconds=560)


def _ping_time(viewer: Viewer) -> datetime:
    now = datetime.now(UTC)
    oldest = now - PING_BACKLOG
    at = max(viewer.clock + PING_STEP, oldest) if viewer.clock else oldest
    viewer.clock = min(at, now)
    return viewer.clock


# ------------------------------------------------------------------------- the data set


# The viewers' access tokens must outlive the run (5 minutes by default; a run takes 5-10):
# an expired token would turn the last rounds into 401s.
TOKEN_TTL_S = "14400"


def _django():
    os.environ.update(servers.env(ACCESS_TOKEN_TTL_S=TOKEN_TTL_S))
    import django

    django.setup()


def viewers(count: int) -> list[Viewer]:
    """``count`` seeded users with at least one accepted connection and one crossing, each
    signed in, with what their app would know: connection ids, crossed users, position."""
    from django.db.models import Q

    from accounts import services
    from accounts.models import User
    from bench.harness.prepare import last_pings
    from connections.models import Connection, ConnectionStatus
    from crossings.models import Crossing

    accepted = Connection.objects.filter(status=ConnectionStatus.ACCEPTED)
    ids = list(
        User.objects.filter(is_active=True, is_staff=False)
        .filter(Q(pk__in=accepted.values("user_low")) | Q(pk__in=accepted.values("user_high")))
        .order_by("pk").values_list("pk", flat=True)[: count * 2]
    )
    random.Random(17).shuffle(ids)
    chosen = list(User.objects.filter(pk__in=ids[:count]))
    pks = {user.pk for user in chosen}
    either = Q(user_low__in=pks) | Q(user_high__in=pks)
    conns: dict = defaultdict(list)
    for pk, low, high in accepted.filter(either).values_list("pk", "user_low", "user_high"):
        for user_id in (low, high):
            if user_id in pks and len(conns[user_id]) < 20:
                conns[user_id].append(str(pk))
    crossed: dict = defaultdict(list)
    for low, high in Crossing.objects.filter(either).values_list("user_low", "user_high"):
        for me, other in ((low, high), (high, low)):
            if me in pks and len(crossed[me]) < 20:
                crossed[me].append(str(other))
    last = last_pings(list(pks))
    out = []
    for user in chosen:
        lat, lng, at = last.get(str(user.pk), (52.52, 13.405, None))
        _session, access, _refresh = services.open_session(user, user_agent="bench closed loop", ip="127.0.0.1")
        out.append(Viewer(access, lat, lng, conns[user.pk],
                          crossed[user.pk] or [str(c) for c in ids[:5] if c != user.pk], clock=at))
    return out


# --------------------------------------------------------------------------- requests


def _request(viewer: Viewer, endpoint: str, rng: random.Random) -> tuple[str, str, bytes | None, dict]:
    headers = {"Authorization": f"Bearer {viewer.token}"}
    if endpoint == "ping":
        viewer.lat += rng.uniform(-0.0003, 0.0003)
        viewer.lng += rng.uniform(-0.0003, 0.0003)
        body = {"pings": [{"lat": round(viewer.lat, 6), "lng": round(viewer.lng, 6), "accuracy_m": 10,
                           "recorded_at": _ping_time(viewer).isoformat(timespec="microseconds")}]}
        return "POST", f"{API}/locations/", orjson.dumps(body), {**headers, "Content-Type": "application/json"}
    if endpoint == "send_message":
        body = orjson.dumps({"body": "see you there?"})
        return ("POST", f"{API}/connections/{rng.choice(viewer.connections)}/messages/", body,
                {**headers, "Content-Type": "application/json"})
    if endpoint == "messages":
        return "GET", f"{API}/connections/{rng.choice(viewer.connections)}/messages/", None, headers
    if endpoint == "profile":
        return "GET", f"{API}/users/{rng.choice(viewer.crossed)}/", None, headers
    if endpoint == "connect":
        body = orjson.dumps({"user_id": rng.choice(viewer.crossed)})
        return "POST", f"{API}/connections/", body, {**headers, "Content-Type": "application/json"}
    if endpoint == "story":
        return _story_upload(headers)
    path = {"crossings": "/crossings/", "feed": "/stories/feed/", "me": "/me/",
            "connections": "/connections/?status=accepted"}[endpoint]
    return "GET", f"{API}{path}", None, headers


def _story_upload(headers: dict) -> tuple[str, str, bytes, dict]:
    from tests.media_samples import image_bytes

    boundary = "benchboundary7MA4YWxk"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="caption"\r\n\r\nbench\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="s.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode() + image_bytes() + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return "POST", f"{API}/stories/", b"".join(parts), {**headers,
                                                        "Content-Type": f"multipart/form-data; boundary={boundary}"}


OK = {"ping": (201,), "send_message": (201,), "connect": (200, 201, 403, 404, 409), "story": (201,),
      "profile": (200, 404), "messages": (200,)}


def _mix_sequence(length: int, rng: random.Random, mix: dict[str, float] = MIX_PER_MINUTE) -> list[str]:
    names, weights = zip(*mix.items(), strict=True)
    return rng.choices(names, weights=weights, k=length)


# ---------------------------------------------------------------------------- one run


@dataclass
class RunResult:
    target: str
    requests: int
    seconds: float
    cpu_ms: dict[str, float]
    by_endpoint: dict[str, int]
    errors: dict[str, int]
    latencies_ms: list[float]

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else 0.0

        return {"target": self.target, "requests": self.requests, "req_per_s": round(self.requests / self.seconds),
                "cpu_ms_per_request": self.cpu_ms, "by_endpoint": self.by_endpoint, "errors": self.errors,
                "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


def run(port: int, tiers: Tiers, target: str, requests: int, clients: int, people: list[Viewer],
        seed: int, keepalive: bool = False) -> RunResult:
    """``requests`` requests of ``target`` (a floor, ``mix``, ``push`` or an endpoint), closed loop."""
    per_client = max(1, requests // clients)
    counts: dict[str, int] = {}
    errors: dict[str, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        sequence = (_mix_sequence(per_client, rng) if target == "mix"
                    else _mix_sequence(per_client, rng, PUSH_MIX_PER_MINUTE) if target == "push"
                    else [target] * per_client)
        local_counts: dict[str, int] = {}
        local_errors: dict[str, int] = {}
        local_lat = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60) if keepalive else None
        for i, endpoint in enumerate(sequence):
            if endpoint in FLOORS:
                method, path, body, headers = "GET", FLOORS[endpoint], None, {}
            else:
                viewer = people[(index + i * clients) % len(people)]
                method, path, body, headers = _request(viewer, endpoint, rng)
            t0 = time.perf_counter()
            status = _send(port, method, path, body, headers, conn)
            local_lat.append((time.perf_counter() - t0) * 1000)
            local_counts[endpoint] = local_counts.get(endpoint, 0) + 1
            if status not in OK.get(endpoint, (200,)):
                key = f"{endpoint}:{status}"
                local_errors[key] = local_errors.get(key, 0) + 1
        if conn is not None:
            conn.close()
        with lock:
            for k, v in local_counts.items():
                counts[k] = counts.get(k, 0) + v
            for k, v in local_errors.items():
                errors[k] = errors.get(k, 0) + v
            latencies.extend(local_lat)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    before, t0 = tiers.sample(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds, used = time.perf_counter() - t0, Tiers.delta(before, tiers.sample())
    served = per_client * clients
    cpu_ms = {tier: round(sec / served * 1000, 3) for tier, sec in used.items()}
    return RunResult(target, served, seconds, cpu_ms, counts, errors, latencies)


def _send(port: int, method: str, path: str, body: bytes | None, headers: dict,
          conn: http.client.HTTPConnection | None = None) -> int:
    """One request on a new connection, or on ``conn`` (kept alive: reopened by http.client when
    the server closed it, as a sync worker does after every response)."""
    kept = conn is not None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        conn.close()
        return 0
    finally:
        if not kept:
            conn.close()


def profile(gunicorn, tiers: Tiers, target: str, args, people: list[Viewer]) -> None:
    """py-spy on every gunicorn worker during one more run of ``target``; stacks grouped by
    component (bench/harness/profile.py's classification)."""
    import signal
    import subprocess

    from bench.harness.profile import aggregate

    Path(RESULTS_DIR).mkdir(parents=True, exist_ok=True)  # a fresh checkout has none: py-spy writes no file there
    raw = Path(RESULTS_DIR) / f"closed-loop-profile-{target}.txt"
    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--subprocesses", "--rate", "250",
                            "--gil", "--format", "raw", "--nonblocking", "-o", str(raw), "-p", str(gunicorn.proc.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches to every worker before the run starts (not a test: a tool's start-up)
    result = run(gunicorn.port, tiers, target, args.requests * 2, args.clients, people, 99, args.keepalive)
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    figures = aggregate(raw.read_text().splitlines() if raw.exists() else [])
    figures["run"] = result.summary()
    (raw.with_suffix(".json")).write_text(json.dumps(figures, indent=2))
    print(f"\nprofile of {target}: {raw.relative_to(BASE_DIR)}")
    for label, share in list(figures.get("inclusive", {}).items()) + list(figures.get("top_functions_ours_inclusive",
                                                                                          {}).items()):
        print(f"  {share * 100:5.1f} %  {label}")


# ------------------------------------------------------------------------------ report


def median_of(runs: list[RunResult]) -> dict:
    tiers = runs[0].cpu_ms.keys()
    return {
        "target": runs[0].target,
        "rounds": len(runs),
        "cpu_ms_per_request": {t: round(statistics.median(r.cpu_ms[t] for r in runs), 3) for t in tiers},
        "cpu_ms_spread": {t: [min(r.cpu_ms[t] for r in runs), max(r.cpu_ms[t] for r in runs)] for t in tiers},
        "app_ms_by_round": [round(r.cpu_ms["app"], 3) for r in runs],
        "req_per_s": round(statistics.median(r.requests / r.seconds for r in runs)),
        "requests": sum(r.requests for r in runs),
        "errors": {k: sum(r.errors.get(k, 0) for r in runs) for k in {k for r in runs for k in r.errors}},
        "by_endpoint": {k: sum(r.by_endpoint.get(k, 0) for r in runs)
                        for k in {k for r in runs for k in r.by_endpoint}},
        "p50_ms": round(statistics.median(r.summary()["p50_ms"] for r in runs), 2),
        "p99_ms": round(statistics.median(r.summary()["p99_ms"] for r in runs), 2),
    }


def markdown(result: dict) -> str:
    m = result["measured"]
    drf = m["floor_drf"]["cpu_ms_per_request"]["app"]
    meta = result["meta"]
    lines = [
        f"Closed loop, {meta['clients']} client threads, {meta['workers']} sync gunicorn workers, "
        f"{meta['seeded_users']} seeded users ({meta['viewers']} of them signed in and sending), "
        f"{meta['requests']} requests per target per round, median of {meta['rounds']} interleaved rounds; "
        f"{meta['machine']}, load average {meta['load_before']} before and {meta['load_after']} after; "
        f"{meta['date']}. Command: `{meta['command']}`.",
        "",
        "| target | share of the mix | app ms | db ms | redis ms | × bare DRF (app) | goal app ms | req/s | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = sum(MIX_PER_MINUTE.values())

    def row(key: str, label: str, share: str, goal: str) -> str:
        r = m[key]
        cpu = r["cpu_ms_per_request"]
        errs = sum(r["errors"].values())
        return (f"| {label} | {share} | {cpu['app']:.2f} | {cpu['db']:.2f} | {cpu['redis']:.2f} | "
                f"{cpu['app'] / drf:.2f} | {goal} | {r['req_per_s']} | {errs} |")

    lines.append(row("floor_django", "bare Django view (floor)", "", ""))
    lines.append(row("floor_drf", "bare DRF view (floor)", "", ""))
    lines.append(row("mix", "**the mix**", "100 %", f"≤ {GOAL_MIX_APP_MS} (db ≤ {GOAL_MIX_DB_MS})"))
    for key in ALONE:
        share = f"{MIX_PER_MINUTE[key] / total * 100:.0f} %"
        lines.append(row(key, ENDPOINT_NAMES[key], share, f"≤ {GOALS_APP_MS.get(key, GOAL_DEFAULT_MS)}"))
    ran = m["mix"]["by_endpoint"]
    lines += ["", "Requests of each endpoint in the mix runs: "
              + ", ".join(f"{ENDPOINT_NAMES[k]} {ran.get(k, 0)}" for k in MIX_PER_MINUTE) + "."]
    return "\n".join(lines)


def versus_table(measured: dict, versus: str) -> str:
    """App CPU per request of each target on both servers, the ratio of the medians, and the
    ratio round by round (the two servers ran the target one after the other in each round, so
    a round's ratio is the pair least disturbed by the machine's load moving; their median is
    the figure to quote, their spread what this run can resolve)."""
    lines = ["", f"Side by side: this code against the same with {versus}.", "",
             f"| target | app ms | app ms with {versus} | ratio | round by round (median) | db ms | "
             f"db ms with {versus} |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    for key, figures in measured.items():
        if "@" in key:
            continue
        other = measured.get(f"{key}@versus")
        if other is None:
            continue
        a, b = figures["cpu_ms_per_request"], other["cpu_ms_per_request"]
        rounds = [x / y for x, y in zip(figures.get("app_ms_by_round", []), other.get("app_ms_by_round", []),
                                        strict=False) if y]
        paired = (" ".join(f"{r:.2f}" for r in rounds) + f" ({statistics.median(rounds):.2f})") if rounds else ""
        lines.append(f"| {key} | {a['app']:.3f} | {b['app']:.3f} | {a['app'] / b['app']:.2f} | {paired} | "
                     f"{a['db']:.3f} | {b['db']:.3f} |")
    return "\n".join(lines)


BEGIN, END = "<!-- closed-loop:begin -->", "<!-- closed-loop:end -->"
DOC = BASE_DIR / "docs" / "BENCHMARKS.md"


def current_block() -> str:
    """The closed-loop table docs/BENCHMARKS.md holds now ('' if none)."""
    return marked_block(DOC, BEGIN, END)


def write_docs(text: str) -> None:
    """Replace the closed-loop table in docs/BENCHMARKS.md (bench/harness/report.py keeps it)."""
    if not replace_marked_block(DOC, BEGIN, END, text):
        raise SystemExit(f"{DOC} has no {BEGIN} marker: run `python -m bench.harness.report` first")


# -------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000, help="seeded users in the data set (at least 1000)")
    parser.add_argument("--viewers", type=int, default=1000,
                        help="signed-in users sending the requests (enough that each pings at most every 21 s)")
    parser.add_argument("--requests", type=int, default=3000, help="requests per target per round")
    parser.add_argument("--clients", type=int, default=8, help="client threads (closed loop)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="",
                        help="comma-separated targets (default: floors, mix, push mix, every endpoint)")
    parser.add_argument("--no-seed", action="store_true", help="refuse instead of seeding a small data set")
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/BENCHMARKS.md's closed-loop table")
    parser.add_argument("--versus", default="",
                        help="KEY=VALUE (several separated by spaces): a second app server with these environment "
                             "settings, measured side by side (e.g. BENCH_FLAT_MIDDLEWARE=1, the middleware before "
                             "API requests skipped some); the servers take turns going first, so give an even "
                             "--rounds")
    parser.add_argument("--keepalive", action="store_true",
                        help="each client thread keeps its HTTP connection open (as nginx's upstream keepalive "
                             "does); a sync worker still closes it after every response, a gthread worker keeps it")
    parser.add_argument("--profile", default="",
                        help="comma-separated targets to profile with py-spy after the rounds (stacks and a "
                             "summary in bench/results/closed-loop-profile-<target>.*)")
    args = parser.parse_args(argv)
    if args.users < MIN_SEEDED:
        parser.error(f"--users must be at least {MIN_SEEDED} (a realistic neighbourhood needs a crowd)")

    os.environ.setdefault("BENCH_INSTANCE", "harness")
    servers.start()
    servers.migrate()
    seeded = ensure_seeded(args.users, seed=not args.no_seed)["seeded_users"]
    _django()
    people = viewers(args.viewers)
    if not people:
        raise SystemExit("no seeded user has an accepted connection: the data set cannot drive the mix")
    print(f"{len(people)} viewers signed in", flush=True)

    from bench.harness.loadtest import Gunicorn

    env = servers.env(BENCH_FLOOR_VIEWS="1", RATE_LIMIT_USER="100000000/minute", ACCESS_TOKEN_TTL_S=TOKEN_TTL_S,
                      WEB_CONCURRENCY=str(args.workers))
    targets = [t.strip() for t in args.only.split(",") if t.strip()] or ["floor_django", "floor_drf", "mix", "push",
                                                                        *ALONE]
    unknown = set(targets) - {*FLOORS, "mix", "push", *MIX_PER_MINUTE}
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    # One app server, or two side by side (--versus KEY=VALUE ...: the second with those settings).
    apps = {"": Gunicorn(env, args.workers)}
    if args.versus:
        changed = dict(setting.partition("=")[::2] for setting in args.versus.split())
        apps["versus"] = Gunicorn({**env, **changed}, args.workers)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[RunResult]] = {}
    try:
        tiers = {label: Tiers({"app": [app.proc.pid], "db": [servers.postmaster_pid()],
                               "redis": [servers.redis_pid()]}) for label, app in apps.items()}
        for label, app in apps.items():  # warm every worker on every path: imports, compiled queries, caches
            # Every viewer once per target: caches filled, each user's last ping in Redis, so the
            # rounds measure the steady state and not first reads (--viewers of them).
            warm = max(len(people), args.clients * 10, args.requests // 10)
            for target in targets:
                run(app.port, tiers[label], target, warm, args.clients, people, 0, args.keepalive)
        for round_no in range(args.rounds):
            order = targets[round_no % len(targets):] + targets[: round_no % len(targets)]  # interleaved
            # Which server goes first alternates too: a read right after the other side's run
            # finds the state that run left (chats it marked read, caches it filled).
            sides = list(apps.items()) if round_no % 2 == 0 else list(apps.items())[::-1]
            for target in order:
                for label, app in sides:
                    key = f"{target}@{label}" if label else target
                    result = run(app.port, tiers[label], target, args.requests, args.clients, people, round_no + 1,
                                 args.keepalive)
                    runs.setdefault(key, []).append(result)
                    s = result.summary()
                    cpu = s["cpu_ms_per_request"]
                    print(f"round {round_no + 1} {key:22} {s['req_per_s']:5} req/s  app {cpu['app']:.3f}"
                          f"  db {cpu['db']:.3f}  redis {cpu['redis']:.3f} ms/req"
                          f"  errors {sum(s['errors'].values())}", flush=True)
        for target in [t.strip() for t in args.profile.split(",") if t.strip()]:
            profile(apps[""], tiers[""], target, args, people)
    finally:
        for app in apps.values():
            app.stop()
    measured = {t: median_of(r) for t, r in runs.items()}
    import platform

    result = {
        "meta": {"seeded_users": seeded, "viewers": len(people), "requests": args.requests, "clients": args.clients,
                 "keepalive": args.keepalive, "workers": args.workers, "rounds": args.rounds,
                 "date": datetime.now(UTC).strftime("%Y-%m-%d"),
                 "machine": f"{os.cpu_count()} vCPU {platform.machine()} ({platform.python_implementation()} "
                            f"{platform.python_version()})",
                 "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1),
                 "command": "python -m bench.harness.closed_loop "
                            + " ".join(argv if argv is not None else sys.argv[1:])},
        "measured": measured,
    }
    out = write_result("closed-loop", result, result["meta"]["command"], scale={"seeded_users": seeded})
    print(f"\nresult: {out.relative_to(BASE_DIR)}")
    if args.versus:
        print(versus_table(measured, args.versus))
    if {"floor_drf", "mix", *ALONE} <= set(targets):
        text = markdown(result)
        print(text)
        if args.write_docs:
            write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
