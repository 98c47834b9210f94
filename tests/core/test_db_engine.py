"""The project's PostgreSQL engine (core.db.backend): django-prometheus's database metrics, one
cursor class per alias instead of one per connect."""

from __future__ import annotations

import psycopg
import pytest
from django.db import ProgrammingError, connection, connections, transaction
from prometheus_client import REGISTRY


def _value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _counts(alias: str = "default") -> dict[str, float]:
    labels = {"alias": alias, "vendor": "postgresql"}
    return {
        "executes": _value("django_db_execute_total", **labels),
        "batches": _value("django_db_execute_many_total", **labels),
        "timed": _value("django_db_query_duration_seconds_count", **labels),
        "connections": _value("django_db_new_connections_total", **labels),
    }


def _delta(before: dict, after: dict) -> dict:
    return {key: after[key] - before[key] for key in before}


@pytest.mark.django_db
def test_statements_are_counted_and_timed_by_alias():
    before = _counts()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT %s", [2])
        cursor.executemany("SELECT %s", [(1,), (2,), (3,)])
    assert _delta(before, _counts()) == {"executes": 5, "batches": 3, "timed": 3, "connections": 0}


@pytest.mark.django_db
def test_a_failed_statement_is_counted_by_its_error_type_and_still_timed():
    labels = {"alias": "default", "vendor": "postgresql", "type": "UndefinedTable"}  # psycopg's error class
    errors, before = _value("django_db_errors_total", **labels), _counts()
    with pytest.raises(ProgrammingError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_anywhere")
    assert _value("django_db_errors_total", **labels) == errors + 1
    delta = _delta(before, _counts())  # the savepoint's statements are counted too
    assert delta["timed"] == delta["executes"] >= 2


@pytest.mark.django_db(transaction=True)
def test_a_connection_taken_again_is_counted_and_keeps_one_cursor_class():
    """With a pool Django connects on every request; django-prometheus's engine built a new
    cursor class each time (a class per request). One class per alias and cursor base now."""
    connection.ensure_connection()
    first = connection.get_connection_params()["cursor_factory"]
    before = _counts()
    connection.close()  # back to the pool, as at the end of a request
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert _delta(before, _counts())["connections"] == 1
    assert connection.get_connection_params()["cursor_factory"] is first
    assert type(connection.connection.cursor()) is first
    assert issubclass(first, psycopg.Cursor)


def test_every_database_alias_uses_the_engine():
    assert {connections[alias].__class__.__module__ for alias in connections} == {"core.db.backend.base"}


def test_cachalot_serves_every_alias():
    """cachalot caches on the engines it knows by name: without the project's engine among
    them it would silently cache nothing."""
    from cachalot.settings import cachalot_settings
    from django.conf import settings

    assert set(cachalot_settings.CACHALOT_DATABASES) == set(settings.DATABASES)
