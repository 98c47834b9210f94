"""me/ (read, edit, erase) and users/{id}/ with the visibility rules."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts import selectors, services, signals
from accounts.models import Block, Session, User, UserReport
from accounts.visibility import register_profile_visibility, unregister_profile_visibility
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"


def _png(size=(8, 8), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage"}}
    return tmp_path


# ------------------------------------------------------------------------- me


def test_me_shows_own_account(user):
    body = client_for(user).get(ME).json()
    assert body["id"] == str(user.pk)
    assert body["phone"] == user.phone
    assert body["display_name"] == "Alice"
    assert body["ghost_mode"] is False
    assert body["trust_level"] == "new"


def test_me_output_is_what_the_documented_serializer_gives(user, media_root):
    from accounts.api.serializers import MeSerializer, me_out

    services.update_profile(user.pk, bio="hi", avatar=SimpleUploadedFile("a.png", _png(), "image/png"))
    User.objects.filter(pk=user.pk).update(is_verified=True, ghost_mode=True, trust_level=2)
    user.refresh_from_db()
    assert me_out(user) == dict(MeSerializer(user).data)
    assert client_for(user).get(ME).json() == dict(MeSerializer(user).data)


def test_patch_me_updates_fields_and_the_profile_cache(user, commit_hooks):
    client = client_for(user)
    assert selectors.get_public_profile(user.pk)["display_name"] == "Alice"
    with commit_hooks():
        response = client.patch(ME, {"display_name": "Alicia", "bio": "Walks a lot.", "ghost_mode": True},
                                format="json")
    assert response.status_code == 200, response.content
    assert response.json()["display_name"] == "Alicia"
    user.refresh_from_db()
    assert (user.display_name, user.bio, user.ghost_mode) == ("Alicia", "Walks a lot.", True)
    assert selectors.get_public_profile(user.pk)["display_name"] == "Alicia"


def test_patch_me_sends_profile_changed(user):
    seen = []

    def receiver(sender, user_id, **kwargs):
        seen.append(user_id)

    signals.profile_changed.connect(receiver)
    try:
        client_for(user).patch(ME, {"bio": "hi"}, format="json")
    finally:
        signals.profile_changed.disconnect(receiver)
    assert seen == [user.pk]


@pytest.mark.parametrize(
    "body",
    [
        {"display_name": ""},
        {"display_name": 5},
        {"display_name": "a" * 51},
        {"display_name": "tab\there"},
        {"bio": "b" * 301},
        {"bio": None},
        {"ghost_mode": "yes"},
        {"ghost_mode": 1},
        {"phone": "+12025550111"},
        {"is_staff": True},
        {"is_verified": True},
        {"avatar": "not a file"},
    ],
)
def test_patch_me_rejects_bad_input(user, body):
    response = client_for(user).patch(ME, body, format="json")
    assert response.status_code == 400, response.content
    user.refresh_from_db()
    assert user.display_name == "Alice" and not user.is_staff and not user.is_verified


def test_patch_me_rejects_non_object_and_malformed_json(user):
    client = client_for(user)
    assert client.patch(ME, b"[]", content_type="application/json").status_code == 400
    assert client.patch(ME, b"{", content_type="application/json").status_code == 400


def test_broken_multipart_and_odd_bodies_are_4xx(user):
    client = client_for(user)
    broken = client.generic("PATCH", ME, b"--xyz\r\nContent-Disposition: form-data; name=\"bio\"\r\n\r\nhi",
                            content_type="multipart/form-data; boundary=xyz")
    assert broken.status_code in (200, 400)  # Django's parser is lenient with a missing end
    no_boundary = client.generic("PATCH", ME, b"bio=hi", content_type="multipart/form-data")
    assert no_boundary.status_code == 400
    deep = b"[" * 100_000 + b"]" * 100_000
    assert client.patch(ME, deep, content_type="application/json").status_code == 400
    assert client.patch(ME, b"bio=hi", content_type="application/x-www-form-urlencoded").status_code == 415


def test_put_is_not_allowed(user):
    assert client_for(user).put(ME, {"display_name": "X"}, format="json").status_code == 405


def test_avatar_upload_replace_and_clear(user, media_root, commit_hooks):
    client = client_for(user)
    upload = SimpleUploadedFile("me.png", _png(), content_type="image/png")
    with commit_hooks():
        response = client.patch(ME, {"avatar": upload}, format="multipart")
    assert response.status_code == 200, response.content
    url = response.json()["avatar_url"]
    assert url and url.endswith(".png")
    user.refresh_from_db()
    first = user.avatar.name
    assert (media_root / first).exists()
    assert selectors.get_public_profile(user.pk)["avatar_url"] == url

    with commit_hooks():
        jpeg = SimpleUploadedFile("me.jpg", _png(fmt="JPEG"), content_type="image/jpeg")
        assert client.patch(ME, {"avatar": jpeg}, format="multipart").status_code == 200
    user.refresh_from_db()
    assert user.avatar.name.endswith(".jpg")
    assert not (media_root / first).exists()  # the replaced file is deleted after commit

    with commit_hooks():
        response = client.patch(ME, {"avatar": None}, format="json")
    assert response.status_code == 200
    assert response.json()["avatar_url"] is None


def test_avatar_must_be_a_real_image_of_sane_size(user, media_root, monkeypatch):
    from accounts.api import serializers

    monkeypatch.setattr(serializers, "AVATAR_MAX_PIXELS", 32 * 32)
    client = client_for(user)
    fake = SimpleUploadedFile("me.png", b"\x89PNG not really", content_type="image/png")
    response = client.patch(ME, {"avatar": fake}, format="multipart")
    assert response.status_code == 400
    assert "avatar" in response.json()["fields"]
    bmp = SimpleUploadedFile("me.bmp", _png(fmt="BMP"), content_type="image/bmp")
    assert client.patch(ME, {"avatar": bmp}, format="multipart").status_code == 400
    huge_pixels = SimpleUploadedFile("big.png", _png(size=(40, 30)), content_type="image/png")
    assert client.patch(ME, {"avatar": huge_pixels}, format="multipart").status_code == 400
    assert client.patch(ME, {"avatar": SimpleUploadedFile("e.png", b"", content_type="image/png")},
                        format="multipart").status_code == 400
    assert not User.objects.get(pk=user.pk).avatar


def test_oversized_upload_is_413(user, media_root):
    from accounts.api.serializers import AVATAR_MAX_BYTES

    blob = SimpleUploadedFile("big.png", b"\0" * (AVATAR_MAX_BYTES + 128 * 1024), content_type="image/png")
    response = client_for(user).patch(ME, {"avatar": blob}, format="multipart")
    assert response.status_code == 413


def test_delete_me_erases_the_account(user, other_user, commit_hooks):
    client = client_for(user)
    Block.objects.create(blocker=user, blocked=other_user)
    about_me = UserReport.objects.create(reporter=other_user, reported=user, reason="spam", details="spams")
    mine = UserReport.objects.create(reporter=user, reported=other_user, reason="abuse")
    selectors.get_public_profile(user.pk)
    seen = []

    def receiver(sender, user_id, **kwargs):
        seen.append((user_id, User.objects.filter(pk=user_id).exists()))

    signals.user_erasing.connect(receiver)
    try:
        with commit_hooks():
            response = client.delete(ME)
    finally:
        signals.user_erasing.disconnect(receiver)
    assert response.status_code == 204
    assert seen == [(user.pk, True)]  # sent while the row still exists
    assert not User.objects.filter(pk=user.pk).exists()
    assert not Session.objects.filter(user_id=user.pk).exists()
    assert not Block.objects.exists()
    # Reports stay, anonymised: the erased side is NULL, the text is kept.
    about_me.refresh_from_db()
    mine.refresh_from_db()
    assert (about_me.reported_id, about_me.reporter_id, about_me.details) == (None, other_user.pk, "spams")
    assert (mine.reporter_id, mine.reported_id) == (None, other_user.pk)
    assert selectors.get_public_profile(user.pk) is None
    assert selectors.hidden_user_ids(other_user.pk) == set()
    assert client.get(ME).status_code == 401


def test_me_requires_auth(api):
    assert api.get(ME).status_code == 401
    assert api.patch(ME, {"bio": "x"}, format="json").status_code == 401
    assert api.delete(ME).status_code == 401


# ---------------------------------------------------------------- users/{id}/


@pytest.fixture
def everyone_visible():
    def rule(viewer_id, target_id):
        return True

    register_profile_visibility(rule)
    register_profile_visibility(rule)  # registering twice is harmless
    yield rule
    unregister_profile_visibility(rule)


def _profile_url(user) -> str:
    return f"/api/v1/users/{user.pk}/"


def test_own_profile_is_visible_and_has_no_phone(user):
    response = client_for(user).get(_profile_url(user))
    assert response.status_code == 200
    assert response.json() == {"id": str(user.pk), "display_name": "Alice", "bio": "",
                               "avatar_url": None, "is_verified": False}


def test_others_are_404_unless_a_rule_widens_it(user, other_user, everyone_visible):
    unregister_profile_visibility(everyone_visible)
    assert client_for(user).get(_profile_url(other_user)).status_code == 404
    register_profile_visibility(everyone_visible)
    response = client_for(user).get(_profile_url(other_user))
    assert response.status_code == 200
    assert "phone" not in response.json()


def test_staff_see_profiles(user, staff_user):
    assert client_for(staff_user).get(_profile_url(user)).status_code == 200


def test_a_rule_is_given_the_two_ids(user, other_user):
    calls = []

    def rule(viewer_id, target_id):
        calls.append((viewer_id, target_id))
        return False

    register_profile_visibility(rule)
    try:
        assert client_for(user).get(_profile_url(other_user)).status_code == 404
    finally:
        unregister_profile_visibility(rule)
    assert calls == [(user.pk, other_user.pk)]


def test_blocks_hide_profiles_both_ways_even_from_rules(user, other_user, everyone_visible, commit_hooks):
    alice, bob = client_for(user), client_for(other_user)
    assert alice.get(_profile_url(other_user)).status_code == 200  # cached hidden-set: empty
    with commit_hooks():
        assert alice.post("/api/v1/blocks/", {"user_id": str(other_user.pk)}, format="json").status_code == 201
    assert alice.get(_profile_url(other_user)).status_code == 404
    assert bob.get(_profile_url(user)).status_code == 404
    with commit_hooks():
        assert alice.delete(f"/api/v1/blocks/{other_user.pk}/").status_code == 204
    assert alice.get(_profile_url(other_user)).status_code == 200
    assert bob.get(_profile_url(user)).status_code == 200


def test_shadow_banned_visible_only_to_self_and_staff(user, other_user, staff_user, everyone_visible,
                                                     commit_hooks):
    with commit_hooks():
        services.set_shadow_ban([other_user.pk], True)
    assert client_for(user).get(_profile_url(other_user)).status_code == 404
    assert client_for(other_user).get(_profile_url(other_user)).status_code == 200
    assert client_for(staff_user).get(_profile_url(other_user)).status_code == 200


def test_deactivated_and_unknown_users_are_404(user, other_user, staff_user, everyone_visible, commit_hooks):
    with commit_hooks():
        services.deactivate_user(other_user.pk)
    assert client_for(user).get(_profile_url(other_user)).status_code == 404
    assert client_for(staff_user).get(_profile_url(other_user)).status_code == 404
    client = client_for(user)
    assert client.get("/api/v1/users/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/api/v1/users/not-a-uuid/").status_code == 404
    assert client.get("/api/v1/users/%F0%9F%98%80/").status_code == 404
    assert client.get(f"/api/v1/users/{other_user.pk}/").json() == {"detail": "No such user.", "code": "not_found"}
