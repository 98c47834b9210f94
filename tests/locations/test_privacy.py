"""A user sees and deletes their own pings; nobody else ever sees them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services as account_services
from locations.models import Ping
from tests.conftest import client_for
from tests.factories import ingest, make_user

URL = "/api/v1/locations/"
pytestmark = pytest.mark.django_db


def test_get_lists_only_own_pings_newest_first(user, other_user, berlin):
    now = timezone.now()
    ingest(user, (52.52, 13.405, now - timedelta(minutes=2), 8.0), (52.521, 13.405, now))
    ingest(other_user, (52.53, 13.41, now))
    body = client_for(user).get(URL).json()
    assert [p["lat"] for p in body["results"]] == [52.521, 52.52]
    first = body["results"][0]
    assert first["city"] == "berlin" and first["status"] == "matchable"
    assert set(first) == {"recorded_at", "lat", "lng", "accuracy_m", "city", "status", "received_at", "expires_at"}
    assert "52.53" not in client_for(user).get(URL).content.decode()


def test_pagination_is_by_cursor(user):
    now = timezone.now()
    ingest(user, *[(52.52, 13.405, now - timedelta(seconds=30 * i)) for i in range(5)])
    client = client_for(user)
    page = client.get(URL, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    second = client.get(page["next"]).json()
    assert len(second["results"]) == 2
    assert second["results"][0]["recorded_at"] < page["results"][-1]["recorded_at"]


def test_delete_removes_only_own_pings(user, other_user):
    now = timezone.now()
    ingest(user, (52.52, 13.405, now))
    ingest(other_user, (52.52, 13.405, now))
    response = client_for(user).delete(URL)
    assert response.status_code == 204
    assert not Ping.objects.filter(user_id=user.pk).exists()
    assert Ping.objects.filter(user_id=other_user.pk).count() == 1
    assert client_for(user).get(URL).json()["results"] == []


def test_after_delete_the_old_position_does_not_judge_new_pings(user):
    """Deleting forgets the cached last position too: a new ping far away is plausible."""
    now = timezone.now()
    ingest(user, (52.52, 13.405, now - timedelta(minutes=1)))
    client_for(user).delete(URL)
    assert ingest(user, (48.0, 2.0, now)).implausible == 0


def test_erasing_an_account_erases_its_pings(user, other_user):
    ingest(user, (52.52, 13.405, timezone.now()))
    ingest(other_user, (52.52, 13.405, timezone.now()))
    account_services.erase_user(user.pk)
    assert not Ping.objects.filter(user_id=user.pk).exists()
    assert Ping.objects.filter(user_id=other_user.pk).exists()


def test_no_other_endpoint_serves_raw_pings(user):
    """Another user's exact coordinates and times appear in no response of the API schema
    paths a client can GET about someone else (their profile)."""
    owner = make_user()
    at = timezone.now() - timedelta(seconds=17)
    ingest(owner, (52.512345, 13.398765, at))
    client = client_for(user)
    for path in (URL, f"/api/v1/users/{owner.pk}/"):
        content = client.get(path).content.decode()
        assert "52.512345" not in content and "13.398765" not in content
        assert at.isoformat()[:19] not in content


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_sending_pings_does_not_pin_reads_but_own_pings_are_read_back_at_once():
    """A ping every 30 s must not send all of the user's reads to the primary; the one
    endpoint that shows pings reads the primary itself."""
    from django.core.cache import cache

    from core.db import router as db_router

    owner = make_user()
    client = client_for(owner)
    at = timezone.now()
    body = {"pings": [{"lat": 52.52, "lng": 13.405, "recorded_at": at.isoformat()}]}
    assert client.post(URL, body, format="json").status_code == 201
    assert cache.get(db_router._marker_key(str(owner.pk))) is None
    assert [p["lat"] for p in client.get(URL).json()["results"]] == [52.52]
