"""The client's IP comes from the peer and NUM_PROXIES trusted proxies, never from what a
client writes into X-Forwarded-For: per-IP limits cannot be escaped with a rotating header."""

from __future__ import annotations

import copy

import pytest
from django.test import RequestFactory, override_settings

from core.api.client_ip import client_ip, rate_limit_key

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"


@pytest.fixture
def one_registration_per_ip(settings):
    rest = copy.deepcopy(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"].update(auth_ip="1/hour", auth_phone="100/hour")
    with override_settings(REST_FRAMEWORK=rest):
        yield


def _body(n: int) -> dict:
    return {"phone": f"+120255501{n:02d}", "password": "a-long-passphrase", "display_name": "A"}


def _request(remote="203.0.113.9", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_default_is_no_proxy():
    from django.conf import settings

    assert settings.NUM_PROXIES == 0
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


@override_settings(NUM_PROXIES=0)
def test_without_proxies_the_header_is_ignored():
    assert client_ip(_request("203.0.113.9", "198.51.100.1, 198.51.100.2")) == "203.0.113.9"
    assert client_ip(_request("unix:/run/gunicorn.sock", "198.51.100.1")) is None
    assert rate_limit_key(_request("unix:/run/gunicorn.sock", "198.51.100.1")) == "unknown"


@override_settings(NUM_PROXIES=1)
def test_one_proxy_trusts_the_right_most_address_only():
    # The client wrote "1.1.1.1" itself; nginx appended the address it saw.
    assert client_ip(_request("127.0.0.1", "1.1.1.1, 198.51.100.7")) == "198.51.100.7"
    assert client_ip(_request("127.0.0.1", " 198.51.100.7 ")) == "198.51.100.7"
    assert client_ip(_request("127.0.0.1")) == "127.0.0.1"  # not through the proxy: the peer
    assert client_ip(_request("127.0.0.1", "1.1.1.1, not-an-ip")) is None


@override_settings(NUM_PROXIES=2)
def test_two_proxies_count_two_hops_from_the_right():
    assert client_ip(_request("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1")) == "198.51.100.7"
    assert client_ip(_request("10.0.0.2", "198.51.100.7")) == "198.51.100.7"  # fewer hops: the left-most


def test_ipv6_clients_are_limited_per_64():
    a = rate_limit_key(_request("2001:db8:1:2:aaaa::1"))
    b = rate_limit_key(_request("2001:db8:1:2:bbbb::2"))
    assert a == b == "2001:db8:1:2::/64"
    assert rate_limit_key(_request("2001:db8:1:3::1")) != a


@override_settings(NUM_PROXIES=0)
def test_a_forged_header_does_not_escape_the_registration_limit(api, one_registration_per_ip):
    assert api.post(REGISTER, _body(1), format="json", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 202
    second = api.post(REGISTER, _body(2), format="json", HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert second.status_code == 429, second.content


@override_settings(NUM_PROXIES=1)
def test_behind_one_proxy_each_client_address_has_its_own_limit(api, one_registration_per_ip):
    # Both arrive from the proxy (127.0.0.1); the right-most forwarded address is the client.
    first = api.post(REGISTER, _body(3), format="json", REMOTE_ADDR="127.0.0.1",
                     HTTP_X_FORWARDED_FOR="9.9.9.9, 198.51.100.1")
    assert first.status_code == 202
    forged = api.post(REGISTER, _body(4), format="json", REMOTE_ADDR="127.0.0.1",
                      HTTP_X_FORWARDED_FOR="9.9.9.8, 198.51.100.1")
    assert forged.status_code == 429, forged.content
    other = api.post(REGISTER, _body(5), format="json", REMOTE_ADDR="127.0.0.1",
                     HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert other.status_code == 202


@override_settings(NUM_PROXIES=1)
def test_the_session_records_the_client_address(api):
    from accounts.models import Session
    from tests.factories import DEFAULT_PASSWORD, make_user

    user = make_user()
    response = api.post("/api/v1/auth/login/", {"phone": user.phone, "password": DEFAULT_PASSWORD}, format="json",
                        REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.9")
    assert response.status_code == 200, response.content
    assert str(Session.objects.get(user_id=user.pk).ip) == "198.51.100.9"


@override_settings(NUM_PROXIES=1)
def test_log_records_carry_the_client_address(api, caplog):
    import logging

    from core.observability.middleware import RequestIdLogFilter

    caplog.handler.addFilter(RequestIdLogFilter())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        api.get("/api/v1/me/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4")
    assert [record.client_ip for record in caplog.records if record.name == "django.request"] == ["198.51.100.4"]


@override_settings(NUM_PROXIES=1)
def test_records_logged_while_a_request_is_served_carry_its_address(caplog):
    """A record without the request (a service's warning in the middle of a view) gets the
    address of the request being served; one logged outside any request gets "-"."""
    import logging

    from django.http import HttpResponse
    from django.test import RequestFactory

    from core.observability.middleware import RequestContextMiddleware, RequestIdLogFilter

    logger = logging.getLogger("tests.client_ip")

    def view(request):
        logger.warning("inside the view")
        return HttpResponse()

    caplog.handler.addFilter(RequestIdLogFilter())
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.5",
                                   HTTP_X_REQUEST_ID="req-42")
    with caplog.at_level(logging.WARNING, logger="tests.client_ip"):
        RequestContextMiddleware(view)(request)
        logger.warning("after the request")
    assert [(r.getMessage(), r.request_id, r.client_ip) for r in caplog.records if r.name == "tests.client_ip"] == [
        ("inside the view", "req-42", "198.51.100.5"), ("after the request", "-", "-")]
