"""Dedicated PostgreSQL and Redis servers for benchmarks, under ``.data/bench/``.

Every CPU second they use is the benchmark's (the development servers are shared).
``python -m bench.harness.servers start|stop``; why and how: docs/benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from devtools import embedded

BENCH_DIR = embedded.DATA_DIR / "bench"
DB_NAME = "crossings_bench"
PG_EXTRA_CONF = "shared_buffers = 256MB\nmax_connections = 500\n"
# BENCH_INSTANCE=<name> gives a process tree its own pair of servers under .data/bench/<name>/:
# the harness (make loadtest/bench) uses "harness", so that other areas' benchmarks on the
# shared bench servers never bill CPU to its runs.
INSTANCES = {"": ("", 5433), "harness": ("harness", 5434)}


def _instance() -> tuple[Path, int]:
    name = os.environ.get("BENCH_INSTANCE", "")
    sub, port = INSTANCES.get(name, (name, 5435 + sum(map(ord, name)) % 100))
    return (BENCH_DIR / sub if sub else BENCH_DIR), port


def pg_dir() -> Path:
    return _instance()[0] / "postgres"


def redis_dir() -> Path:
    return _instance()[0] / "redis"


def _socket_dir() -> Path:
    path = _instance()[0] / "run"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)  # postgres runs as another Unix user
    return path


def pg_port() -> int:
    return _instance()[1]


def database_url(database: str = DB_NAME) -> str:
    return f"postgresql://{embedded.PG_USER}@/{database}?host={_socket_dir()}&port={pg_port()}"


def redis_url(db: int = 0) -> str:
    return f"unix://{_socket_dir() / 'redis.sock'}?db={db}"


def psql(sql: str, database: str = "postgres") -> str:
    """Run one statement with psql on the bench cluster and return its unaligned output."""
    cmd = [embedded.pg_bin("psql"), "-h", str(_socket_dir()), "-p", str(pg_port()), "-U", embedded.PG_USER,
           "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def start() -> None:
    """Start the bench cluster and Redis if they are not running (idempotent)."""
    sock_dir = _socket_dir()
    pgdata = pg_dir()
    if not embedded.postgres_running(pgdata):
        embedded.init_pgdata(pgdata, sock_dir, port=pg_port(), extra_conf=PG_EXTRA_CONF)
        embedded.pg_ctl(pgdata, "-w", "-l", str(pgdata / "server.log"), "start")
    if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"):
        psql(f'CREATE DATABASE "{DB_NAME}"')
    sock = sock_dir / "redis.sock"
    if embedded.pid_alive(redis_dir() / "redis.pid") and sock.exists():
        return
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    embedded.start_redis_server(redis_dir(), {"port": "0", "unixsocket": str(sock), "unixsocketperm": "700"})
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def stop() -> None:
    embedded.stop_postgres(pg_dir())
    pid_file = redis_dir() / "redis.pid"
    if embedded.pid_alive(pid_file):
        os.kill(int(pid_file.read_text().split()[0]), 15)


def postmaster_pid() -> int | None:
    from bench.harness.cpu import pid_from_file

    return pid_from_file(pg_dir() / "postmaster.pid")


def redis_pid() -> int | None:
    from bench.harness.cpu import pid_from_file

    return pid_from_file(redis_dir() / "redis.pid")


def env(**overrides: str) -> dict[str, str]:
    """Environment for a process of the app that must use the bench servers."""
    base = dict(os.environ)
    base.update({
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(0),
        "CELERY_BROKER_URL": redis_url(1).replace("unix://", "redis+socket://"),
        "CACHE_KEY_PREFIX": "bench",
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        "LOG_LEVEL": "WARNING",
        # Bench runs log in hundreds of users from one IP: the per-IP login limit would refuse them.
        "RATE_LIMIT_AUTH_IP": "1000000/minute",
        "RATE_LIMIT_AUTH_PHONE": "1000000/minute",
    })
    base.update(overrides)
    return base


def manage(*args: str, env_overrides: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``manage.py`` against the bench servers."""
    return subprocess.run([sys.executable, "manage.py", *args], cwd=embedded.BASE_DIR,
                          env=env(**(env_overrides or {})), check=check, capture_output=True, text=True)


def migrate() -> None:
    result = manage("migrate", "--no-input", check=False)
    if result.returncode != 0:
        raise RuntimeError(f"migrate on the bench database failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


if __name__ == "__main__":
    os.environ.setdefault("BENCH_INSTANCE", "harness")  # the harness's pair; BENCH_INSTANCE= for the shared one
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        start()
        migrate()
        print("bench postgres:", database_url())
        print("bench redis:   ", redis_url())
    elif command == "stop":
        stop()
    else:
        print("usage: python -m bench.harness.servers start|stop", file=sys.stderr)
        sys.exit(2)
