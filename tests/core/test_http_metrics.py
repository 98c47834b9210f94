"""The request metrics the dashboards and alerts read (core.observability.middleware.HttpMetricsMiddleware)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import client_for
from tests.factories import make_verified_user as make_user

REQUESTS = "django_http_requests_total_by_view_transport_method"
RESPONSES = "django_http_responses_total_by_status_view_method"
LATENCY = "django_http_requests_latency_seconds_by_view_method"


def _samples(api) -> dict[tuple, float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    body = api.get("/metrics").content.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _delta(before, after, name: str, **labels) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_each_request_is_counted_once_by_view_status_and_latency_stored_answers_included(api):
    """A read answered from the response cache is counted like a fresh one (django-prometheus's
    pair skipped the by-view request counter when a stored answer cut the view short)."""
    user = make_user()
    client = client_for(user)
    assert client.get(f"/api/v1/users/{user.pk}/").status_code == 200  # stored
    view = "v1:user-detail"
    before = _samples(api)
    for _ in range(3):  # stored answers
        assert client.get(f"/api/v1/users/{user.pk}/").status_code == 200
    after = _samples(api)
    assert _delta(before, after, f"{REQUESTS}_total", view=view, transport="http", method="GET") == 3
    assert _delta(before, after, f"{RESPONSES}_total", view=view, status="200", method="GET") == 3
    assert _delta(before, after, f"{LATENCY}_count", view=view, method="GET") == 3
    assert _delta(before, after, f"{LATENCY}_bucket", view=view, method="GET", le="+Inf") == 3


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_refusals_are_counted_by_status_and_odd_methods_under_one_label(api):
    before = _samples(api)
    assert api.get("/api/v1/me/").status_code == 401
    assert api.generic("BREW", "/api/v1/me/").status_code == 401  # refused before the method is looked at
    after = _samples(api)
    view = "v1:me"
    assert _delta(before, after, f"{RESPONSES}_total", view=view, status="401", method="GET") == 1
    assert _delta(before, after, f"{RESPONSES}_total", view=view, status="401", method="<invalid method>") == 1


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_path_that_matches_no_view_is_counted_unnamed(api):
    before = _samples(api)
    assert api.get("/api/v1/no-such-thing/").status_code == 404
    after = _samples(api)
    assert _delta(before, after, f"{RESPONSES}_total", view="<unnamed view>", status="404", method="GET") == 1
