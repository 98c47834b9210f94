"""API requests skip the middleware only browser pages need (core/api/middleware.py); every
other page keeps sessions, CSRF, auth, messages and the admin's throttle and CSP."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from tests.factories import make_user


def test_an_api_request_sets_no_session_or_csrf_cookie_and_keeps_its_security_headers(auth_client):
    response = auth_client.get("/api/v1/me/")
    assert response.status_code == 200
    assert not response.cookies  # no sessionid, no csrftoken
    assert "Cookie" not in response.get("Vary", "")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_api_write_needs_no_csrf_token_even_from_a_csrf_checking_client(user):
    from django.utils import timezone

    from accounts import services

    client = Client(enforce_csrf_checks=True)
    _session, access, _refresh = services.open_session(user)
    response = client.post("/api/v1/locations/", {"pings": [{"lat": 52.52, "lng": 13.405,
                                                           "recorded_at": timezone.now().isoformat()}]},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {access}")
    assert response.status_code == 201, response.content  # no 403 for a missing CSRF token


@pytest.mark.django_db
def test_the_admin_keeps_sessions_csrf_and_its_content_security_policy():
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    assert "Content-Security-Policy" in page
    refused = client.post("/admin/login/", {"username": "+4915200000001", "password": "x"})
    assert refused.status_code == 403  # no CSRF token: refused, as before


@pytest.mark.django_db
def test_a_staff_login_still_opens_a_session_for_the_admin():
    staff = make_user(display_name="Staff", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "sessionid" in client.cookies


def test_the_admin_middleware_must_run_somewhere(settings):
    call_command("check")  # the project's configuration passes
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "WebOnlyRequestMiddleware" not in m]
    with pytest.raises(SystemCheckError, match=r"core\.E001"):
        call_command("check")


def test_csrf_protection_of_browser_pages_is_required_by_the_checks(settings):
    settings.WEB_ONLY_MIDDLEWARE = {**settings.WEB_ONLY_MIDDLEWARE, "request": [
        m for m in settings.WEB_ONLY_MIDDLEWARE["request"] if "Csrf" not in m]}
    with pytest.raises(SystemCheckError, match=r"CsrfViewMiddleware must be in MIDDLEWARE"):
        call_command("check")
