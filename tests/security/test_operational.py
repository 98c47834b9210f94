"""/metrics and /health/ready/ answer only allowed networks or the bearer token; readiness
shows ok/failed per check, never internal error text, and fails when the detector lags."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from core.observability import health
from locations.models import Ping
from tests.factories import make_ping, make_user

OUTSIDE = "203.0.113.5"


@pytest.fixture
def failing_check():
    def check():
        raise RuntimeError("connection to postgresql://app:hunter2@10.0.0.9/crossings refused")

    health.register_check("test-secret", check)
    yield
    health._REGISTERED.pop("test-secret", None)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/metrics", "/health/ready/"])
def test_operational_endpoints_refuse_outsiders(api, path):
    response = api.get(path, REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403
    assert response.json() == {"detail": "Not available from your network."}
    # A forged X-Forwarded-For does not make an outsider local (NUM_PROXIES = 0).
    assert api.get(path, REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 403


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("path", ["/metrics", "/health/ready/"])
def test_loopback_networks_and_the_token_are_let_in(api, path):
    assert api.get(path, REMOTE_ADDR="127.0.0.1").status_code in (200, 503)
    with override_settings(METRICS_TOKEN="s3cret-token-for-scrapes"):
        assert api.get(path, REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
        assert api.get(path, REMOTE_ADDR=OUTSIDE,
                       HTTP_AUTHORIZATION="Bearer s3cret-token-for-scrapes").status_code in (200, 503)
    with override_settings(METRICS_ALLOWED_NETWORKS=["203.0.113.0/24"]):
        assert api.get(path, REMOTE_ADDR=OUTSIDE).status_code in (200, 503)
        assert api.get(path, REMOTE_ADDR="127.0.0.1").status_code == 403


def test_the_token_is_empty_by_default(settings):
    assert settings.METRICS_TOKEN == ""
    assert settings.METRICS_ALLOWED_NETWORKS == ["127.0.0.0/8", "::1/128"]
    assert settings.READY_MAX_DETECTOR_LAG_S == 300


@pytest.mark.django_db(databases="__all__")
def test_readiness_shows_no_error_text_and_logs_it(api, failing_check, caplog):
    with caplog.at_level(logging.WARNING, logger="core.observability.health"):
        response = api.get("/health/ready/")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["test-secret"]["ok"] is False
    assert set(body["checks"]["test-secret"]) == {"ok", "ms"}
    assert b"hunter2" not in response.content and b"RuntimeError" not in response.content
    assert "hunter2" in caplog.text


@pytest.mark.django_db(databases="__all__")
def test_readiness_fails_when_the_detector_lags(api):
    user = make_user()
    make_ping(user)
    Ping.objects.filter(user_id=user.pk).update(received_at=timezone.now() - timedelta(minutes=10))
    response = api.get("/health/ready/")
    body = response.json()
    assert response.status_code == 503, body
    assert body["checks"]["detector"]["ok"] is False
    assert body["checks"]["detector"]["lag_s"] >= 600
    with override_settings(READY_MAX_DETECTOR_LAG_S=3600):
        response = api.get("/health/ready/")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["detector"]["ok"] is True
