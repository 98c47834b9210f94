"""Serve the app: gunicorn, uvicorn for WebSockets, a Celery worker and beat, stopped together by Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


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
            "--ws", ws, "--ws-max-size", "65536", "--lifespan", "off", "--no-access-log"]


class Command(BaseCommand):
    help = "Run gunicorn, a Celery worker and Celery beat in the foreground until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: from CPUs)")
        parser.add_argument("--no-celery", action="store_true", help="serve HTTP only")
        parser.add_argument("--ws-bind", default=settings.WS_BIND, help="the WebSocket server (default: WS_BIND)")
        parser.add_argument("--no-ws", action="store_true", help="no WebSocket server")

    def handle(self, *args, bind, workers, no_celery, ws_bind, no_ws, **options):
        python = sys.executable
        env = dict(os.environ)
        env.update(prometheus_multiproc_env())
        gunicorn = [python, "-m", "gunicorn", "config.wsgi:application", "-c", "deploy/gunicorn.conf.py",
                    "--bind", bind]
        if workers:
            gunicorn += ["--workers", str(workers)]
        commands = {"web": gunicorn}
        if not no_ws:
            commands["ws"] = asgi_command(python, ws_bind)
        if not no_celery:
            commands["worker"] = [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
                                  "--concurrency", str(env.get("CELERY_CONCURRENCY", "2"))]
            commands["beat"] = [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                                "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME]
        # Celery's prefork children run one task at a time: a small pool each, unless set.
        celery_env = {"DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "2", **env}
        # The ASGI server queries from a few threads at a time (realtime/consumer.py).
        ws_env = {"DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "10", **env}
        process_env = {"web": env, "ws": ws_env}
        procs = {
            name: subprocess.Popen(cmd, env=process_env.get(name, celery_env), cwd=settings.BASE_DIR)
            for name, cmd in commands.items()
        }
        base = f"http://{bind}"
        self.stdout.write(self.style.SUCCESS(
            f"\nCrossings is up:\n  API docs  {base}/api/docs/\n  admin     {base}/admin/\n"
            f"  health    {base}/health/  (readiness: {base}/health/ready/)\n  metrics   {base}/metrics\n"
            f"  stats     {base}/admin/analytics/userstats/  (staff; API: {base}/api/v1/admin/stats/)\n"
            + ("" if no_ws else f"  websocket ws://{ws_bind}/ws/v1/  (docs/realtime.md)\n")
            + "Ctrl-C stops the web server, the WebSocket server, the worker and beat.\n"
        ))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
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
