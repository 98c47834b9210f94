"""Numbers from clients are bounded: finite, ASCII digits when sent as strings, in range, and
storable in their column (a real holds no 5e-324).  Each refusal is a 400 naming the field."""

from __future__ import annotations

import pytest
from django.utils import timezone

from core.api.numbers import NumberInvalid, parse_integer, parse_number
from locations.models import Ping
from tests.conftest import client_for

PINGS = "/api/v1/locations/"
NOT_NUMBERS = ["٣", "1_0", " 1", "1 ", "0x1", "+1", "1.", ".5", "1e", "١٢.٥", "𝟑", "1e1000", "", "--1", "1" * 60]


def _ping(**overrides):
    ping = {"lat": 52.52, "lng": 13.405, "recorded_at": timezone.now().isoformat()}
    ping.update(overrides)
    return ping


@pytest.mark.parametrize("raw", NOT_NUMBERS)
def test_parse_number_takes_ascii_json_numbers_only(raw):
    with pytest.raises(NumberInvalid):
        parse_number(raw, low=-1e9, high=1e9)


@pytest.mark.parametrize(("raw", "expected"), [("52.5", 52.5), ("-0", 0.0), ("1e2", 100.0), ("0.5E-1", 0.05),
                                               (7, 7.0), (-3.25, -3.25)])
def test_parse_number_accepts_json_numbers(raw, expected):
    assert parse_number(raw, low=-1e9, high=1e9) == expected


@pytest.mark.parametrize("raw", ["5e-324", 5e-324, "1e-40", 1e-39, "-1e-45"])
def test_a_real_column_refuses_what_it_cannot_hold(raw):
    with pytest.raises(NumberInvalid, match="at least"):
        parse_number(raw, low=-1e5, high=1e5, column="float4")
    assert parse_number("1.2e-38", low=0, high=1e5, column="float4") == 1.2e-38
    assert parse_number(0, low=0, high=1e5, column="float4") == 0.0


@pytest.mark.parametrize("raw", ["١٠", "1_0", "010", " 10", "10.0", "-1", "101", ""])
def test_parse_integer_is_strict(raw):
    with pytest.raises(NumberInvalid):
        parse_integer(raw, low=1, high=100)


@pytest.mark.django_db
@pytest.mark.parametrize("accuracy", ["5e-324", 5e-324, "1e-40", 1e-300])
def test_an_underflowing_accuracy_is_a_400_not_a_500(user, accuracy):
    response = client_for(user).post(PINGS, {"pings": [_ping(accuracy_m=accuracy)]}, format="json")
    assert response.status_code == 400, response.content
    assert "pings[0].accuracy_m" in response.json()["fields"]
    assert not Ping.objects.filter(user_id=user.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["٣", "1_0", "٣٣.٥", " 52", "0x10"])
@pytest.mark.parametrize("field", ["lat", "lng"])
def test_coordinates_in_other_scripts_or_python_syntax_are_refused(user, field, raw):
    response = client_for(user).post(PINGS, {"pings": [_ping(**{field: raw})]}, format="json")
    assert response.status_code == 400, response.content
    assert f"pings[0].{field}" in response.json()["fields"]


@pytest.mark.django_db
def test_numeric_strings_in_json_syntax_still_work(user):
    response = client_for(user).post(PINGS, {"pings": [_ping(lat="52.52", lng="13.4", accuracy_m="1e1")]},
                                     format="json")
    assert response.status_code == 201, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["٣", "1_0", "nan", "1e999"])
def test_nearby_stories_refuse_odd_numbers(user, raw):
    response = client_for(user).get("/api/v1/stories/nearby/", {"lat": raw, "lng": "13.4"})
    assert response.status_code == 400, response.content
    assert "lat" in response.json()["fields"]


@pytest.mark.django_db
def test_story_places_refuse_odd_numbers(user):
    response = client_for(user).post("/api/v1/stories/", {"text": "hi", "lat": "1_0", "lng": "٣"}, format="json")
    assert response.status_code == 400, response.content
    assert {"lat", "lng"} <= set(response.json()["fields"])


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/crossings/", "/api/v1/connections/"])
@pytest.mark.parametrize("raw", ["١٠", "1_0", " 10", "0x10", "1000"])
def test_page_sizes_are_ascii_integers_in_range(user, path, raw):
    response = client_for(user).get(path, {"page_size": raw})
    assert response.status_code == 400, response.content
    assert "page_size" in response.json()["fields"]
    assert client_for(user).get(path, {"page_size": "10"}).status_code == 200
