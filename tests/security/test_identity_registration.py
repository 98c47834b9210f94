"""Registration does not tell whether a number has an account: one status and body for both,
the difference is told only to the number's owner by SMS."""

from __future__ import annotations

import copy

import pytest
from django.test import override_settings

from accounts.models import User
from accounts.sms import InMemorySMSBackend
from tests.factories import make_user

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"


@pytest.fixture
def outbox(settings):
    settings.SMS_BACKEND = "accounts.sms.InMemorySMSBackend"
    InMemorySMSBackend.outbox.clear()
    yield InMemorySMSBackend.outbox
    InMemorySMSBackend.outbox.clear()


def _register(api, phone):
    return api.post(REGISTER, {"phone": phone, "password": "a-long-passphrase", "display_name": "Eve"},
                    format="json")


@pytest.mark.parametrize("existing", [{}, {"is_verified": True}, {"is_active": False}])
def test_taken_and_free_numbers_get_the_same_answer(api, outbox, existing):
    make_user(phone="+12025550170", **existing)
    taken = _register(api, "+12025550170")
    free = _register(api, "+12025550171")
    assert taken.status_code == free.status_code == 202
    assert taken.json() == free.json()
    assert sorted(taken.headers) == sorted(free.headers)
    assert [m.to for m in outbox] == ["+12025550170", "+12025550171"]  # one SMS each
    assert User.objects.count() == 1


def test_sign_up_texts_are_limited_per_number(api, outbox, settings):
    rest = copy.deepcopy(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"].update(code_phone="2/hour")
    with override_settings(REST_FRAMEWORK=rest):
        assert _register(api, "+12025550172").status_code == 202
        assert _register(api, "+12025550172").status_code == 202
        assert _register(api, "+12025550172").status_code == 429
    assert len(outbox) == 2
