"""The production shape on one machine, on loopback (``make cluster``, tests/cluster).

PostgreSQL primary + 2 replicas, Redis Cluster 3+3 + broker, nginx over 3 gunicorn (REST) and
2 uvicorn (WebSockets, ``/ws/``), Celery.
``Topology`` serves deploy/cluster/cluster.py, the integration tests and the cluster benchmarks;
the picture and how it runs: docs/cluster.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devtools import embedded

BASE_DIR = Path(__file__).resolve().parent.parent.parent
NGINX_TEMPLATE = BASE_DIR / "deploy" / "nginx" / "crossings.conf.template"

# Settings of every server of the loopback cluster (deploy/postgresql/*.conf hold the
# production equivalents).  Smaller buffers than the embedded dev server: three run at once.
PG_CLUSTER_CONF = """
# --- crossings loopback cluster (deploy/cluster/topology.py) ---
listen_addresses = '127.0.0.1'
port = {port}
shared_buffers = 128MB
max_connections = 300
hot_standby = on
hot_standby_feedback = on
wal_keep_size = 512MB
max_standby_streaming_delay = 5s
wal_receiver_status_interval = 1s
log_line_prefix = '%m [%p] %d '
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_redis_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        if _port_free(port) and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def _wait(check, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: S110 - not up yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _kill(pid: int | None, sig: int = signal.SIGTERM) -> None:
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of ours is dead too
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


@dataclass
class Topology:
    """Ports and state directory of one loopback cluster; methods start and stop its parts."""

    root: Path
    pg_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    redis_ports: list[int] = field(default_factory=lambda: [free_redis_port() for _ in range(6)])
    broker_port: int = field(default_factory=free_port)
    app_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    ws_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(2)])
    nginx_port: int = field(default_factory=free_port)
    workers_per_app: int = 2
    log_statements: bool = False  # tests count queries per server in the server logs
    wsgi_app: str = "config.wsgi:application"
    extra_env: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------------ addresses

    def pg_url(self, index: int = 0, database: str = embedded.DB_NAME) -> str:
        return f"postgresql://{embedded.PG_USER}@127.0.0.1:{self.pg_ports[index]}/{database}"

    @property
    def replica_urls(self) -> list[str]:
        return [self.pg_url(i) for i in range(1, len(self.pg_ports))]

    @property
    def redis_cluster_urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{port}" for port in self.redis_ports]

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.broker_port}/0"

    @property
    def nginx_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def pgdata(self, index: int) -> Path:
        return self.root / f"pg{index}"

    def redis_dir(self, port: int) -> Path:
        return self.root / f"redis-{port}"

    def app_env(self) -> dict[str, str]:
        """The environment that points the app at this cluster (README: scale-out variables)."""
        env = dict(os.environ)
        for name in ("DJANGO_ENV", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER"):
            env.pop(name, None)
        env.update({
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "DATABASE_URL": self.pg_url(0),
            "DATABASE_REPLICA_URLS": ",".join(self.replica_urls),
            "REDIS_CLUSTER_URLS": ",".join(self.redis_cluster_urls),
            "REDIS_URL": self.broker_url,
            "CELERY_BROKER_URL": self.broker_url,
            "CROSSINGS_DATA_DIR": str(self.root / "app"),
            "SECRET_KEY": self._secret(),
            "DB_POOL_MIN_SIZE": "2",
            "DB_POOL_MAX_SIZE": "20",
            "WEB_CONCURRENCY": str(self.workers_per_app),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(BASE_DIR),
            # nginx is the one proxy in front: the client is the last X-Forwarded-For address.
            "NUM_PROXIES": "1",
        })
        env.update(self.extra_env)
        return env

    def _secret(self) -> str:
        path = self.root / "secret_key"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()

    # ----------------------------------------------------------------------- PostgreSQL

    def _pg_conf(self, port: int) -> str:
        conf = PG_CLUSTER_CONF.format(port=port)
        if self.log_statements:
            conf += "log_statement = 'all'\nlog_min_duration_statement = -1\n"
        return conf

    def start_postgres(self) -> None:
        """A primary, then each replica cloned from it with ``pg_basebackup -R`` (streaming)."""
        socket_dir = self._socket_dir()
        primary = self.pgdata(0)
        if not (primary / "PG_VERSION").exists():
            embedded.init_pgdata(primary, socket_dir, self.pg_ports[0], extra_conf=self._pg_conf(self.pg_ports[0]))
        self._pg_start(0)
        self._psql(0, f'CREATE DATABASE "{embedded.DB_NAME}"', check=False)
        for index in range(1, len(self.pg_ports)):
            pgdata = self.pgdata(index)
            if not (pgdata / "PG_VERSION").exists():
                self._basebackup(index)
            self._pg_start(index)
        for index in range(1, len(self.pg_ports)):
            _wait(lambda i=index: self._psql(0, "SELECT count(*) FROM pg_stat_replication"
                                               f" WHERE application_name = 'replica{i}'"
                                               " AND state = 'streaming'").strip() == "1",
                  30, f"replica {index} streaming")

    def _socket_dir(self) -> Path:
        path = Path("/tmp") / f"crossings-cluster-{self.pg_ports[0]}"  # noqa: S108 - short for sun_path
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        return path

    def _basebackup(self, index: int) -> None:
        pgdata = self.pgdata(index)
        if pgdata.exists():
            shutil.rmtree(pgdata)
        pgdata.mkdir(parents=True)
        pgdata.chmod(0o700)
        if os.geteuid() == 0:
            embedded.prepare_root_permissions(pgdata)
        slot = f"replica{index}"
        self._psql(0, f"SELECT pg_create_physical_replication_slot('{slot}')", check=False)
        embedded.run_as_pg_user([
            embedded.pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.pg_ports[0]),
            "-U", embedded.PG_USER, "-D", str(pgdata), "-R", "-X", "stream", "-c", "fast", "-S", slot,
        ], timeout=120)
        with open(pgdata / "postgresql.conf", "a") as fh:
            fh.write(f"\n# --- replica {index} ---\nport = {self.pg_ports[index]}\n")
        with open(pgdata / "postgresql.auto.conf", "a") as fh:  # name it in pg_stat_replication
            fh.write(f"primary_conninfo = 'host=127.0.0.1 port={self.pg_ports[0]} user={embedded.PG_USER}"
                     f" application_name={slot}'\nprimary_slot_name = '{slot}'\n")

    def _pg_start(self, index: int) -> None:
        pgdata = self.pgdata(index)
        if embedded.postgres_running(pgdata):
            return
        with contextlib.suppress(FileNotFoundError):
            (pgdata / "postmaster.pid").unlink()  # left by a killed server
        embedded.pg_ctl(pgdata, "-w", "-t", "60", "-l", str(pgdata / "server.log"), "start")

    def start_pg(self, index: int) -> None:
        """Start one server again (the tests stop and restart replicas)."""
        self._pg_start(index)

    def stop_pg(self, index: int, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            embedded.pg_ctl(self.pgdata(index), "-w", "-m", mode, "stop")

    def _psql(self, index: int, sql: str, check: bool = True, database: str = "postgres") -> str:
        result = subprocess.run(
            [embedded.pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.pg_ports[index]), "-U",
             embedded.PG_USER, "-d", database, "-tAc", sql],
            capture_output=True, text=True, timeout=30,
        )
        if check and result.returncode:
            raise RuntimeError(f"psql on server {index} failed: {result.stderr}")
        return result.stdout

    def sql(self, index: int, sql: str, database: str = embedded.DB_NAME) -> str:
        return self._psql(index, sql, database=database).strip()

    # -------------------------------------------------------------------------- Redis

    def start_redis(self) -> None:
        """Six cluster nodes (3 masters + 3 replicas, ``redis-cli --cluster create``) and the broker."""
        for port in self.redis_ports:
            self.start_redis_node(port)
        self.create_cluster()
        embedded.start_redis_server(self.root / "broker", {"port": str(self.broker_port), "bind": "127.0.0.1"})
        _wait(lambda: self._redis_cli(self.broker_port, "PING").strip() == "PONG", 10, "broker Redis")

    def start_redis_node(self, port: int) -> None:
        directory = self.redis_dir(port)
        embedded.start_redis_server(directory, {
            "port": str(port), "bind": "127.0.0.1",
            "cluster-enabled": "yes", "cluster-config-file": str(directory / "nodes.conf"),
            # Failover within about a second; any replica may take over (loopback, no partitions).
            "cluster-node-timeout": "1000", "cluster-replica-validity-factor": "0",
            "appendonly": "yes", "appendfsync": "everysec",
        })
        _wait(lambda: self._redis_cli(port, "PING").strip() == "PONG", 10, f"Redis on {port}")

    def create_cluster(self) -> None:
        info = self._redis_cli(self.redis_ports[0], "CLUSTER", "INFO")
        if "cluster_known_nodes:1\r" not in info and "cluster_known_nodes:1\n" not in info:
            # Restarted from its nodes.conf: the nodes find each other again; no create.
            for port in self.redis_ports:
                _wait(lambda p=port: "cluster_state:ok" in self._redis_cli(p, "CLUSTER", "INFO"), 30,
                      f"cluster state ok on {port}")
            return
        subprocess.run(
            [self._redis_cli_binary(), "--cluster", "create",
             *[f"127.0.0.1:{port}" for port in self.redis_ports], "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, text=True, timeout=60,
        )
        for port in self.redis_ports:
            _wait(lambda p=port: "cluster_state:ok" in self._redis_cli(p, "CLUSTER", "INFO"), 30,
                  f"cluster state ok on {port}")

    @staticmethod
    def _redis_cli_binary() -> str:
        server = Path(embedded.redis_server_binary())
        shipped = server.with_name("redis-cli")
        return str(shipped) if shipped.exists() else (shutil.which("redis-cli") or "redis-cli")

    def _redis_cli(self, port: int, *args: str) -> str:
        return subprocess.run([self._redis_cli_binary(), "-h", "127.0.0.1", "-p", str(port), *args],
                              capture_output=True, text=True, timeout=10).stdout

    def redis_masters(self) -> list[int]:
        """Ports of the nodes that are masters now (they change after a failover)."""
        return self._nodes_with_role("master")

    def redis_replicas(self) -> list[int]:
        return self._nodes_with_role("slave")

    def _nodes_with_role(self, role: str) -> list[int]:
        listing = ""
        for port in self.redis_ports:  # any node that answers
            listing = self._redis_cli(port, "CLUSTER", "NODES")
            if listing.strip():
                break
        masters = []
        for line in listing.splitlines():
            parts = line.split()
            if len(parts) > 2 and role in parts[2].split(",") and "fail" not in parts[2]:
                masters.append(int(parts[1].split("@")[0].rsplit(":", 1)[1]))
        return masters

    def redis_pid(self, port: int) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.redis_dir(port) / "redis.pid").read_text().split()[0])
        return None

    def stop_redis(self) -> None:
        for port in [*self.redis_ports, self.broker_port]:
            directory = self.root / "broker" if port == self.broker_port else self.redis_dir(port)
            with contextlib.suppress(OSError, ValueError):
                _kill(int((directory / "redis.pid").read_text().split()[0]))

    # ----------------------------------------------------------------- app, nginx, celery

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> int:
        log = open(self.root / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, cwd=BASE_DIR, env=env or self.app_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.pids[name] = proc.pid
        self.save()
        return proc.pid

    def migrate(self) -> None:
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=BASE_DIR,
                                env=self.app_env(), capture_output=True, text=True, timeout=300)
        if result.returncode:
            raise RuntimeError(f"migrate failed:\n{result.stdout}\n{result.stderr[-3000:]}")

    def start_app(self, index: int) -> None:
        port = self.app_ports[index]
        self._spawn(f"app{index + 1}", [
            sys.executable, "-m", "gunicorn", self.wsgi_app,
            "-c", str(BASE_DIR / "deploy" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
            "--workers", str(self.workers_per_app),
            # One control socket per instance (gunicorn's default path is shared per Unix user).
            "--control-socket", str(self.root / f"app{index + 1}.ctl"),
        ])

    def wait_app(self, index: int, timeout: float = 60) -> None:
        url = f"http://127.0.0.1:{self.app_ports[index]}/health/"
        _wait(lambda: urllib.request.urlopen(url, timeout=2).status == 200, timeout, f"app {index + 1}")

    def start_apps(self) -> None:
        for index in range(len(self.app_ports)):
            self.start_app(index)
        for index in range(len(self.app_ports)):
            self.wait_app(index)

    def stop_app(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Stop an app instance: its gunicorn master and workers (SIGKILL: a crashed host)."""
        pid = self.pids.get(f"app{index + 1}")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)

    def start_ws(self, index: int) -> None:
        """One ASGI (uvicorn) instance: the project's WebSocket server, as ``manage.py serve`` runs it.

        Its pub/sub and socket slots use the single broker Redis (REALTIME_REDIS_URL; why not
        the Redis Cluster: docs/realtime.md, "Which Redis")."""
        from core.management.commands.serve import asgi_command

        env = {**self.app_env(), "DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "10",
               "REALTIME_REDIS_URL": self.broker_url,
               # No permessage-deflate: its zlib state is ~46 KB per socket (docs/realtime.md).
               "UVICORN_WS_PER_MESSAGE_DEFLATE": "false"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # present at all (even empty) turns multiprocess mode on
        self._spawn(f"ws{index + 1}", asgi_command(sys.executable, f"127.0.0.1:{self.ws_ports[index]}"), env=env)

    def wait_ws(self, index: int, timeout: float = 60) -> None:
        def listening():
            with socket.create_connection(("127.0.0.1", self.ws_ports[index]), timeout=1):
                return True

        _wait(listening, timeout, f"ASGI instance {index + 1}")

    def start_wss(self) -> None:
        for index in range(len(self.ws_ports)):
            self.start_ws(index)
        for index in range(len(self.ws_ports)):
            self.wait_ws(index)

    def stop_ws(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Stop an ASGI instance (SIGKILL: a crashed host; its sockets drop without a close frame)."""
        pid = self.pids.get(f"ws{index + 1}")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + 15
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def nginx_conf(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in self.app_ports
        )
        ws_servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in self.ws_ports
        )
        nginx_dir = self.root / "nginx"
        text = NGINX_TEMPLATE.read_text()
        for name, value in {"SERVERS": servers, "WS_SERVERS": ws_servers, "LISTEN": f"127.0.0.1:{self.nginx_port}",
                            "STATE": nginx_dir,
                            "STATIC_ROOT": BASE_DIR / "staticfiles", "MEDIA_ROOT": self.root / "app" / "media"}.items():
            text = text.replace(f"@@{name}@@", str(value))
        return text

    def start_nginx(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise RuntimeError(
                "nginx is not installed: on Debian/Ubuntu run `sudo apt-get update && "
                "sudo apt-get install -y nginx-light` (or nginx), then run this again"
            )
        nginx_dir = self.root / "nginx"
        nginx_dir.mkdir(parents=True, exist_ok=True)
        conf = nginx_dir / "nginx.conf"
        conf.write_text(self.nginx_conf())
        self._spawn("nginx", [nginx, "-p", str(nginx_dir), "-c", str(conf), "-g", "daemon off;"], env=dict(os.environ))

        def ready():
            with socket.create_connection(("127.0.0.1", self.nginx_port), timeout=1):
                return True

        _wait(ready, 15, "nginx")

    def start_celery(self) -> None:
        self._spawn("worker", [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING",
                               "--concurrency", "2", "--hostname", f"worker-{self.nginx_port}@%h"])
        self._spawn("beat", [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
                             "--schedule", str(self.root / "celerybeat-schedule")])

    # ------------------------------------------------------------------------- whole

    def start(self, celery: bool = True) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.save()
        self.start_postgres()
        self.start_redis()
        self.migrate()
        self.start_apps()
        self.start_wss()
        self.start_nginx()
        if celery:
            self.start_celery()

    def stop(self) -> None:
        for name in ["nginx", "beat", "worker", *[f"app{i + 1}" for i in range(len(self.app_ports))],
                     *[f"ws{i + 1}" for i in range(len(self.ws_ports))]]:
            pid = self.pids.get(name)
            if pid and alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
        for name in list(self.pids):
            pid = self.pids[name]
            deadline = time.monotonic() + 15
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        self.stop_redis()
        for index in reversed(range(len(self.pg_ports))):
            if embedded.postgres_running(self.pgdata(index)):
                self.stop_pg(index, "fast")
        self.pids.clear()
        self.save()
        shutil.rmtree(Path("/tmp") / f"crossings-cluster-{self.pg_ports[0]}", ignore_errors=True)  # noqa: S108

    def save(self) -> None:
        data = asdict(self)
        data["root"] = str(self.root)
        (self.root / "topology.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, root: Path) -> Topology | None:
        path = root / "topology.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["root"] = Path(data["root"])
        return cls(**data)

    def describe(self) -> str:
        replicas = ", ".join(f"127.0.0.1:{p}" for p in self.pg_ports[1:])
        apps = ", ".join(f"127.0.0.1:{p}" for p in self.app_ports)
        wss = ", ".join(f"127.0.0.1:{p}" for p in self.ws_ports)
        return f"""Crossings scale-out topology (state in {self.root})

                         clients
                            |
                 nginx  {self.nginx_url}   (least_conn, max_fails=1, fail_timeout=5s)
                 /          |          \\
   gunicorn x3: {apps}
   uvicorn x2 (WebSockets, {self.nginx_url.replace("http", "ws")}/ws/v1/): {wss}
        |  writes, read-your-writes      |  reads
        v                                v
   PostgreSQL primary 127.0.0.1:{self.pg_ports[0]} ==streaming==> replicas {replicas}
   Redis Cluster (cache, 3 masters + 3 replicas): {", ".join(str(p) for p in self.redis_ports)}
   Redis (Celery broker; WebSocket pub/sub and socket slots): {self.broker_url}     Celery worker + beat

Point the app (or a shell) at it with:
  DATABASE_URL={self.pg_url(0)}
  DATABASE_REPLICA_URLS={",".join(self.replica_urls)}
  REDIS_CLUSTER_URLS={",".join(self.redis_cluster_urls)}
  CELERY_BROKER_URL={self.broker_url}  REDIS_URL={self.broker_url}
"""
