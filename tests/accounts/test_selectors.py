"""Public profiles from the cache (one get_many round trip), and the visibility registry."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache

from accounts import selectors, services
from accounts.models import User
from accounts.visibility import can_view_profile, register_profile_visibility, unregister_profile_visibility
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_get_public_profiles_fills_misses_with_one_query_then_reads_the_cache(django_assert_num_queries):
    users = [make_user(display_name=f"P{i}") for i in range(5)]
    ids = [user.pk for user in users]
    with django_assert_num_queries(1):
        profiles = selectors.get_public_profiles(ids)
    assert set(profiles) == set(ids)
    assert profiles[ids[0]] == {"id": str(ids[0]), "display_name": "P0", "bio": "", "avatar_url": None,
                                "is_verified": False}
    with django_assert_num_queries(0):
        assert selectors.get_public_profiles([str(uid) for uid in ids]) == profiles


def test_one_cache_round_trip_for_many_profiles(monkeypatch):
    users = [make_user() for _ in range(3)]
    selectors.get_public_profiles(user.pk for user in users)
    calls = []
    original = cache.get_many
    monkeypatch.setattr(cache, "get_many", lambda keys: calls.append(len(keys)) or original(keys))
    monkeypatch.setattr(cache, "get", lambda *a, **k: pytest.fail("one key at a time"))
    selectors.get_public_profiles(user.pk for user in users)
    assert calls == [3]


def test_profiles_leave_out_unknown_deactivated_and_garbage_ids(django_assert_num_queries):
    active = make_user()
    inactive = make_user(is_active=False)
    ids = [active.pk, inactive.pk, uuid.uuid4(), "garbage", None]
    assert set(selectors.get_public_profiles(ids)) == {active.pk}
    with django_assert_num_queries(0):  # absent users are cached too
        assert set(selectors.get_public_profiles(ids)) == {active.pk}
    assert selectors.get_public_profiles([]) == {}
    assert selectors.get_public_profile("garbage") is None


def test_edits_invalidate_and_a_stale_marker_is_not_recached(user, commit_hooks, django_assert_num_queries):
    selectors.get_public_profile(user.pk)
    with commit_hooks():
        services.update_profile(user.pk, display_name="New")
    # Readers meeting the stale marker read the database and leave the marker in place...
    for _ in range(2):
        with django_assert_num_queries(1):
            assert selectors.get_public_profile(user.pk)["display_name"] == "New"
    # ...until it expires, after which the profile is cached again.
    cache.delete(selectors._profile_key(user.pk))
    selectors.get_public_profile(user.pk)
    with django_assert_num_queries(0):
        assert selectors.get_public_profile(user.pk)["display_name"] == "New"


def test_deactivation_and_verification_invalidate(user, commit_hooks):
    selectors.get_public_profile(user.pk)
    with commit_hooks():
        services.set_verified([user.pk])
    assert selectors.get_public_profile(user.pk)["is_verified"] is True
    with commit_hooks():
        services.deactivate_user(user.pk)
    assert selectors.get_public_profile(user.pk) is None


def test_visible_profiles_for_lists(user, other_user, commit_hooks):
    banned = make_user(is_shadow_banned=True)
    blocked = make_user()
    services.block_user(blocker_id=blocked.pk, blocked_id=user.pk)
    ids = [user.pk, other_user.pk, banned.pk, blocked.pk]
    assert set(selectors.visible_profiles(user.pk, ids)) == {user.pk, other_user.pk}
    assert set(selectors.visible_profiles(banned.pk, ids)) == {user.pk, other_user.pk, banned.pk, blocked.pk}


def test_can_view_profile_rules(user, other_user, staff_user):
    assert can_view_profile(user, user.pk)
    assert not can_view_profile(user, other_user.pk)
    assert can_view_profile(staff_user, other_user.pk)
    assert not can_view_profile(None, user.pk)
    assert not can_view_profile(user, "garbage")

    def crossed(viewer_id, target_id):
        return {viewer_id, target_id} == {user.pk, other_user.pk}

    register_profile_visibility(crossed)
    try:
        assert can_view_profile(user, other_user.pk)
        assert can_view_profile(other_user, str(user.pk))
        User.objects.filter(pk=other_user.pk).update(is_shadow_banned=True)
        cache.delete(selectors._profile_key(other_user.pk))
        assert not can_view_profile(user, other_user.pk)
        assert can_view_profile(other_user, other_user.pk)
    finally:
        unregister_profile_visibility(crossed)
