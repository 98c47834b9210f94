"""The platform every app relies on: health, schema, JSON errors, auth plumbing."""

import pytest


@pytest.mark.django_db
def test_health_live(api):
    response = api.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_health_ready_checks_every_dependency(api):
    response = api.get("/health/ready/")
    body = response.json()
    assert response.status_code == 200, body
    assert {"database", "replica1", "cache", "broker"} <= set(body["checks"])
    assert all(check["ok"] for check in body["checks"].values()), body


@pytest.mark.django_db
def test_schema_and_docs_are_served(api):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi" in schema.content
    assert api.get("/api/docs/").status_code == 200


def test_metrics_are_exposed(api, db):
    api.get("/health/")
    response = api.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests_latency_seconds_by_view_method" in response.content
