"""POST locations/ on the lean path (``LocationsView.lean_post``): the same answers as DRF's path,
byte for byte, for every kind of request; one rate count and one revocation check per request;
the round trips of a ping.  Each case runs once per path, for a user of its own in the same state.
"""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import revocation
from accounts import services as account_services
from core.api.throttling import UserRateThrottle
from core.cache import breaker as redis_breaker
from core.cache.client import redis_client
from locations.api.views import LocationsView
from locations.models import Ping
from tests.conftest import client_for, drf_initial_calls
from tests.factories import make_verified_user

URL = "/api/v1/locations/"
pytestmark = pytest.mark.django_db


def _body(*offsets_s: int, **extra) -> bytes:
    now = timezone.now()
    pings = [{"lat": 52.52 + i * 1e-4, "lng": 13.405, "recorded_at": (now - timedelta(seconds=s)).isoformat(),
              **extra} for i, s in enumerate(offsets_s)]
    return orjson.dumps({"pings": pings})


def _deactivated(user, client):
    account_services.deactivate_user(user.pk)


def _erased_marker_lost(user, client):
    """Erased while Redis lost the marker: the INSERT finds no user (services.UserGone)."""
    account_services.erase_user(user.pk)
    redis_client().delete(revocation.user_marker(user.pk))


def _logged_out(user, client):
    account_services.revoke_all_sessions(user.pk)


def _header(value: str):
    def prepare(user, client):
        if value:
            client.credentials(HTTP_AUTHORIZATION=value)
        else:
            client.credentials()

    return prepare


def _same_instant() -> bytes:
    at = (timezone.now() - timedelta(seconds=30)).isoformat()
    return orjson.dumps({"pings": [{"lat": 52.5, "lng": 13.4, "recorded_at": at}] * 2})


# name -> (body, extra request arguments, what to do to the user first)
CASES = {
    "one ping": (_body(30), {}, None),
    "a batch of ten": (_body(*range(300, 0, -30)), {}, None),
    "with accuracy and charset": (_body(30, accuracy_m=12.5), {"content_type": "application/json; charset=utf-8"},
                                  None),
    "accept json": (_body(30), {"HTTP_ACCEPT": "application/json"}, None),
    "accept html": (_body(30), {"HTTP_ACCEPT": "text/html"}, None),
    "a query string": (_body(30), {"QUERY_STRING": "format=json"}, None),
    "form content type": (b"pings=1", {"content_type": "application/x-www-form-urlencoded"}, None),
    "malformed json": (b"{oops", {}, None),
    "empty body": (b"", {}, None),
    "a list": (b"[]", {}, None),
    "no pings": (b"{}", {}, None),
    "unknown field": (orjson.dumps({"pings": [], "x": 1}), {}, None),
    "invalid ping": (orjson.dumps({"pings": [{"lat": 95, "lng": 13.4, "recorded_at": "yesterday"}]}), {}, None),
    "too many pings": (_body(*range(101)), {}, None),
    "same instant twice": (_same_instant(), {}, None),
    "too large": (b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1), {}, None),
    "no token": (_body(30), {}, _header("")),
    "basic auth": (_body(30), {}, _header("Basic dXNlcjpwYXNz")),
    "bad token": (_body(30), {}, _header("Bearer not.a.token")),
    "three words": (_body(30), {}, _header("Bearer a b")),
    "logged out": (_body(30), {}, _logged_out),
    "deactivated": (_body(30), {}, _deactivated),
    "erased, marker lost": (_body(30), {}, _erased_marker_lost),
}


def _send(lean: bool, body: bytes, extra: dict, prepare, monkeypatch, capture):
    user = make_verified_user()
    client = client_for(user)
    if prepare is not None:
        with capture(execute=True):  # revocation markers and cache bumps are written after commit
            prepare(user, client)
    monkeypatch.setattr(LocationsView, "lean_post", lean)
    extra = dict(extra)
    content_type = extra.pop("content_type", "application/json")
    response = client.generic("POST", URL, body, content_type=content_type, **extra)
    stored = Ping.objects.filter(user_id=user.pk).count()
    headers = {name: value for name, value in response.items() if name != "X-Request-ID"}
    return response.status_code, response.content, headers, stored


@pytest.mark.parametrize("case", list(CASES))
def test_the_lean_path_answers_as_drf_does(case, berlin, monkeypatch, django_capture_on_commit_callbacks):
    body, extra, prepare = CASES[case]
    drf = _send(False, body, extra, prepare, monkeypatch, django_capture_on_commit_callbacks)
    lean = _send(True, body, extra, prepare, monkeypatch, django_capture_on_commit_callbacks)
    assert lean == drf


def test_a_well_formed_ping_skips_drf(berlin, monkeypatch):
    calls = drf_initial_calls(monkeypatch, LocationsView)
    client = client_for(make_verified_user())
    response = client.post(URL, _body(30), content_type="application/json")
    assert response.status_code == 201 and response.json() == {"accepted": 1, "implausible": 0}
    assert calls == []
    assert client.post(URL, b"{oops", content_type="application/json").status_code == 400
    assert calls == ["POST"]  # a refusal is DRF's


def test_one_rate_count_per_request_and_drfs_429(berlin, low_rates):
    low_rates(user="3/hour")
    user = make_verified_user()
    client = client_for(user)
    for i in range(3):
        assert client.post(URL, _body(300 - 30 * i), content_type="application/json").status_code == 201
    refused = client.post(URL, _body(30), content_type="application/json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) >= 1
    key, _ttl = UserRateThrottle().counter(str(user.pk))
    assert int(redis_client().get(key)) == 4  # the lean path's count was handed to DRF's throttle
    assert Ping.objects.filter(user_id=user.pk).count() == 3


def test_a_revoked_session_stores_nothing(berlin, django_capture_on_commit_callbacks):
    user = make_verified_user()
    client = client_for(user)
    assert client.post(URL, _body(60), content_type="application/json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        account_services.revoke_all_sessions(user.pk)
    response = client.post(URL, _body(30), content_type="application/json")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    assert Ping.objects.filter(user_id=user.pk).count() == 1


def test_a_ping_costs_two_redis_round_trips(berlin, round_trips):
    """The revocation check with the rate count (one script), the last-ping swap (SET ... GET)."""
    client = client_for(make_verified_user())
    assert client.post(URL, _body(90), content_type="application/json").status_code == 201  # marks active
    round_trips.clear()
    assert client.post(URL, _body(60), content_type="application/json").status_code == 201
    assert len(round_trips) == 2


def test_with_the_breaker_open_the_database_decides_and_drf_answers(berlin):
    user = make_verified_user()
    client = client_for(user)
    try:
        redis_breaker.trip(ConnectionError("test"), "test")
        assert client.post(URL, _body(30), content_type="application/json").status_code == 201
        account_services.revoke_all_sessions(user.pk)  # no marker (not committed): the database says so
        redis_breaker.trip(ConnectionError("test"), "test")
        assert client.post(URL, _body(20), content_type="application/json").status_code == 401
    finally:
        redis_breaker.reset()
    assert Ping.objects.filter(user_id=user.pk).count() == 1


def test_anonymous_client_gets_drfs_401():
    response = APIClient().post(URL, _body(30), content_type="application/json")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
