"""PostgreSQL (psycopg 3) with django-prometheus's database metrics, at a lower cost per request.

django-prometheus's engine records connections, statements, errors and statement time by alias.
It does that by building a new cursor class every time Django asks for the connection's
parameters, which Django does on every connect: with a connection pool that is every request
that touches the database, although a pooled connection keeps the cursor class it was opened
with.  And it looks the metrics' label children up again on every statement.  This engine keeps
the same metric objects and names (so the dashboards and alerts read them unchanged), builds
one cursor class per alias and cursor base, and binds the label children once.

Measured side by side in one process (``python -m bench.scenarios.db_metrics_cost``); figures in
docs/benchmarks/performance.md ("The database engine").
"""

from __future__ import annotations

from time import perf_counter

from django.db.backends.postgresql import base
from django_prometheus.db import (
    connection_errors_total,
    connections_total,
    errors_total,
    execute_many_total,
    execute_total,
    query_duration_seconds,
)

_CURSOR_CLASSES: dict[tuple[type, str, str], type] = {}


def instrumented(cursor_class: type, alias: str, vendor: str) -> type:
    """``cursor_class`` counting and timing its statements under ``alias`` (one class per key)."""
    key = (cursor_class, alias, vendor)
    cls = _CURSOR_CLASSES.get(key)
    if cls is None:
        cls = _CURSOR_CLASSES.setdefault(key, _build(cursor_class, alias, vendor))
    return cls


def _build(cursor_class: type, alias: str, vendor: str) -> type:
    executes = execute_total.labels(alias, vendor)
    batches = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    def failed(exc: BaseException) -> None:  # as django-prometheus: by the exception's type name
        errors_total.labels(alias, vendor, type(exc).__name__).inc()

    class CursorWrapper(cursor_class):
        """Counts and times its statements (django-prometheus's metrics)."""

        def execute(self, *args, **kwargs):
            executes.inc()
            start = perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except BaseException as exc:
                failed(exc)
                raise
            finally:
                duration.observe(perf_counter() - start)

        def executemany(self, query, param_list, *args, **kwargs):
            executes.inc(len(param_list))
            batches.inc(len(param_list))
            start = perf_counter()
            try:
                return super().executemany(query, param_list, *args, **kwargs)
            except BaseException as exc:
                failed(exc)
                raise
            finally:
                duration.observe(perf_counter() - start)

    CursorWrapper.__qualname__ = f"CursorWrapper[{alias}]"
    return CursorWrapper


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # With a pool Django connects on every request that uses the database: counted by
        # label children bound once per wrapper (one wrapper per alias and thread).
        self._connects = connections_total.labels(self.alias, self.vendor)
        self._connect_errors = connection_errors_total.labels(self.alias, self.vendor)

    def get_connection_params(self):
        params = super().get_connection_params()
        params["cursor_factory"] = instrumented(params["cursor_factory"], self.alias, self.vendor)
        return params

    def get_new_connection(self, conn_params):
        self._connects.inc()
        try:
            return super().get_new_connection(conn_params)
        except Exception:
            self._connect_errors.inc()
            raise
