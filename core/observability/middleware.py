"""Per-request context: a request id and the client's address (core.api.client_ip, so behind
NUM_PROXIES proxies) for logs and tasks, and the database router's scope; and the HTTP metrics
the dashboards and alerts read."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from timeit import default_timer

from django_prometheus import middleware as prometheus_middleware

from core.api.client_ip import client_ip
from core.db import router as db_router

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"})
_UNNAMED = "<unnamed view>"

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# The request being served, for the log filter's client address (worked out only when a record
# is logged, not for every request).
request_var: contextvars.ContextVar[object | None] = contextvars.ContextVar("request", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Gives every request an id (the client's ``X-Request-ID`` if sane) and a router scope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        request_token = request_var.set(request)
        try:
            # A request that changes data reads from the primary: its reads feed its writes
            # (a uniqueness check, a state transition), and a replica may be behind.
            with db_router.request_scope(primary_only=request.method not in SAFE_METHODS):
                response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            request_var.reset(request_token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` and ``client_ip`` to every log record (the current request's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs a response after the middleware is done: its record holds the request.
        request = getattr(record, "request", None)
        if not hasattr(record, "request_id"):
            record.request_id = getattr(request, "request_id", None) or request_id_var.get()
        if not hasattr(record, "client_ip"):
            if not hasattr(request, "META"):
                request = request_var.get()
            record.client_ip = (client_ip(request) if hasattr(request, "META") else None) or "-"
        return True


class HttpMetricsMiddleware:
    """The request metrics of the dashboards and alerts (docs/operations.md), first in ``MIDDLEWARE``.

    django-prometheus's metric objects (``django_prometheus.middleware.Metrics``), three of them:
    requests by view, transport and method; responses by status, view and method; latency by
    view and method (the whole middleware chain included).  django-prometheus's own pair of
    middleware updated thirteen series a request, each ``labels()`` lookup formatting its
    label values again; here the three children of a (view, method, status, transport) are
    looked up once per process and kept (a bounded set: views come from the URL conf).
    Exceptions a view raises are counted by type and view as django-prometheus counts them.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.metrics = prometheus_middleware.Metrics.get_instance()
        self._children: dict[tuple, tuple] = {}

    def __call__(self, request):
        started = default_timer()
        response = self.get_response(request)
        elapsed = default_timer() - started
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else None) or _UNNAMED
        method = request.method if request.method in _METHODS else "<invalid method>"
        key = (view, method, response.status_code, request.is_secure())
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._labels(*key)
        children[0].inc()
        children[1].inc()
        children[2].observe(elapsed)
        return response

    def _labels(self, view: str, method: str, status: int, secure: bool) -> tuple:
        m = self.metrics
        return (m.requests_by_view_transport_method.labels(view=view, transport="https" if secure else "http",
                                                           method=method),
                m.responses_by_status_view_method.labels(status=str(status), view=view, method=method),
                m.requests_latency_by_view_method.labels(view=view, method=method))

    def process_exception(self, request, exception):
        self.metrics.exceptions_by_type.labels(type=type(exception).__name__).inc()
        match = getattr(request, "resolver_match", None)
        self.metrics.exceptions_by_view.labels(view=(match.view_name if match is not None else None)
                                               or _UNNAMED).inc()
