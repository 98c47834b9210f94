"""Register, login, refresh, logout and sessions, with their failure cases."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import PendingRegistration, Session, User
from accounts.tokens import make_refresh_token
from tests.conftest import client_for
from tests.factories import DEFAULT_PASSWORD, make_user

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register/"
REGISTER_VERIFY = "/api/v1/auth/register/verify/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
LOGOUT = "/api/v1/auth/logout/"
SESSIONS = "/api/v1/auth/sessions/"
ME = "/api/v1/me/"


def _register(api, headers=None, **overrides):
    body = {"phone": "+1 (202) 555-0142", "password": "a-long-passphrase", "display_name": "Zoe"}
    body.update(overrides)
    return api.post(REGISTER, body, format="json", **(headers or {}))


def _code(sms_outbox, phone="+12025550142") -> str:
    return re.search(r"\b(\d{6})\b", [m.body for m in sms_outbox if m.to == phone][-1]).group(1)


def _sign_up(api, sms_outbox, headers=None, **overrides):
    """Register and enter the texted code: the 201 with the new account's tokens."""
    assert _register(api, headers, **overrides).status_code == 202
    return api.post(REGISTER_VERIFY, {"phone": "+12025550142", "code": _code(sms_outbox)}, format="json",
                    **(headers or {}))


def _bearer(api, access):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return api


# ------------------------------------------------------------------ register


def test_register_texts_a_code_that_creates_the_user_and_a_session(api, sms_outbox):
    started = _register(api)
    assert started.status_code == 202, started.content
    assert set(started.json()) == {"detail", "expires_in"}
    assert not User.objects.exists()  # nothing until the number's owner enters the code
    response = api.post(REGISTER_VERIFY, {"phone": "+1 202 555 0142", "code": _code(sms_outbox)}, format="json",
                        HTTP_USER_AGENT="Crossings/1.0 (iPhone)")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"user", "access", "refresh"}
    assert body["user"]["phone"] == "+12025550142"
    assert body["user"]["display_name"] == "Zoe"
    assert body["user"]["is_verified"] is True  # the code proved the number
    user = User.objects.get(pk=body["user"]["id"])
    assert user.check_password("a-long-passphrase")
    session = Session.objects.get(user=user)
    assert session.user_agent == "Crossings/1.0 (iPhone)"
    assert session.refresh_token_hash != body["refresh"]  # only a hash is stored
    assert _bearer(api, body["access"]).get(ME).status_code == 200
    assert not PendingRegistration.objects.exists()
    # The code is used up.
    again = api.post(REGISTER_VERIFY, {"phone": "+12025550142", "code": _code(sms_outbox)}, format="json")
    assert again.status_code == 400


def test_a_wrong_code_counts_and_too_many_end_the_sign_up(api, sms_outbox, settings):
    assert _register(api).status_code == 202
    good = _code(sms_outbox)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(settings.PHONE_CODE_MAX_ATTEMPTS):
        response = api.post(REGISTER_VERIFY, {"phone": "+12025550142", "code": wrong}, format="json")
        assert response.status_code == 400
        assert "code" in response.json()["fields"]
    response = api.post(REGISTER_VERIFY, {"phone": "+12025550142", "code": good}, format="json")
    assert response.status_code == 400  # exhausted: register again
    assert not User.objects.exists()


def test_verify_without_a_pending_sign_up_is_a_400(api):
    response = api.post(REGISTER_VERIFY, {"phone": "+12025550199", "code": "123456"}, format="json")
    assert response.status_code == 400
    assert "code" in response.json()["fields"]
    assert api.post(REGISTER_VERIFY, {"phone": "+12025550199", "code": "12a456"}, format="json").status_code == 400


def test_register_duplicate_phone_answers_the_same_and_texts_the_owner(api, sms_outbox):
    owner = make_user(phone="+12025550142")
    fresh = _register(api, phone="+1 202 555 0199")
    response = _register(api, phone="+1 202 555 0142")
    assert response.status_code == fresh.status_code == 202
    assert response.json() == fresh.json()
    notice = [m.body for m in sms_outbox if m.to == "+12025550142"]
    assert len(notice) == 1 and "already has an account" in notice[0]
    assert not re.search(r"\d{6}", notice[0])  # no code: nothing to take over
    assert not PendingRegistration.objects.filter(phone="+12025550142").exists()
    owner.refresh_from_db()
    assert owner.check_password(DEFAULT_PASSWORD)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "+1 555"}, "phone"),
        ({"phone": "+999 1234567"}, "phone"),
        ({"phone": ""}, "phone"),
        ({"phone": 12025550142}, "phone"),
        ({"phone": ["+12025550142"]}, "phone"),
        ({"phone": None}, "phone"),
        ({"password": "short"}, "password"),
        ({"password": "12345678901"}, "password"),
        ({"password": 123456789012}, "password"),
        ({"display_name": ""}, "display_name"),
        ({"display_name": "x" * 51}, "display_name"),
        ({"display_name": {"a": 1}}, "display_name"),
        ({"display_name": "nul\x00byte"}, "display_name"),
    ],
)
def test_register_rejects_bad_fields(api, overrides, field):
    response = _register(api, **overrides)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not User.objects.exists()


def test_register_rejects_unknown_and_missing_fields(api):
    response = _register(api, is_staff=True)
    assert response.status_code == 400
    assert response.json()["fields"] == {"is_staff": ["Unknown field."]}
    response = api.post(REGISTER, {"phone": "+12025550142"}, format="json")
    assert response.status_code == 400
    assert {"password", "display_name"} <= set(response.json()["fields"])


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"', b"null", b"\xff\xfe"])
def test_register_rejects_malformed_or_non_object_json(api, raw):
    response = api.post(REGISTER, raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "detail" in response.json() or "non_field_errors" in response.json()


def test_huge_body_is_413(api):
    body = b'{"phone": "+12025550142", "display_name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = api.post(REGISTER, body, content_type="application/json")
    assert response.status_code == 413


def test_unsupported_media_type_is_415(api):
    response = api.post(REGISTER, b"phone=1", content_type="text/plain")
    assert response.status_code == 415


# --------------------------------------------------------------------- login


def test_login_opens_a_new_session(api, user):
    response = api.post(LOGIN, {"phone": user.phone, "password": DEFAULT_PASSWORD}, format="json",
                        HTTP_USER_AGENT="Android 15")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user"]["id"] == str(user.pk)
    session = Session.objects.get(user=user)
    assert session.user_agent == "Android 15"
    assert session.ip == "127.0.0.1"
    assert _bearer(api, body["access"]).get(ME).json()["id"] == str(user.pk)


def test_login_from_a_peer_without_an_ip_address(api, user):
    response = api.post(LOGIN, {"phone": user.phone, "password": DEFAULT_PASSWORD}, format="json",
                        REMOTE_ADDR="unix:/run/gunicorn.sock")
    assert response.status_code == 200
    assert Session.objects.get(user=user).ip is None


def test_login_accepts_any_phone_format(api, user):
    national = f"+1 ({user.phone[2:5]}) {user.phone[5:8]}-{user.phone[8:]}"
    response = api.post(LOGIN, {"phone": national, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200


def test_login_wrong_password_and_unknown_phone_get_the_same_answer(api, user):
    wrong = api.post(LOGIN, {"phone": user.phone, "password": "not-the-password"}, format="json")
    unknown = api.post(LOGIN, {"phone": "+12025550999", "password": DEFAULT_PASSWORD}, format="json")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Phone number or password is incorrect.",
                                              "code": "authentication_failed"}
    assert not Session.objects.exists()


def test_login_invalid_phone_and_bad_types(api):
    assert api.post(LOGIN, {"phone": "abc", "password": "x"}, format="json").status_code == 400
    assert api.post(LOGIN, {"phone": 5, "password": "x"}, format="json").status_code == 400
    assert api.post(LOGIN, {"phone": "+12025550142", "password": ["x"]}, format="json").status_code == 400
    assert api.post(LOGIN, {"phone": "+12025550142", "password": "x", "otp": 1},
                    format="json").status_code == 400


def test_login_refused_for_deactivated_user(api):
    user = make_user(is_active=False)
    response = api.post(LOGIN, {"phone": user.phone, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 403
    assert not Session.objects.exists()


def test_login_ignores_a_stale_bearer_header(api, user):
    api.credentials(HTTP_AUTHORIZATION="Bearer garbage")
    response = api.post(LOGIN, {"phone": user.phone, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200


# ------------------------------------------------------------------- refresh


def _login(api, user):
    return api.post(LOGIN, {"phone": user.phone, "password": DEFAULT_PASSWORD}, format="json").json()


def test_refresh_rotates_the_token(api, user):
    first = _login(api, user)
    response = api.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert response.status_code == 200, response.content
    second = response.json()
    assert set(second) == {"access", "refresh"}
    assert second["refresh"] != first["refresh"]
    third = api.post(REFRESH, {"refresh": second["refresh"]}, format="json")
    assert third.status_code == 200
    session = Session.objects.get(user=user)
    assert session.generation == 2
    assert _bearer(api, third.json()["access"]).get(ME).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_session(api, user):
    first = _login(api, user)
    second = api.post(REFRESH, {"refresh": first["refresh"]}, format="json").json()
    replay = api.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert replay.status_code == 401
    assert "revoked" in replay.json()["detail"]
    assert Session.objects.get(user=user).revoked_at is not None
    # The legitimate holder's newer token dies with the session too.
    assert api.post(REFRESH, {"refresh": second["refresh"]}, format="json").status_code == 401


def test_forged_and_garbage_refresh_tokens_are_401_and_revoke_nothing(api, user):
    tokens = _login(api, user)
    session = Session.objects.get(user=user)
    forged = f"{session.id}.0.{'A' * 32}.{'0' * 32}"  # right shape, wrong MAC
    for bad in ["garbage", forged, "a.b.c.d", "x" * 300, tokens["access"], "....", "\u00e9.\u00e9.\u00e9.\u00e9"]:
        response = api.post(REFRESH, {"refresh": bad}, format="json")
        assert response.status_code in (400, 401), (bad, response.content)
    session.refresh_from_db()
    assert session.revoked_at is None
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 200


def test_refresh_with_wrong_types_is_400(api):
    assert api.post(REFRESH, {"refresh": 42}, format="json").status_code == 400
    assert api.post(REFRESH, {}, format="json").status_code == 400
    assert api.post(REFRESH, {"refresh": "x", "extra": 1}, format="json").status_code == 400


def test_refresh_of_an_unknown_session_is_401(api):
    token = make_refresh_token(uuid.uuid4(), 0)  # a valid MAC, but no such session
    assert api.post(REFRESH, {"refresh": token}, format="json").status_code == 401


def test_refresh_refused_after_expiry_and_for_deactivated_users(api, user):
    tokens = _login(api, user)
    Session.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401

    other = make_user()
    tokens = _login(api, other)
    User.objects.filter(pk=other.pk).update(is_active=False)
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401


# -------------------------------------------------------------- access tokens


def _token(payload_overrides=None, key=None):
    now = datetime.now(UTC)
    payload = {"sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "stf": False, "typ": "access",
               "iat": int(now.timestamp()), "exp": int((now + timedelta(minutes=5)).timestamp())}
    payload.update(payload_overrides or {})
    return jwt.encode(payload, key or settings.JWT_SIGNING_KEY, algorithm="HS256")


def test_bad_access_tokens_are_401(api, user):
    past = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    cases = {
        "expired": _token({"sub": str(user.pk), "exp": past}),
        "forged": _token({"sub": str(user.pk)}, key="not-our-key-" * 4),
        "wrong type": _token({"sub": str(user.pk), "typ": "refresh"}),
        "bad subject": _token({"sub": "not-a-uuid"}),
        "garbage": "garbage",
        "empty parts": "..",
        "alg none": jwt.encode({"sub": str(user.pk), "sid": str(uuid.uuid4()), "typ": "access",
                                "exp": 9999999999}, None, algorithm="none"),
    }
    for name, token in cases.items():
        response = api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401, (name, response.content)
        assert response.json()["detail"]
    assert api.get(ME, HTTP_AUTHORIZATION="Bearer").status_code == 401
    assert api.get(ME, HTTP_AUTHORIZATION="Bearer a b").status_code == 401
    assert api.get(ME, HTTP_AUTHORIZATION="Bearer tok\u00e9n".encode()).status_code == 401
    assert api.get(ME).status_code == 401
    assert api.get(ME).headers["WWW-Authenticate"] == "Bearer"


def test_expired_token_message_says_so(api, user):
    past = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    response = api.get(ME, HTTP_AUTHORIZATION=f"Bearer {_token({'sub': str(user.pk), 'exp': past})}")
    assert response.json() == {"detail": "Access token has expired.", "code": "authentication_failed"}


def test_a_token_already_accepted_still_expires_on_time(api, user, monkeypatch):
    """Verified tokens are remembered per process; the memo must not outlive the token."""
    import accounts.tokens

    exp = int((datetime.now(UTC) + timedelta(minutes=2)).timestamp())
    token = _token({"sub": str(user.pk), "exp": exp})
    assert api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200  # from the memo
    monkeypatch.setattr(accounts.tokens.time, "time", lambda: exp + 1)
    response = api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert response.json() == {"detail": "Access token has expired.", "code": "authentication_failed"}


def test_a_token_signed_with_a_rotated_key_is_refused(api, user, settings):
    token = _token({"sub": str(user.pk)})
    assert api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    settings.JWT_SIGNING_KEY = "a-new-signing-key-" * 3
    assert api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_token_of_a_deactivated_or_deleted_user_stops_working(user):
    client = client_for(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get(ME).status_code == 401
    other = make_user()
    client = client_for(other)
    other.delete()
    assert client.get(ME).status_code == 401


# ------------------------------------------------------------ logout, sessions


def test_logout_ends_the_current_session_only(api, user):
    phone_tokens = _login(api, user)
    laptop_tokens = _login(api, user)
    response = _bearer(api, phone_tokens["access"]).post(LOGOUT)
    assert response.status_code == 204
    assert api.post(REFRESH, {"refresh": phone_tokens["refresh"]}, format="json").status_code == 401
    assert api.post(REFRESH, {"refresh": laptop_tokens["refresh"]}, format="json").status_code == 200


def test_revoked_sessions_access_token_lasts_until_expiry_but_refresh_fails(api, user):
    tokens = _login(api, user)
    _bearer(api, tokens["access"])
    assert api.post(LOGOUT).status_code == 204
    # Access tokens are checked without the database: valid for the rest of their short life.
    assert api.get(ME).status_code == 200
    api.credentials()
    assert api.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401


def test_logout_requires_a_token(api):
    assert api.post(LOGOUT).status_code == 401


def test_sessions_list_marks_the_current_one_and_hides_ended_ones(api, user):
    first = _login(api, user)
    _login(api, user)
    ended = _login(api, user)
    _bearer(api, ended["access"]).post(LOGOUT)
    response = _bearer(api, first["access"]).get(SESSIONS)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 2
    assert [item["current"] for item in results].count(True) == 1
    assert {"id", "device", "user_agent", "ip", "created_at", "last_used_at", "expires_at",
            "current"} == set(results[0])
    other = make_user()
    _login(api, other)
    assert len(_bearer(api, first["access"]).get(SESSIONS).json()["results"]) == 2


def test_revoke_a_session(api, user):
    first = _login(api, user)
    second = _login(api, user)
    second_id = Session.objects.filter(user=user).order_by("-created_at").first().pk
    response = _bearer(api, first["access"]).delete(f"{SESSIONS}{second_id}/")
    assert response.status_code == 204
    assert api.post(REFRESH, {"refresh": second["refresh"]}, format="json").status_code == 401
    # Revoking again, someone else's session, or garbage: 404.
    assert _bearer(api, first["access"]).delete(f"{SESSIONS}{second_id}/").status_code == 404
    other_session = Session.objects.create(user=make_user(), refresh_token_hash="x",
                                           expires_at=timezone.now() + timedelta(days=1))
    assert api.delete(f"{SESSIONS}{other_session.pk}/").status_code == 404
    assert api.delete(f"{SESSIONS}not-a-uuid/").status_code == 404
    other_session.refresh_from_db()
    assert other_session.revoked_at is None


def test_sign_up_and_login_pin_the_users_next_reads_to_the_primary(api, user, sms_outbox):
    """Read-your-writes: right after signing up, the next request must not meet a replica
    that has not replayed the new row yet."""
    from django.core.cache import cache

    from core.db import router as db_router

    body = _sign_up(api, sms_outbox).json()
    assert cache.get(db_router._marker_key(body["user"]["id"])) is not None
    api.post(LOGIN, {"phone": user.phone, "password": DEFAULT_PASSWORD}, format="json")
    assert cache.get(db_router._marker_key(str(user.pk))) is not None


def test_a_string_that_is_no_token_is_a_401_even_when_blank_after_trimming_or_with_a_nul(api, user):
    # The schema says "a string of 1-512 characters": every such string that is not a live
    # refresh token is an invalid token (401), not a malformed request (400).
    for bad in ["\u001f", " ", "\t\n", "abc\u0000def"]:
        response = api.post(REFRESH, {"refresh": bad}, format="json")
        assert response.status_code == 401, (bad, response.content)
        assert response.json()["detail"]
    assert api.post(REFRESH, {"refresh": ""}, format="json").status_code == 400  # shorter than the schema allows
