"""Inputs a fuzzer found answered wrongly (a 500, or accepted when they should not be), kept
as regressions; and a small deterministic fuzz over every route: no input is ever a 500."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import make_city, make_user
from tests.security.test_matrix import MATRIX, world  # noqa: F401  (the module's world fixture)


def _ping(**fields):
    return {"pings": [{"lat": 52.52, "lng": 13.405, "recorded_at": timezone.now().isoformat(), **fields}]}


# name -> (method, path, JSON body or query, expected status)
FINDINGS = {
    "accuracy below a real's range was a 500": ("post", "/api/v1/locations/", _ping(accuracy_m="5e-324"), 400),
    "accuracy 5e-324 as a JSON number was a 500": ("post", "/api/v1/locations/", _ping(accuracy_m=5e-324), 400),
    "a subnormal real was stored as 0": ("post", "/api/v1/locations/", _ping(accuracy_m=1e-40), 400),
    "Arabic-Indic digits were a latitude": ("post", "/api/v1/locations/", _ping(lat="٣"), 400),
    "Python digit grouping was a longitude": ("post", "/api/v1/locations/", _ping(lng="1_0"), 400),
    "padded numbers were accepted": ("post", "/api/v1/locations/", _ping(lat=" 52.5 "), 400),
    "full-width digits were a story's place": ("post", "/api/v1/stories/",
                                               {"text": "x", "lat": "５２", "lng": "1"}, 400),
    "Arabic-Indic nearby latitude": ("get", "/api/v1/stories/nearby/", {"lat": "٥٢", "lng": "13"}, 400),
    "digit grouping in a page size": ("get", "/api/v1/crossings/", {"page_size": "1_0"}, 400),
    "Arabic-Indic page size": ("get", "/api/v1/connections/", {"page_size": "١٠"}, 400),
    "a page size far above the maximum was clamped silently": ("get", "/api/v1/connections/",
                                                               {"page_size": "10000"}, 400),
    "a non-JSON number string": ("post", "/api/v1/locations/", _ping(lat="0x10"), 400),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FINDINGS))
def test_fuzz_finding(name):
    make_city()
    method, path, data, expected = FINDINGS[name]
    client = client_for(make_user())
    response = getattr(client, method)(path, data, format="json") if method != "get" else client.get(path, data)
    assert response.status_code == expected, response.content
    assert response["Content-Type"].startswith("application/json")


NASTY = [None, [], {}, "", "x" * 5000, -1, 2**70, 1e308, "5e-324", 5e-324, "٣", "1_0", "\u0000", True, "nan",
         "1e999", [[[[{}]]]], "00000000-0000-0000-0000-000000000000"]


@pytest.mark.django_db(databases="__all__")
def test_no_field_value_is_a_500(world):  # noqa: F811  (the world fixture)
    """Each field of each route's body (and a field too many) set to each nasty value, as the owner."""
    client = world.client("owner")
    seen = []
    for (method, route) in MATRIX:
        if method == "GET" or (route == "me/" and method == "DELETE"):
            continue
        base = world.body((method, route), "owner") or {}
        shapes = [(base, None)]
        if route == "locations/" and method == "POST":
            shapes = [(base["pings"][0], "pings")]
        for template, wrapper in shapes:
            for field in [*template, "extra"]:
                for value in NASTY:
                    body = {**template, field: value}
                    if wrapper == "pings":
                        body["recorded_at"] = timezone.now().isoformat() if field != "recorded_at" else value
                        body = {"pings": [body]}
                    response = getattr(client, method.lower())(world.path(route), body, format="json")
                    seen.append(response.status_code)
                    assert response.status_code < 500, (method, route, field, value, response.content[:200])
    assert len(seen) > 300
