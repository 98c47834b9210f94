"""Fixtures for the accounts tests: an SMS outbox, staff, low rate limits, hook capture."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts import services
from accounts.sms import InMemorySMSBackend
from tests.factories import make_user


@pytest.fixture(autouse=True)
def _fresh_activity_memo():
    """mark_active remembers users per process; tests must not inherit each other's marks."""
    services.local_marks.clear()
    yield
    services.local_marks.clear()


@pytest.fixture
def sms_outbox(settings):
    settings.SMS_BACKEND = "accounts.sms.InMemorySMSBackend"
    InMemorySMSBackend.outbox.clear()
    yield InMemorySMSBackend.outbox
    InMemorySMSBackend.outbox.clear()


@pytest.fixture
def staff_user(db):
    return make_user(display_name="Staff", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(staff_user):
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def commit_hooks(django_capture_on_commit_callbacks):
    """Run on-commit hooks (cache invalidation) as a real commit would."""

    def run():
        return django_capture_on_commit_callbacks(execute=True)

    return run
