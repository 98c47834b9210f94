"""The admin: login limited per IP and per account with the API's Redis limits, a
Content-Security-Policy that its pages live with, phones for the ``admins`` group only, and
the demo superuser only in development, with a random password."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.admin import mask_phone
from accounts.admin_security import admin_csp
from accounts.models import User
from tests.factories import DEFAULT_PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@pytest.fixture
def rates(low_rates):
    return low_rates


def _attempt(phone, password="wrong-password", ip="203.0.113.7"):
    return Client(REMOTE_ADDR=ip).post(LOGIN, {"username": phone, "password": password})


# --------------------------------------------------------------------- throttling


def test_admin_login_is_limited_per_ip(rates):
    rates(auth_ip="2/hour")
    assert _attempt("+12025550180").status_code == 200  # the form again, with an error
    assert _attempt("+12025550181").status_code == 200
    response = _attempt("+12025550182")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert _attempt("+12025550182", ip="203.0.113.8").status_code == 200  # another IP


def test_admin_login_is_limited_per_account_across_ips_and_shares_the_api_counter(rates, api):
    rates(auth_phone="3/hour")
    staff = make_user(is_staff=True)
    assert _attempt(staff.phone, ip="203.0.113.1").status_code == 200
    assert _attempt(staff.phone, ip="203.0.113.2").status_code == 200
    api.post("/api/v1/auth/login/", {"phone": staff.phone, "password": "nope-nope"}, format="json")
    assert _attempt(staff.phone, password=DEFAULT_PASSWORD, ip="203.0.113.3").status_code == 429
    assert _attempt("+12025550183", ip="203.0.113.3").status_code == 200  # another account


def test_admin_login_still_works(rates):
    rates(auth_ip="5/hour")
    staff = make_user(is_staff=True)
    response = _attempt(staff.phone, password=DEFAULT_PASSWORD)
    assert response.status_code == 302


# ---------------------------------------------------------------------------- CSP


def _no_inline_script(html: str) -> None:
    for tag, body in re.findall(r"(<script[^>]*>)(.*?)</script>", html, flags=re.S):
        assert "src=" in tag or 'type="application/json"' in tag, tag
        assert not body.strip() or 'type="application/json"' in tag, tag
    assert not re.search(r"\son[a-z]+=\"", html)  # no inline event handlers
    assert "javascript:" not in html
    assert "<style" not in html and 'style="' not in html  # style-src has no 'unsafe-inline'


def test_admin_pages_carry_a_csp_they_render_under():
    policy = admin_csp()
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    login = Client().get(LOGIN)
    assert login.status_code == 200
    assert login["Content-Security-Policy"] == policy
    _no_inline_script(login.content.decode())
    staff = make_user(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    for url in ("/admin/", "/admin/accounts/user/", "/admin/accounts/userreport/",
                f"/admin/accounts/user/{staff.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Security-Policy"] == policy
        _no_inline_script(response.content.decode())


def test_the_api_has_no_admin_csp(auth_client):
    assert "Content-Security-Policy" not in auth_client.get("/api/v1/me/")


# ------------------------------------------------------------------------- phones


def _staff_in(group: str) -> Client:
    staff = make_user(is_staff=True)
    staff.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(staff)
    return client


def test_moderators_see_a_masked_phone_and_admins_the_number():
    member = make_user(phone="+14155550177", display_name="Member")
    change = f"/admin/accounts/user/{member.pk}/change/"
    moderator = _staff_in("moderators")
    page = moderator.get(change).content.decode()
    assert "+14155550177" not in page and "4155550177" not in page
    assert mask_phone("+14155550177") == "+1••••••••77"
    assert "+1••••••••77" in page
    found = moderator.get("/admin/accounts/user/", {"q": "+14155550177"}).content.decode()
    assert member.display_name not in found  # no phone search: it would confirm the number
    assert "+14155550177" not in moderator.get("/admin/accounts/user/").content.decode()

    admin = _staff_in("admins")
    assert "+14155550177" in admin.get(change).content.decode()
    assert member.display_name in admin.get("/admin/accounts/user/", {"q": "+14155550177"}).content.decode()


# ------------------------------------------------------------------------ demo staff


def test_the_demo_superuser_exists_only_in_development(settings):
    settings.DEMO_STAFF_ENABLED = False
    with pytest.raises(CommandError, match="development"):
        call_command("ensure_demo_staff")
    assert not User.objects.filter(is_superuser=True).exists()


def test_the_demo_superuser_gets_a_random_printed_password(settings):
    settings.DEMO_STAFF_ENABLED = True
    out = StringIO()
    call_command("ensure_demo_staff", stdout=out)
    password = re.search(r"  password (\S+)", out.getvalue()).group(1)
    staff = User.objects.get(is_superuser=True)
    assert staff.check_password(password)
    assert not staff.check_password("crossings-demo")
    assert len(password) >= 16
    again = StringIO()
    call_command("ensure_demo_staff", stdout=again)
    assert password not in again.getvalue()  # printed once
    call_command("ensure_demo_staff", "--reset-password", stdout=again)
    new = re.findall(r"  password (\S+)", again.getvalue())[-1]
    staff.refresh_from_db()
    assert new != password and staff.check_password(new)
