"""Headless load test: the docs/load-model.md mix against gunicorn at a fixed arrival rate.

    make loadtest USERS=100 DURATION=30 [SPEEDUP=2] [WORKERS=2]

How it works, its options and results: docs/benchmarks/README.md, "The load test".
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.harness import dataset, servers
from bench.harness.common import BASE_DIR, RESULTS_DIR, write_result
from bench.harness.cpu import find_gunicorn_masters

PY = sys.executable
LOCUST = str(Path(PY).with_name("locust"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """gunicorn with the project's config file, on a free port, with the given environment.

    ``BENCH_CODE_DIR`` in the environment serves another checkout's code (say, a ``git worktree``
    of an earlier commit) on the same servers: ``closed_loop --versus BENCH_CODE_DIR=...`` runs
    two versions of the code side by side."""

    def __init__(self, env: dict[str, str], workers: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if env.get("BENCH_CODE_DIR") and not env.get("SECRET_KEY"):
            from devtools import embedded

            env = {**env, "SECRET_KEY": embedded.dev_secret_key()}  # the tokens signed here must verify there
        cmd = [PY, "-m", "gunicorn", "config.wsgi:application", "-c", "deploy/gunicorn.conf.py",
               "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)]
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, cwd=env.get("BENCH_CODE_DIR") or BASE_DIR, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer /health/ in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def prepare_users(count: int, tokens: bool, env: dict[str, str]) -> str:
    path = RESULTS_DIR / f".users-{count}.json"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    args = [PY, "-m", "bench.harness.prepare", "--users", str(count), "--out", str(path)]
    args += ["--tokens"] if tokens else []
    result = subprocess.run(args, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench.harness.prepare failed:\n{result.stderr[-4000:]}")
    return str(path)


def run_locust(url: str, users: int, duration: float, speedup: float, classes: list[str], users_file: str,
               cpu_pids: dict, login: str, extra_env: dict | None = None) -> dict:
    """Run Locust headless; return what the locustfile measured in its window."""
    out = tempfile.NamedTemporaryFile(prefix="bench-locust-", suffix=".json", delete=False)
    out.close()
    env = dict(os.environ)
    env.update({
        "BENCH_USERS_FILE": users_file, "BENCH_DURATION": str(duration), "BENCH_SPEEDUP": str(speedup),
        "BENCH_OUT": out.name, "BENCH_CPU_PIDS": json.dumps(cpu_pids), "BENCH_LOGIN": login,
        "BENCH_REDIS_URL": servers.redis_url(0), "BENCH_EXPECTED_USERS": str(users),
        "PYTHONPATH": str(BASE_DIR),
    })
    env.update(extra_env or {})
    spawn_rate = max(1, min(users, 20))
    cap = int(duration + users / spawn_rate + 120)
    cmd = [LOCUST, "-f", "bench/harness/locustfile.py", "--headless", "-u", str(users), "-r", str(spawn_rate),
           "--run-time", f"{cap}s", "--host", url, "--only-summary", "--loglevel", "WARNING",
           "--stop-timeout", "5", *classes]
    proc = subprocess.run(cmd, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    text = Path(out.name).read_text() if Path(out.name).exists() else ""
    os.unlink(out.name)
    if not text.strip():
        raise RuntimeError(f"locust produced no measurement (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(text)


def markdown(name: str, figures: dict, scale: dict) -> str:
    """One Markdown table: the overall line first, then each endpoint."""
    cpu = figures.get("cpu_ms_per_request", {})
    lines = [
        f"### {name}",
        "",
        f"Rate {figures['overall'].get('rate_per_s')} req/s for {figures['elapsed_s']} s, "
        f"{scale.get('users')} users (speedup {scale.get('speedup')}). CPU ms per request: "
        f"app {cpu.get('app')}, db {cpu.get('db')}, redis {cpu.get('redis')}. "
        f"Redis hit rate {figures.get('redis', {}).get('hit_rate')}.",
        "",
        "| endpoint | requests | errors | p50 ms | p95 ms | p99 ms | DB queries/req | no-DB share | bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [("**overall**", figures["overall"]), *figures["endpoints"].items()]
    for label, e in rows:
        lines.append(f"| {label} | {e['requests']} | {e['errors']} | {e['p50_ms']} | {e['p95_ms']} | {e['p99_ms']} | "
                     f"{e['db_queries_per_request']} | {e['requests_without_db_query']} | {e['mean_bytes']} |")
    return "\n".join(lines) + "\n"


def _start_py_spy(pid: int, out: str) -> subprocess.Popen:
    """Sample the app server and its workers (collapsed stacks) until interrupted."""
    spy = str(Path(PY).with_name("py-spy"))
    cmd = [spy, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", "200", "--gil",
           "--output", out, "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def loadtest(*, name: str, users: int, duration: float, speedup: float = 1.0, workers: int = 2,
             classes: list[str] | None = None, app_env: dict | None = None, login: str = "api",
             url: str | None = None, locust_env: dict | None = None, how: str = "",
             profile_out: str | None = None, seed: bool = True) -> dict:
    """One measured run; returns the result document (also written to bench/results/).

    A run of the mix (MobileUser) first makes sure the bench database holds a seeded data set
    (bench/harness/dataset.py): seeds it, or with ``seed=False`` refuses on a thin one."""
    servers.start()
    servers.migrate()
    if "MobileUser" in (classes or ["MobileUser"]):
        dataset.ensure_seeded(users, seed=seed)
    # The pool size per worker is deploy/gunicorn.conf.py's (its threads); BENCH_DB_POOL_MIN_SIZE
    # overrides it, e.g. 25 to see what the settings' default would cost a sync worker.
    defaults = {"BENCH_QUERY_COUNT": "1", "BENCH_FLOOR_VIEWS": "1"}
    if os.environ.get("BENCH_DB_POOL_MIN_SIZE"):
        defaults["DB_POOL_MIN_SIZE"] = os.environ["BENCH_DB_POOL_MIN_SIZE"]
    env = servers.env(**{**defaults, **(app_env or {})})
    users_file = prepare_users(max(users, 2), tokens=True, env=env)
    # Flush dirty buffers now, so that the checkpointer's work of earlier steps is not billed to this run.
    servers.psql("CHECKPOINT")
    server = None
    try:
        if url is None:
            server = Gunicorn(env, workers)
            url, app_pids = server.url, [server.proc.pid]
            cpu_pids = {"app": app_pids, "db": [servers.postmaster_pid()], "redis": [servers.redis_pid()]}
        else:  # a server we did not start, on the bench servers
            app_pids = find_gunicorn_masters()
            cpu_pids = {"app": app_pids, "db": [servers.postmaster_pid()], "redis": [servers.redis_pid()]}
        spy = _start_py_spy(app_pids[0], profile_out) if profile_out else None
        try:
            figures = run_locust(url, users, duration, speedup, classes or ["MobileUser"], users_file, cpu_pids,
                                 login, locust_env)
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
                spy.wait(30)
    finally:
        if server is not None:
            server.stop()
    scale = {"users": users, "speedup": speedup, "target_rate_per_s": round(users * 0.10117 * speedup, 1),
             "gunicorn_workers": workers, "database_users": _count_users(env), "classes": classes or ["MobileUser"],
             "app_env": app_env or {}}
    how = how or (f"python -m bench.harness.loadtest --users {users} --duration {duration} --speedup {speedup} "
                  f"--workers {workers} --name {name}")
    path = write_result(name, figures, how, scale)
    path.with_suffix(".md").write_text(markdown(name, figures, scale))
    return json.loads(path.read_text())


MIX_ENDPOINTS = ["POST /locations/", "GET /crossings/", "GET /stories/feed/", "GET /users/[id]/", "GET /me/",
                 "GET /connections/", "GET /connections/[id]/messages/", "POST /connections/[id]/messages/",
                 "POST /connections/", "POST /stories/"]


def endpoints_report(figures: dict) -> str:
    """Which endpoints of the mix ran in the measured window, and which did not (rare ones may
    not in a short run; a chat endpoint that never runs means users without connections)."""
    ran = figures.get("endpoints", {})
    done = [f"{name} {ran[name]['requests']}" for name in MIX_ENDPOINTS if ran.get(name, {}).get("requests")]
    missing = [name for name in MIX_ENDPOINTS if not ran.get(name, {}).get("requests")]
    text = "Endpoints of the mix that ran (requests): " + ", ".join(done) + "."
    if missing:
        text += "\nDid not run in the measured window: " + ", ".join(missing) + (
            " (rare endpoints need a longer DURATION or more USERS)")
    return text


def _count_users(env) -> int | None:
    try:
        out = servers.psql("SELECT count(*) FROM users", database=servers.DB_NAME)
        return int(out)
    except Exception:
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Headless Locust run of the docs/load-model.md mix.")
    parser.add_argument("--users", type=int, default=int(os.environ.get("USERS", 100)))
    parser.add_argument("--duration", type=float, default=float(os.environ.get("DURATION", 30)))
    parser.add_argument("--speedup", type=float, default=float(os.environ.get("SPEEDUP", 2)),
                        help="think time divided by this (rate = users x 0.101 x speedup req/s)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", 2)))
    parser.add_argument("--name", default="loadtest-mix")
    parser.add_argument("--login", choices=["api", "token"], default="api")
    parser.add_argument("--url", default=None,
                        help="target a server already running on the bench servers "
                        "(make cluster: bench.harness.cluster_load)")
    parser.add_argument("--class", dest="classes", action="append", help="Locust user class (default MobileUser)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the app server")
    parser.add_argument("--no-seed", action="store_true",
                        help="refuse to run on a database without a seeded data set instead of seeding it")
    args = parser.parse_args(argv)
    os.environ.setdefault("BENCH_INSTANCE", "harness")  # servers of our own (bench/harness/servers.py)
    app_env = dict(item.split("=", 1) for item in args.env)
    doc = loadtest(name=args.name, users=args.users, duration=args.duration, speedup=args.speedup,
                   workers=args.workers, classes=args.classes, app_env=app_env, login=args.login, url=args.url,
                   seed=not args.no_seed)
    print(markdown(args.name, doc["figures"], doc["scale"]))
    if "MobileUser" in (args.classes or ["MobileUser"]):
        print(endpoints_report(doc["figures"]))
    print(f"written: {RESULTS_DIR / (args.name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
