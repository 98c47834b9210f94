"""GET me/ from the response cache (core.cache.response): served again in one round trip with
no query, and never stale after any writer of the user's row (each bumps the profile version
after commit: accounts.services.profile_changed, erasure's invalidate_profiles)."""

from __future__ import annotations

import gzip
import io
import re
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from PIL import Image

from accounts import services
from accounts.api.views import MeView
from accounts.models import TrustLevel, User
from tests.conftest import client_for
from tests.factories import make_user

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"


def _headers(response) -> dict:
    return {name: value for name, value in response.items() if name != "X-Request-ID"}


@pytest.fixture
def cached(user, round_trips, django_assert_num_queries):
    """A client whose me/ answer is stored, and a check that the next one is served from it."""
    client = client_for(user)
    first = client.get(ME)
    assert first.status_code == 200

    def served_from_cache():
        round_trips.clear()
        with django_assert_num_queries(0):
            again = client.get(ME)
        assert len(round_trips) == 1  # rate count, revocation markers, entry and versions: one script
        return again

    client.first = first
    client.served_from_cache = served_from_cache
    return client


def test_a_repeated_me_is_one_round_trip_with_no_query_and_the_same_answer(cached):
    again = cached.served_from_cache()
    assert again.status_code == 200
    assert again.content == cached.first.content
    assert _headers(again) == _headers(cached.first)


def _plain(response) -> bytes:
    if response.get("Content-Encoding") == "gzip":
        return gzip.decompress(response.content)
    return response.content


@pytest.mark.parametrize("accept_encoding", ["", "gzip"])
def test_the_cached_and_the_uncached_answers_are_the_same(user, monkeypatch, accept_encoding):
    """Status, body and headers (gzip's output carries random bytes: compared unpacked, less its
    length and encoding: GZipMiddleware keeps a plain body when its gzip, padded with up to 100
    random bytes, is not smaller, so a body near 200 bytes may come back either way)."""
    client = client_for(user)
    monkeypatch.setattr(MeView, "response_cache", False)
    plain = client.get(ME, HTTP_ACCEPT_ENCODING=accept_encoding)
    monkeypatch.setattr(MeView, "response_cache", True)
    client.get(ME, HTTP_ACCEPT_ENCODING=accept_encoding)
    cached = client.get(ME, HTTP_ACCEPT_ENCODING=accept_encoding)

    def seen(response):
        headers = _headers(response)
        if accept_encoding:
            headers.pop("Content-Length", None)
            headers.pop("Content-Encoding", None)
        return response.status_code, _plain(response), headers

    assert seen(cached) == seen(plain)


@pytest.mark.parametrize(("field", "value"), [("display_name", "Renamed"), ("bio", "new bio"), ("ghost_mode", True)])
def test_a_profile_edit_shows_at_once(cached, commit_hooks, field, value):
    with commit_hooks():
        assert cached.patch(ME, {field: value}, format="json").status_code == 200
    assert cached.get(ME).json()[field] == value


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_photo_change_and_removal_show_at_once(cached, commit_hooks, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    assert cached.first.json()["avatar_url"] is None
    with commit_hooks():
        upload = SimpleUploadedFile("a.png", _png(), content_type="image/png")
        assert cached.patch(ME, {"avatar": upload}, format="multipart").status_code == 200
    url = cached.get(ME).json()["avatar_url"]
    assert url and re.search(r"\.png$", url)
    with commit_hooks():
        assert cached.patch(ME, {"avatar": None}, format="json").status_code == 200
    assert cached.get(ME).json()["avatar_url"] is None


def test_phone_verification_shows_at_once(cached, sms_outbox, commit_hooks):
    assert cached.first.json()["is_verified"] is False
    cached.post("/api/v1/auth/phone/code/")
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1].body).group(1)
    with commit_hooks():
        assert cached.post("/api/v1/auth/phone/verify/", {"code": code}, format="json").status_code == 200
    assert cached.get(ME).json()["is_verified"] is True


def test_staff_verification_shows_at_once(cached, user, commit_hooks):
    with commit_hooks():
        services.set_verified([user.pk])
    assert cached.get(ME).json()["is_verified"] is True


def _admin_save(user_id, **changes) -> None:
    """The admin's change form, as far as its save goes: UserAdmin.save_model with the changed fields."""
    obj = User.objects.get(pk=user_id)
    for name, value in changes.items():
        setattr(obj, name, value)
    request = RequestFactory().post("/admin/accounts/user/")
    request.user = make_user(is_staff=True, is_superuser=True)
    admin.site.get_model_admin(User).save_model(request, obj, SimpleNamespace(changed_data=list(changes)), True)


def test_staff_edits_in_the_admin_show_at_once(cached, user, commit_hooks):
    with commit_hooks():
        _admin_save(user.pk, trust_level=TrustLevel.TRUSTED, phone="+12025550999", display_name="By staff")
    body = cached.get(ME).json()
    assert (body["trust_level"], body["phone"], body["display_name"]) == ("trusted", "+12025550999", "By staff")


def test_shadow_ban_and_its_lifting_bump_the_version(cached, user, commit_hooks):
    with commit_hooks():
        services.set_shadow_ban([user.pk], True)
    first = cached.get(ME)  # a miss: the version moved (me/ does not show the flag)
    assert first.status_code == 200
    assert cached.served_from_cache().content == first.content


def test_deactivation_refuses_the_cached_answer(cached, user, commit_hooks):
    with commit_hooks():
        services.deactivate_user(user.pk)
    assert cached.get(ME).status_code == 401


def test_deactivation_in_the_admin_then_reactivation(cached, user, commit_hooks):
    with commit_hooks():
        _admin_save(user.pk, is_active=False)
    assert cached.get(ME).status_code == 401
    with commit_hooks():
        _admin_save(user.pk, is_active=True, bio="back")
    fresh = client_for(User.objects.get(pk=user.pk))  # the old sessions stay revoked
    assert fresh.get(ME).json()["bio"] == "back"


def test_erasure_refuses_the_cached_answer(cached, commit_hooks):
    with commit_hooks():
        assert cached.delete(ME).status_code == 204
    assert cached.get(ME).status_code == 401


def test_erasure_by_staff_refuses_the_cached_answer(cached, user, commit_hooks):
    with commit_hooks():
        services.erase_user(user.pk)
    assert cached.get(ME).status_code == 401


def test_a_write_without_commit_hooks_would_be_stale_so_the_version_is_what_matters(cached, user):
    """Guard of this test module itself: an un-bumped write is not seen (so the tests above
    prove the bumps, not a cache that was never used)."""
    User.objects.filter(pk=user.pk).update(display_name="Unseen")
    assert cached.served_from_cache().json()["display_name"] == cached.first.json()["display_name"]
