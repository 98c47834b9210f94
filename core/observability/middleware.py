"""Per-request context: a request id for logs and tasks, and the database router's scope."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

from core.db import router as db_router

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
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
        try:
            # A request that changes data reads from the primary: its reads feed its writes
            # (a uniqueness check, a state transition), and a replica may be behind.
            with db_router.request_scope(primary_only=request.method not in SAFE_METHODS):
                response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record (the current request's, or a task's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True
