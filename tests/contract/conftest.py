"""Fixtures for the contract tests: the app served by pytest-django's live server, with rate
limits off (Schemathesis sends hundreds of requests a minute) and real access tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts import services
from accounts.sms import InMemorySMSBackend
from tests.factories import make_user


@pytest.fixture
def live_api(live_server, settings):
    """The base URL of the live server, configured for a contract run."""
    settings.RATE_LIMIT_ENABLED = False
    settings.ACCESS_TOKEN_TTL = timedelta(hours=1)  # a run outlives the default 5 minutes
    settings.SMS_BACKEND = "accounts.sms.InMemorySMSBackend"
    InMemorySMSBackend.outbox.clear()
    yield live_server.url
    InMemorySMSBackend.outbox.clear()


def bearer_for(user) -> dict[str, str]:
    """Headers with a real access token of a new session of ``user``."""
    _session, access, _refresh = services.open_session(user, user_agent="contract", ip="127.0.0.1")
    return {"Authorization": f"Bearer {access}"}


@pytest.fixture
def staff_headers(live_api):
    """A verified staff user's token: every operation, the staff statistics included, answers it."""
    return bearer_for(make_user(display_name="Contract", is_staff=True, is_verified=True))


__all__ = ["bearer_for"]
