"""POST locations/: every way a batch can be refused, each a 400 naming the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from locations.models import Ping
from tests.conftest import client_for

URL = "/api/v1/locations/"


def _ping(**overrides):
    ping = {"lat": 52.52, "lng": 13.405, "recorded_at": timezone.now().isoformat()}
    ping.update(overrides)
    return {k: v for k, v in ping.items() if v is not _MISSING}


_MISSING = object()


@pytest.fixture
def client(user):
    return client_for(user)


def test_valid_single_ping_is_accepted(client, user):
    response = client.post(URL, {"pings": [_ping(accuracy_m=12.5)]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json() == {"accepted": 1, "implausible": 0}
    ping = Ping.objects.get(user_id=user.pk)
    assert ping.accuracy_m == 12.5 and ping.status == 0
    assert ping.expires_at - ping.recorded_at == timedelta(hours=24)


def test_numbers_may_be_integers_or_numeric_strings(client):
    response = client.post(URL, {"pings": [_ping(lat=52, lng="13.4")]}, format="json")
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"lat": 90.0001}, "lat", "between -90 and 90"),
        ({"lat": -91}, "lat", "between -90 and 90"),
        ({"lng": 180.5}, "lng", "between -180 and 180"),
        ({"lng": -181}, "lng", "between -180 and 180"),
        ({"lat": "NaN"}, "lat", "finite"),
        ({"lng": "Infinity"}, "lng", "finite"),
        ({"lat": "-inf"}, "lat", "finite"),
        ({"accuracy_m": "nan"}, "accuracy_m", "finite"),
        ({"lat": "north"}, "lat", "number is required"),
        ({"lat": True}, "lat", "number is required"),
        ({"lng": [1]}, "lng", "number is required"),
        ({"lat": _MISSING}, "lat", "required"),
        ({"lng": None}, "lng", "required"),
        ({"recorded_at": _MISSING}, "recorded_at", "required"),
        ({"recorded_at": "yesterday"}, "recorded_at", "ISO 8601"),
        ({"recorded_at": 1700000000}, "recorded_at", "ISO 8601"),
        ({"recorded_at": "2026-11-26T10:00:00"}, "recorded_at", "time zone"),
        ({"recorded_at": "2026-13-45T10:00:00Z"}, "recorded_at", "ISO 8601"),
        ({"accuracy_m": -1}, "accuracy_m", "between 0"),
        ({"accuracy_m": 1e9}, "accuracy_m", "between 0"),
        ({"altitude": 30}, "altitude", "Unknown field"),
    ],
)
def test_field_errors(client, overrides, field, message):
    response = client.post(URL, {"pings": [_ping(), _ping(**overrides)]}, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert not [name for name in fields if name.startswith("pings[0]")]
    assert message in " ".join(fields[f"pings[1].{field}"])
    assert not Ping.objects.exists()


def test_recorded_at_too_far_in_the_future(client):
    future = timezone.now() + timedelta(minutes=5, seconds=30)
    response = client.post(URL, {"pings": [_ping(recorded_at=future.isoformat())]}, format="json")
    assert response.status_code == 400
    assert "5 minutes in the future" in response.json()["fields"]["pings[0].recorded_at"][0]


def test_recorded_at_a_little_in_the_future_is_fine(client):
    soon = timezone.now() + timedelta(minutes=4)
    assert client.post(URL, {"pings": [_ping(recorded_at=soon.isoformat())]}, format="json").status_code == 201


def test_recorded_at_older_than_retention(client):
    old = timezone.now() - timedelta(hours=24, minutes=1)
    response = client.post(URL, {"pings": [_ping(recorded_at=old.isoformat())]}, format="json")
    assert response.status_code == 400
    assert "last 24 hours" in response.json()["fields"]["pings[0].recorded_at"][0]


def test_duplicate_pings_in_one_batch(client):
    at = timezone.now().isoformat()
    response = client.post(URL, {"pings": [_ping(recorded_at=at), _ping(recorded_at=at, lat=52.6)]}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["pings[1].recorded_at"] == ["Duplicate of ping 0 (same recorded_at)."]


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"pings": []}, "pings", "at least one"),
        ({"pings": "52.5,13.4"}, "pings", "list of pings"),
        ({"pings": None}, "pings", "list of pings"),
        ({}, "pings", "required"),
        ({"pings": [_ping()], "device": "x"}, "device", "Unknown field"),
        ([{"lat": 1}], "detail", "JSON object"),
    ],
)
def test_body_errors(client, body, key, message):
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert message in (body["detail"] if key == "detail" else " ".join(body["fields"][key]))


def test_batch_of_100_is_accepted_and_101_refused(client):
    base = timezone.now() - timedelta(hours=1)
    pings = [_ping(recorded_at=(base + timedelta(seconds=30 * i)).isoformat()) for i in range(101)]
    refused = client.post(URL, {"pings": pings}, format="json")
    assert refused.status_code == 400
    assert "at most 100" in refused.json()["fields"]["pings"][0]
    accepted = client.post(URL, {"pings": pings[:100]}, format="json")
    assert accepted.status_code == 201
    assert accepted.json() == {"accepted": 100, "implausible": 0}


def test_ping_that_is_not_an_object(client):
    response = client.post(URL, {"pings": [_ping(), 42]}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"pings[1]": ["Each ping must be an object."]}


@pytest.mark.parametrize("raw", [b'{"pings": [{"lat": NaN, "lng": 1, "recorded_at": "x"}]}', b"{not json", b"1e400"])
def test_malformed_json_is_a_400(client, raw):
    response = client.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400


def test_huge_exponent_is_refused_not_stored(client):
    raw = b'{"pings": [{"lat": 1e400, "lng": 1, "recorded_at": "%s"}]}' % timezone.now().isoformat().encode()
    response = client.generic("POST", URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert not Ping.objects.exists()


def test_anonymous_is_refused(api, db):
    assert api.post(URL, {"pings": [_ping()]}, format="json").status_code == 401
    assert api.get(URL).status_code == 401
    assert api.delete(URL).status_code == 401
