"""Rate limits kept in Redis: brute-force limits on login and codes, 100/min/user elsewhere."""

from __future__ import annotations

import pytest
from django.conf import settings

from core.cache.client import redis_client
from tests.conftest import client_for
from tests.factories import DEFAULT_PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"


def _assert_throttled(response):
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) >= 1
    assert "throttled" in response.json()["detail"].lower() or "request" in response.json()["detail"].lower()


def test_default_rates_are_the_plans():
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates["user"] == "100/minute"
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == ["core.api.throttling.UserRateThrottle"]


def test_login_is_limited_per_phone_across_ips(api, user, low_rates):
    low_rates(auth_phone="3/hour", auth_ip="100/hour")
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        response = api.post(LOGIN, {"phone": user.phone, "password": "wrong-password"}, format="json",
                            REMOTE_ADDR=ip)
        assert response.status_code == 401
    # Right password, other format of the same number, another IP: still limited.
    national = f"+1 {user.phone[2:5]} {user.phone[5:]}"
    _assert_throttled(api.post(LOGIN, {"phone": national, "password": DEFAULT_PASSWORD}, format="json",
                               REMOTE_ADDR="10.0.0.4"))
    other = make_user()
    ok = api.post(LOGIN, {"phone": other.phone, "password": DEFAULT_PASSWORD}, format="json")
    assert ok.status_code == 200


def test_login_is_limited_per_ip_across_phones(api, low_rates):
    low_rates(auth_ip="2/hour", auth_phone="100/hour")
    for n in range(2):
        api.post(LOGIN, {"phone": f"+1202555017{n}", "password": "x"}, format="json")
    _assert_throttled(api.post(LOGIN, {"phone": "+12025550179", "password": "x"}, format="json"))
    elsewhere = api.post(LOGIN, {"phone": "+12025550179", "password": "x"}, format="json", REMOTE_ADDR="10.9.9.9")
    assert elsewhere.status_code == 401


def test_register_is_limited_per_ip(api, low_rates):
    low_rates(auth_ip="1/hour")
    body = {"phone": "+12025550150", "password": "a-long-passphrase", "display_name": "A"}
    assert api.post("/api/v1/auth/register/", body, format="json").status_code == 202
    body["phone"] = "+12025550151"
    _assert_throttled(api.post("/api/v1/auth/register/", body, format="json"))


def test_code_requests_are_limited_per_phone(user, sms_outbox, low_rates):
    low_rates(code_phone="2/hour")
    client = client_for(user)
    assert client.post("/api/v1/auth/phone/code/").status_code == 202
    assert client.post("/api/v1/auth/phone/code/").status_code == 202
    _assert_throttled(client.post("/api/v1/auth/phone/code/"))
    assert len(sms_outbox) == 2


def test_code_attempts_are_limited_per_phone(user, sms_outbox, low_rates):
    low_rates(auth_phone="2/hour")
    client = client_for(user)
    client.post("/api/v1/auth/phone/code/")
    for _ in range(2):
        assert client.post("/api/v1/auth/phone/verify/", {"code": "999999"}, format="json").status_code in (200, 400)
    _assert_throttled(client.post("/api/v1/auth/phone/verify/", {"code": "999999"}, format="json"))


def test_authenticated_endpoints_are_limited_per_user(user, other_user, low_rates):
    low_rates(user="3/hour")
    client = client_for(user)
    for _ in range(3):
        assert client.get("/api/v1/me/").status_code == 200
    _assert_throttled(client.get("/api/v1/blocks/"))
    assert client_for(other_user).get("/api/v1/me/").status_code == 200


def test_counters_live_in_redis_under_the_runs_prefix(user):
    client_for(user).get("/api/v1/me/")
    keys = [key.decode() for key in redis_client().scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:rl:user:*")]
    assert len(keys) == 1 and str(user.pk) in keys[0]


def test_phone_throttle_reads_the_body_safely(api):
    """Malformed bodies still get their own 4xx, not a 500 from the throttle."""
    assert api.post(LOGIN, b"{oops", content_type="application/json").status_code == 400
    assert api.post(LOGIN, b"[]", content_type="application/json").status_code == 400
    assert api.post(LOGIN, {"phone": ["+1"], "password": "x"}, format="json").status_code == 400
    assert api.post(LOGIN, {"phone": "garbage", "password": "x"}, format="json").status_code == 400
    assert api.post(LOGIN, b"x" * (2 * 1024 * 1024), content_type="application/json").status_code == 413
