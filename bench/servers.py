"""Dedicated PostgreSQL and Redis servers for benchmarks, under ``.data/bench/``.

The development servers are shared with every engineer's test runs, so their CPU time says
nothing about one benchmark.  The benchmark gets its own cluster (port 5433's socket) and
its own redis-server; every CPU second they use is the benchmark's.  The same helpers of
config/embedded.py make them, with a smaller shared_buffers.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from config import embedded

BENCH_DIR = embedded.DATA_DIR / "bench"
PG_DIR = BENCH_DIR / "postgres"
REDIS_DIR = BENCH_DIR / "redis"
SOCKET_DIR = BENCH_DIR / "run"
PG_PORT = 5433
DB_NAME = "crossings_bench"
PG_EXTRA_CONF = "shared_buffers = 256MB\nmax_connections = 500\n"


def _socket_dir() -> Path:
    SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    SOCKET_DIR.chmod(0o777)  # postgres runs as another Unix user
    return SOCKET_DIR


def database_url(database: str = DB_NAME) -> str:
    return f"postgresql://{embedded.PG_USER}@/{database}?host={_socket_dir()}&port={PG_PORT}"


def redis_url(db: int = 0) -> str:
    return f"unix://{_socket_dir() / 'redis.sock'}?db={db}"


def psql(sql: str, database: str = "postgres") -> str:
    """Run one statement with psql on the bench cluster and return its unaligned output."""
    cmd = [embedded._pg_bin("psql"), "-h", str(_socket_dir()), "-p", str(PG_PORT), "-U", embedded.PG_USER,
           "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def start() -> None:
    """Start the bench cluster and Redis if they are not running (idempotent)."""
    sock_dir = _socket_dir()
    if not embedded.postgres_running(PG_DIR):
        embedded.init_pgdata(PG_DIR, sock_dir, port=PG_PORT, extra_conf=PG_EXTRA_CONF)
        embedded.pg_ctl(PG_DIR, "-w", "-l", str(PG_DIR / "server.log"), "start")
    if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"):
        psql(f'CREATE DATABASE "{DB_NAME}"')
    sock = sock_dir / "redis.sock"
    if embedded._pid_alive(REDIS_DIR / "redis.pid") and sock.exists():
        return
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    embedded.start_redis_server(REDIS_DIR, {"port": "0", "unixsocket": str(sock), "unixsocketperm": "700"})
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def stop() -> None:
    embedded.stop_postgres(PG_DIR)
    pid_file = REDIS_DIR / "redis.pid"
    if embedded._pid_alive(pid_file):
        os.kill(int(pid_file.read_text().split()[0]), 15)


def postmaster_pid() -> int | None:
    from bench.cpu import pid_from_file

    return pid_from_file(PG_DIR / "postmaster.pid")


def redis_pid() -> int | None:
    from bench.cpu import pid_from_file

    return pid_from_file(REDIS_DIR / "redis.pid")


def env(**overrides: str) -> dict[str, str]:
    """Environment for a process of the app that must use the bench servers."""
    base = dict(os.environ)
    base.update({
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(0),
        "CELERY_BROKER_URL": redis_url(1).replace("unix://", "redis+socket://"),
        "CACHE_KEY_PREFIX": "bench",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        # Bench runs log in hundreds of users from one IP: the per-IP login limit would refuse them.
        "RATE_LIMIT_AUTH_IP": "1000000/minute",
        "RATE_LIMIT_AUTH_PHONE": "1000000/minute",
    })
    base.pop("CROSSINGS_TESTING", None)
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
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        start()
        migrate()
        print("bench postgres:", database_url())
        print("bench redis:   ", redis_url())
    elif command == "stop":
        stop()
    else:
        print("usage: python -m bench.servers start|stop", file=sys.stderr)
        sys.exit(2)
