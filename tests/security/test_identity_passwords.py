"""Passwords are hashed with Argon2id outside the tests; older PBKDF2 hashes upgrade at login."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import identify_hasher, make_password
from django.test import override_settings

from accounts.models import User
from config.settings import base
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_argon2_is_the_first_hasher_of_every_real_environment():
    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert "django.contrib.auth.hashers.PBKDF2PasswordHasher" in base.PASSWORD_HASHERS  # old hashes verify


@override_settings(PASSWORD_HASHERS=base.PASSWORD_HASHERS)
def test_a_pbkdf2_password_is_rehashed_with_argon2_at_login(api):
    user = make_user()
    User.objects.filter(pk=user.pk).update(
        password=make_password("an-old-passphrase", hasher="pbkdf2_sha256"))
    response = api.post("/api/v1/auth/login/", {"phone": user.phone, "password": "an-old-passphrase"},
                        format="json")
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert identify_hasher(user.password).algorithm == "argon2"
    assert user.password.startswith("argon2$argon2id$")
