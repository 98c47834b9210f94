"""gunicorn settings for every environment; each can be overridden by environment variables."""

import multiprocessing
import os
import shutil

bind = os.environ.get("BIND", "127.0.0.1:8000")
# Sync workers: every request is short (cache or one indexed query).  2 x CPUs + 1 is
# gunicorn's rule of thumb; WEB_CONCURRENCY overrides it.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = 100
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Load the app after forking: every worker gets its own database pool and Redis connections.
preload_app = False

# A sync worker serves one request at a time, so a pool of 25-100 connections per
# process (the settings' defaults, meant for one multi-threaded server process) would keep
# 25 idle backends per worker and spread prepared statements over them: measured DB CPU
# per single-ping POST was 4.9 ms with 25 per worker against 0.4-0.6 ms with 2
# (docs/benchmarks/locations.md).  Unless set explicitly, size each worker's pool to its threads.
os.environ.setdefault("DB_POOL_MIN_SIZE", str(threads))
# Never below an explicit minimum (psycopg_pool refuses min > max, on the first query).
os.environ.setdefault("DB_POOL_MAX_SIZE", str(max(threads + 1, int(os.environ["DB_POOL_MIN_SIZE"]))))


# Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `manage.py serve`): /metrics
# aggregates the metric files of every worker.  The directory must start empty, and the
# files of a worker that exits must stop counting in "live" gauges.
def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and not os.environ.get("PROMETHEUS_MULTIPROC_CLEANED"):
        shutil.rmtree(directory, ignore_errors=True)
    if directory:
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Not imported at the top: workers inherit the master's modules, and prometheus_client
        # fixes its value class from the environment when it is first imported.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
