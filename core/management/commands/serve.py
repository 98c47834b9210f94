"""Serve the app: gunicorn, uvicorn for WebSockets, a Celery worker and beat, stopped together by Ctrl-C."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core import demo_logins

READY_TIMEOUT_S = 180  # a loaded machine's first start; the servers keep running after it


def prometheus_multiproc_env() -> dict[str, str]:
    """Metrics of every gunicorn and Celery process, aggregated by /metrics (core/observability/metrics.py).

    The directory is emptied here, before any process starts, so that counters of a previous
    run do not add up with this one's; gunicorn's ``child_exit`` hook drops dead workers' gauges.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(settings.DATA_DIR / "prometheus")
    path = Path(directory)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(path), "PROMETHEUS_MULTIPROC_CLEANED": "1"}


def asgi_command(python: str, bind: str, ws: str = "websockets-sansio") -> list[str]:
    """uvicorn serving config.asgi on ``host:port`` (docs/realtime.md: why uvicorn and this protocol)."""
    host, _, port = bind.rpartition(":")
    return [python, "-m", "uvicorn", "config.asgi:application", "--host", host or "127.0.0.1", "--port", port,
            "--ws", ws, "--ws-max-size", "65536", "--lifespan", "off", "--no-access-log",
            # permessage-deflate's zlib state is ~46 KB per idle socket (docs/realtime.md): off unless asked for.
            "--ws-per-message-deflate", os.environ.get("UVICORN_WS_PER_MESSAGE_DEFLATE", "false")]


def serves_media_itself() -> bool:
    """Uploaded media come from MEDIA_ROOT through this server (core/media_files.py) unless a CDN
    or another storage serves them (MEDIA_CDN_URL, MEDIA_STORAGE_BACKEND)."""
    storage = settings.STORAGES["default"]["BACKEND"]
    return not settings.MEDIA_CDN_URL and storage == "django.core.files.storage.FileSystemStorage"


def local_url(bind: str) -> str:
    """The URL of ``host:port`` from this machine (a wildcard bind answers on loopback)."""
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def wait_until_ready(url: str, procs: dict[str, subprocess.Popen], timeout: float = READY_TIMEOUT_S,
                     stop=lambda: False) -> bool:
    """Poll ``url`` until it answers 200; False if a process exits, ``stop()`` or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop():
        if any(proc.poll() is not None for proc in procs.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http:// URL
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


def _children(pid: int) -> int | None:
    try:
        return len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:  # not Linux
        return None


def add_workers(master: subprocess.Popen, target: int) -> None:
    """Grow gunicorn from one worker to ``target``: one SIGTTIN per worker, each after the last
    one was forked (the kernel merges a signal sent again before it is handled)."""
    for count in range(2, target + 1):
        master.send_signal(signal.SIGTTIN)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and master.poll() is None:
            children = _children(master.pid)
            if children is None:
                time.sleep(0.5)  # no way to look: give the master time to handle it
                break
            if children >= count:
                break
            time.sleep(0.05)


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and Celery beat in the foreground until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1:8000"),
                            help="host:port of the REST API (default: BIND, else 127.0.0.1:8000)")
        parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: from CPUs)")
        parser.add_argument("--no-celery", action="store_true", help="serve HTTP only")
        parser.add_argument("--ws-bind", default=settings.WS_BIND, help="the WebSocket server (default: WS_BIND)")
        parser.add_argument("--no-ws", action="store_true", help="no WebSocket server")

    def handle(self, *args, bind, workers, no_celery, ws_bind, no_ws, **options):
        for option, value in (("--bind", bind), ("--ws-bind", ws_bind)):
            host, _, port = value.rpartition(":")
            if not (host and port.isdigit() and 0 < int(port) < 65536):
                raise CommandError(f"{option} must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:8000 "
                                   f"(got {value!r}).")
        if workers is not None and not 1 <= workers <= 64:
            raise CommandError(f"--workers must be between 1 and 64 (got {workers}).")
        started = time.monotonic()
        python = sys.executable
        env = dict(os.environ)
        env.update(prometheus_multiproc_env())
        app = "core.media_files:application_with_media()" if serves_media_itself() else "config.wsgi:application"
        # One worker first, the rest (deploy/gunicorn.conf.py's count unless --workers) added by
        # SIGTTIN once it answers: the first answer waits for one Django import, not for all.
        target = workers or int(env.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
        gunicorn = [python, "-m", "gunicorn", app, "-c", "deploy/gunicorn.conf.py", "--bind", bind, "--workers", "1"]
        commands = {"web": gunicorn}
        if not no_ws:
            commands["ws"] = asgi_command(python, ws_bind)
        if not no_celery:
            # --quiet: no banner over the URLs and logins printed below.
            commands["worker"] = [python, "-m", "celery", "-A", "config", "--quiet", "worker", "--loglevel", "INFO",
                                  "--concurrency", str(env.get("CELERY_CONCURRENCY", "2"))]
            commands["beat"] = [python, "-m", "celery", "-A", "config", "--quiet", "beat", "--loglevel", "INFO",
                                "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME]
        # Celery's prefork children run one task at a time: a small pool each, unless set.
        celery_env = {"DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "2", **env}
        # The ASGI server queries from a few threads at a time (realtime/consumer.py).
        ws_env = {"DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "10", **env}
        process_env = {"web": env, "ws": ws_env}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

        def start(name: str) -> subprocess.Popen:
            return subprocess.Popen(commands[name], env=process_env.get(name, celery_env), cwd=settings.BASE_DIR)

        # The web server first, alone: on a small machine every process importing Django at once
        # would delay the first answer by the sum of them.  The others start once it answers.
        procs = {"web": start("web")}
        base = local_url(bind)
        if not wait_until_ready(f"{base}/health/", procs, stop=lambda: stopping):
            self.stderr.write(f"The web server did not answer {base}/health/; see the lines above.")
        if not stopping and procs["web"].poll() is None:
            add_workers(procs["web"], target)
            procs.update((name, start(name)) for name in commands if name != "web")
        self.stdout.write(self.style.SUCCESS(
            f"\nCrossings is ready ({time.monotonic() - started:.0f} s):\n  API docs  {base}/api/docs/\n"
            f"  admin     {base}/admin/\n"
            f"  health    {base}/health/  (readiness: {base}/health/ready/)\n  metrics   {base}/metrics\n"
            f"  stats     {base}/admin/analytics/userstats/  (staff; API: {base}/api/v1/admin/stats/)\n"
            + ("" if no_ws else f"  websocket ws://{ws_bind}/ws/v1/  (docs/realtime.md)\n")
            + (f"  media     {base}{settings.MEDIA_URL}  (uploads, from {settings.MEDIA_ROOT})\n"
               if serves_media_itself() else "")
        ))
        if settings.DEMO_STAFF_ENABLED:
            lines = demo_logins.login_lines(base)
            connections.close_all()  # this process only waits from here on
            if lines:
                self.stdout.write("Log in (demo data, development only):\n" + "\n".join(lines))
        self.stdout.write("Ctrl-C stops the web server, the WebSocket server, the worker and beat.")
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping the rest")
                        stopping = True
                time.sleep(0.5)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            for proc in procs.values():
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
