"""The platform every app relies on: health, schema, JSON errors, auth plumbing."""

import uuid

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


def test_cachalot_caches_rare_tables_and_leaves_hot_ones_alone(db, monkeypatch, django_assert_num_queries):
    """Queries on tables cachalot does not cache compile their SQL once (not once more for a key)."""
    from django.db.models.sql.compiler import SQLCompiler

    from accounts.models import User
    from locations.models import City
    from tests.factories import make_city, make_user

    user = make_user()
    make_city(name="Cachetown")
    compiled = []
    original = SQLCompiler.as_sql

    def counting(self, *args, **kwargs):
        compiled.append(self.query.model)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", counting)
    assert User.objects.filter(pk=user.pk).first() == user
    assert compiled == [User]
    list(City.objects.filter(name="Cachetown"))  # cached by cachalot...
    with django_assert_num_queries(0):  # ...so the second read is served from Redis
        assert [c.name for c in City.objects.filter(name="Cachetown")] == ["Cachetown"]


@pytest.mark.django_db
def test_an_id_that_is_not_a_uuid_is_a_json_404_and_views_get_uuids(api):
    from django.urls import resolve

    for path in ("/api/v1/users/not-a-uuid/", "/api/v1/crossings/1/", "/api/v1/connections/x/accept/",
                 "/api/v1/stories/../", "/api/v1/nowhere/"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json", path
        assert response.json() == {"detail": "Not found.", "code": "not_found"}
    match = resolve("/api/v1/users/0192c9a4-1d2e-7f00-8000-000000000001/")
    assert isinstance(match.kwargs["user_id"], uuid.UUID)
    assert "json" not in api.get("/nowhere/")["Content-Type"]  # outside the API: Django's own page


def test_the_root_redirects_to_the_api_docs(api):
    response = api.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"
