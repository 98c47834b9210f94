"""Requests measured inside one process: Django's WSGI handler called directly (no HTTP server,
no client), thread CPU time per request, two code paths in alternating batches (medians), so a
noisy machine slows both alike.  Used by bench/scenarios/api_middleware.py, chat_paths.py,
ping_me_paths.py and endpoint_profile.py; how to read them: docs/benchmarks/performance.md.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable

from bench.harness import servers


def django_on_bench(**env: str) -> None:
    """Start the harness's bench PostgreSQL/Redis, migrate, and set Django up on them (rate limits
    out of the way; ``env`` adds settings)."""
    os.environ.setdefault("BENCH_INSTANCE", "harness")
    servers.start()
    servers.migrate()
    os.environ.update(servers.env(RATE_LIMIT_USER="100000000/minute", **env))
    import django

    django.setup()


def chatting_users(user_agent: str, count: int = 50) -> tuple[list, list[str]]:
    """``count`` accepted connections of the seeded data set and an access token of each one's
    lower user (after ``django_on_bench``)."""
    from accounts import services
    from connections.models import Connection, ConnectionStatus

    conns = list(Connection.objects.filter(status=ConnectionStatus.ACCEPTED).select_related("user_low")[:count])
    if not conns:
        raise SystemExit("the bench database has no connections: run `make bench-closed` (it seeds) first")
    return conns, [services.open_session(c.user_low, user_agent=user_agent, ip="127.0.0.1")[1] for c in conns]


def wsgi_environ(method: str, path: str, token: str, body: bytes = b"") -> dict:
    """A WSGI request as gunicorn would pass it (gzip accepted, JSON body, bearer token)."""
    query = ""
    if "?" in path:
        path, query = path.split("?", 1)
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "HTTP_ACCEPT_ENCODING": "gzip",
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def start_response(status, headers, exc_info=None):
    """A measured request must succeed: anything but 200/201 stops the run."""
    if not status.startswith(("200", "201")):
        raise RuntimeError(f"unexpected {status}")


def thread_ms(handler, environs: list[dict]) -> float:
    """Thread CPU ms per request of ``handler`` over ``environs`` (built before the clock starts)."""
    t0 = time.thread_time()
    for environ in environs:
        response = handler(environ, start_response)
        b"".join(response)
        response.close()
    return (time.thread_time() - t0) / len(environs) * 1000


def alternate(first: Callable[[], float], second: Callable[[], float], batches: int) -> tuple[float, float]:
    """Each callable measures one batch (ms per request); run them in turn ``batches`` times after
    one warm-up each; the two medians."""
    first()
    second()
    a, b = [], []
    for _ in range(batches):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)
