"""Shared fixtures: API clients, users, and a clean cache for every test."""

from __future__ import annotations

import copy

import pytest
from django.core.cache import cache
from django.test import override_settings
from redis.connection import AbstractConnection
from rest_framework.test import APIClient

from accounts.tokens import issue_access_token
from tests.factories import make_user


def pytest_sessionstart(session):
    _drop_stale_test_databases()


def _drop_stale_test_databases():
    """Drop test databases of pytest processes that died without dropping theirs.

    Each run makes ``test_crossings_<pid>`` (settings.py); a run that is killed leaves it
    behind, and on the long-lived embedded server they would pile up.  Only with the
    embedded server: on a shared DATABASE_URL another machine's pid means nothing here.
    """
    import os
    import re

    import psycopg
    from django.conf import settings

    if os.environ.get("DATABASE_URL"):
        return
    params = psycopg.conninfo.conninfo_to_dict(settings.DATABASE_URL)
    params["dbname"] = "postgres"
    with psycopg.connect(**params, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'test_crossings_%'")
        names = [row[0] for row in rows]
        for name in names:
            match = re.fullmatch(r"test_crossings_(\d+)(_gw\d+)?", name)
            if not match:
                continue
            try:
                os.kill(int(match.group(1)), 0)
                continue  # its run is still going
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's database setup, closing the psycopg pools before the test database is
    dropped (a pool keeps connections open, and DROP DATABASE refuses while they are)."""
    yield
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if hasattr(connection, "close_pool"):
            connection.close_pool()


@pytest.fixture(autouse=True)
def _clean_cache():
    """Every test starts with an empty cache (only this run's keys: the prefix is per run)."""
    # itersize: django-redis scans 10 keys per round trip by default, which costs seconds per
    # test once the shared Redis holds ~100 000 keys of other runs.
    cache.delete_pattern("*", itersize=1000)
    # Raw Redis keys under the run's prefix too (rate-limit counters, hot counters).
    from django.conf import settings

    from core.cache.client import redis_client

    client = redis_client()
    raw_keys = list(client.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000))
    if raw_keys:
        client.delete(*raw_keys)
    from locations.selectors import clear_city_cache  # cities are also cached in-process

    clear_city_cache()
    yield


@pytest.fixture
def api():
    return APIClient()


def admin_client_for(user):
    """A browser-like client of the admin, logged in as the staff member ``user``."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(db):
    """The admin's test world (tests/browser/world.py): staff of each role, people, chats,
    stories and reports in both queues."""
    from tests.browser import world as world_module

    return world_module.build()


def client_for(user) -> APIClient:
    """An API client authenticated as ``user`` through a real session."""
    from accounts import services

    client = APIClient()
    _session, access, _refresh = services.open_session(user, user_agent="pytest", ip="127.0.0.1")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    client.user = user
    return client


@pytest.fixture
def user(db):
    return make_user(display_name="Alice")


@pytest.fixture
def other_user(db):
    return make_user(display_name="Bob")


@pytest.fixture
def auth_client(user):
    return client_for(user)


__all__ = ["client_for", "issue_access_token"]


@pytest.fixture
def round_trips(monkeypatch):
    """Count round trips to Redis (packets sent), passing every call through to the server."""
    sent = []
    original = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        sent.append(1)
        return original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sent


def drf_initial_calls(monkeypatch, view_class) -> list[str]:
    """The methods of the requests that reach DRF's ``initial`` on ``view_class`` (a lean path
    that answers outside DRF leaves the list empty); every call passes through."""
    calls: list[str] = []
    original = view_class.initial

    def counted(self, request, *args, **kwargs):
        calls.append(request.method)
        return original(self, request, *args, **kwargs)

    monkeypatch.setattr(view_class, "initial", counted)
    return calls


@pytest.fixture
def low_rates(settings):
    """Apply ``rates`` (scope -> "n/period") for the test; per hour so a window edge cannot reset them."""

    def apply(**rates):
        rest = copy.deepcopy(settings.REST_FRAMEWORK)
        rest["DEFAULT_THROTTLE_RATES"].update(rates)
        override = override_settings(REST_FRAMEWORK=rest)
        override.enable()
        overrides.append(override)

    overrides: list = []
    yield apply
    for override in reversed(overrides):
        override.disable()
