"""`make run` prints the demo logins every run (core/demo_logins.py): the staff account's random
password and a demo user, while they still work; a changed password is never printed."""

from __future__ import annotations

import io
import re
import stat

import pytest
from django.core.management import call_command

from accounts.models import User
from core import demo_logins

pytestmark = pytest.mark.django_db


@pytest.fixture
def logins_file(settings, tmp_path):
    settings.DEMO_LOGINS_FILE = str(tmp_path / "demo_logins.json")
    return tmp_path / "demo_logins.json"


def test_the_staff_login_is_printed_again_on_every_run(logins_file):
    out = io.StringIO()
    call_command("ensure_demo_staff", stdout=out)
    password = re.search(r"  password (\S+)", out.getvalue()).group(1)
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600  # a password on disk: the owner's only
    for _ in range(2):  # every run, not only the first
        lines = demo_logins.login_lines("http://127.0.0.1:8000")
        assert lines == [f"  staff      phone {demo_logins.DEMO_STAFF_PHONE}  password {password}  "
                         "-> http://127.0.0.1:8000/admin/"]
    staff = User.objects.get(phone=demo_logins.DEMO_STAFF_PHONE)
    assert staff.check_password(password)


def test_a_changed_password_is_not_printed(logins_file):
    call_command("ensure_demo_staff", stdout=io.StringIO())
    staff = User.objects.get(phone=demo_logins.DEMO_STAFF_PHONE)
    staff.set_password("my-own-secret-123")
    staff.save()
    [line] = demo_logins.login_lines("http://x")
    assert "my-own-secret" not in line and "--reset-password" in line
    out = io.StringIO()
    call_command("ensure_demo_staff", "--reset-password", stdout=out)
    new = re.search(r"  password (\S+)", out.getvalue()).group(1)
    assert f"password {new}" in demo_logins.login_lines("http://x")[0]


def test_the_demo_user_of_seed_demo_is_printed(logins_file):
    out = io.StringIO()
    call_command("seed_demo", "--users", "5", "--hours", "0.05", "--no-detect", stdout=out, stderr=io.StringIO())
    phone = re.search(r"Log in as a demo user: phone (\S+)", out.getvalue()).group(1)
    lines = demo_logins.login_lines("http://h")
    assert lines == [f"  demo user  phone {phone}  password crossings-demo  -> POST http://h/api/v1/auth/login/"]


def test_tests_and_other_settings_keep_no_logins(settings):
    assert demo_logins.logins_path() is None  # tests write nowhere unless they ask
    settings.TESTING, settings.DEMO_STAFF_ENABLED = False, False  # production-like settings
    assert demo_logins.logins_path() is None
