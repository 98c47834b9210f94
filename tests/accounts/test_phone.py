"""Phone verification by SMS code: sent through the pluggable backend, hashed, expiring,
with limited attempts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import selectors
from accounts.models import PhoneCode, User
from tests.conftest import client_for
from tests.factories import make_user

pytestmark = pytest.mark.django_db

CODE = "/api/v1/auth/phone/code/"
VERIFY = "/api/v1/auth/phone/verify/"


def _code_from(outbox) -> str:
    return re.search(r"\b(\d{6})\b", outbox[-1].body).group(1)


def test_code_is_sent_to_the_users_phone_and_stored_hashed(user, sms_outbox):
    response = client_for(user).post(CODE)
    assert response.status_code == 202, response.content
    assert response.json()["expires_at"]
    assert len(sms_outbox) == 1
    assert sms_outbox[0].to == user.phone
    code = _code_from(sms_outbox)
    stored = PhoneCode.objects.get(user=user)
    assert code not in stored.code_hash
    assert len(stored.code_hash) == 64


def test_right_code_verifies_the_user(user, sms_outbox, commit_hooks):
    client = client_for(user)
    client.post(CODE)
    selectors.get_public_profile(user.pk)  # cached while unverified
    with commit_hooks():
        response = client.post(VERIFY, {"code": _code_from(sms_outbox)}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["user"]["is_verified"] is True
    assert User.objects.get(pk=user.pk).is_verified
    assert selectors.get_public_profile(user.pk)["is_verified"] is True
    # Used codes cannot be used again.
    assert client.post(VERIFY, {"code": _code_from(sms_outbox)}, format="json").status_code == 400


def test_wrong_codes_are_counted_and_then_locked(user, sms_outbox, settings):
    settings.PHONE_CODE_MAX_ATTEMPTS = 3
    client = client_for(user)
    client.post(CODE)
    right = _code_from(sms_outbox)
    wrong = "000000" if right != "000000" else "111111"
    first = client.post(VERIFY, {"code": wrong}, format="json")
    assert first.status_code == 400
    assert first.json()["fields"] == {"code": ["The code is not correct (2 attempts left)."]}
    client.post(VERIFY, {"code": wrong}, format="json")
    client.post(VERIFY, {"code": wrong}, format="json")
    assert PhoneCode.objects.get(user=user).attempts == 3
    locked = client.post(VERIFY, {"code": right}, format="json")
    assert locked.status_code == 400
    assert "request a new code" in locked.json()["fields"]["code"][0]
    assert not User.objects.get(pk=user.pk).is_verified


def test_expired_code_is_refused(user, sms_outbox):
    client = client_for(user)
    client.post(CODE)
    PhoneCode.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(VERIFY, {"code": _code_from(sms_outbox)}, format="json")
    assert response.status_code == 400
    assert "expired" in response.json()["fields"]["code"][0]


def test_a_new_code_replaces_the_old_one(user, sms_outbox):
    client = client_for(user)
    client.post(CODE)
    old = _code_from(sms_outbox)
    client.post(CODE)
    new = _code_from(sms_outbox)
    assert PhoneCode.objects.filter(user=user).count() == 1
    if old != new:
        assert client.post(VERIFY, {"code": old}, format="json").status_code == 400
    assert client.post(VERIFY, {"code": new}, format="json").status_code == 200


def test_verify_without_a_pending_code(user):
    response = client_for(user).post(VERIFY, {"code": "123456"}, format="json")
    assert response.status_code == 400
    assert "No code is pending" in response.json()["fields"]["code"][0]


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 456", 123456, None, ["123456"], "١٢٣٤٥٦"])
def test_malformed_codes_are_400(user, sms_outbox, code):
    client = client_for(user)
    client.post(CODE)
    response = client.post(VERIFY, {"code": code}, format="json")
    assert response.status_code == 400
    assert "code" in response.json()["fields"]
    assert PhoneCode.objects.get(user=user).attempts == 0


def test_unknown_fields_and_auth_required(user, api):
    assert client_for(user).post(CODE, {"phone": "+12025550100"}, format="json").status_code == 400
    assert client_for(user).post(VERIFY, {"code": "123456", "x": 1}, format="json").status_code == 400
    assert api.post(CODE).status_code == 401
    assert api.post(VERIFY, {"code": "123456"}, format="json").status_code == 401


def test_already_verified_is_409(sms_outbox):
    user = make_user(is_verified=True)
    assert client_for(user).post(CODE).status_code == 409
    assert sms_outbox == []


def test_console_backend_is_the_default(user, caplog, settings):
    assert settings.SMS_BACKEND == "accounts.sms.ConsoleSMSBackend"
    caplog.set_level("WARNING", logger="accounts.sms")
    assert client_for(user).post(CODE).status_code == 202
    assert any(user.phone in record.getMessage() for record in caplog.records)
