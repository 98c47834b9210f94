"""Per-request context: a request id and the client's address (core.api.client_ip, so behind
NUM_PROXIES proxies) for logs and tasks, and the database router's scope."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

from django_prometheus import middleware as prometheus_middleware

from core.api.client_ip import client_ip
from core.db import router as db_router

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
client_ip_var: contextvars.ContextVar[str] = contextvars.ContextVar("client_ip", default="-")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContextMiddleware:
    """Gives every request an id (the client's ``X-Request-ID`` if sane) and a router scope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        ip_token = client_ip_var.set(client_ip(request) or "-")
        try:
            # A request that changes data reads from the primary: its reads feed its writes
            # (a uniqueness check, a state transition), and a replica may be behind.
            with db_router.request_scope(primary_only=request.method not in SAFE_METHODS):
                response = self.get_response(request)
        finally:
            request_id_var.reset(token)
            client_ip_var.reset(ip_token)
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
            record.client_ip = (client_ip(request) if hasattr(request, "META") else None) or client_ip_var.get()
        return True


class PrometheusAfterMiddleware(prometheus_middleware.PrometheusAfterMiddleware):
    """django-prometheus's, except that a malformed ``Content-Length`` (the client's error, which
    Django itself reads as an empty body) is observed as 0 bytes instead of raising a 500."""

    def process_request(self, request):
        raw = request.headers.get("content-length")
        try:
            int(raw or 0)
        except ValueError:
            headers = request.headers
            request.headers = _HeadersWithoutLength(headers)  # for the parent's metric only
            try:
                return super().process_request(request)
            finally:
                request.headers = headers
        return super().process_request(request)


class _HeadersWithoutLength(dict):
    def __init__(self, headers):
        super().__init__((k, v) for k, v in headers.items() if k.lower() != "content-length")

    def get(self, key, default=None):
        return next((v for k, v in self.items() if k.lower() == key.lower()), default)
