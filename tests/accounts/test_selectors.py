"""Public profiles from the cache (one get_many round trip), and the visibility registry."""

from __future__ import annotations

import uuid

import pytest

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


def test_one_cache_round_trip_for_many_profiles(round_trips, django_assert_num_queries):
    users = [make_user() for _ in range(3)]
    selectors.get_public_profiles(user.pk for user in users)
    round_trips.clear()
    with django_assert_num_queries(0):
        assert len(selectors.get_public_profiles(user.pk for user in users)) == 3
    assert len(round_trips) == 1


def test_visible_profiles_read_the_hidden_set_and_the_profiles_in_one_round_trip(round_trips, user):
    others = [make_user() for _ in range(4)]
    services.block_user(blocker_id=others[0].pk, blocked_id=user.pk)
    expected = {other.pk for other in others[1:]}
    assert set(selectors.visible_profiles(user.pk, [o.pk for o in others])) == expected
    round_trips.clear()
    assert set(selectors.visible_profiles(user.pk, [o.pk for o in others])) == expected
    assert len(round_trips) == 1


def test_profiles_leave_out_unknown_deactivated_and_garbage_ids(django_assert_num_queries):
    active = make_user()
    inactive = make_user(is_active=False)
    ids = [active.pk, inactive.pk, uuid.uuid4(), "garbage", None]
    assert set(selectors.get_public_profiles(ids)) == {active.pk}
    with django_assert_num_queries(0):  # absent users are cached too
        assert set(selectors.get_public_profiles(ids)) == {active.pk}
    assert selectors.get_public_profiles([]) == {}
    assert selectors.get_public_profile("garbage") is None


def test_edits_invalidate_and_the_new_profile_is_cached(user, commit_hooks, django_assert_num_queries):
    selectors.get_public_profile(user.pk)
    with commit_hooks():
        services.update_profile(user.pk, display_name="New")
    with django_assert_num_queries(1):
        assert selectors.get_public_profile(user.pk)["display_name"] == "New"
    with django_assert_num_queries(0):
        assert selectors.get_public_profile(user.pk)["display_name"] == "New"


def test_a_reader_racing_an_edit_cannot_recache_the_old_profile(user, commit_hooks):
    from core.cache import keys as cachekeys

    key = selectors.profile_key(user.pk)
    slow_reader = cachekeys.read_entries([key])  # read the version before the edit
    old_entry = selectors._cached_profile(user)
    with commit_hooks():
        services.update_profile(user.pk, display_name="New")
    slow_reader.fill({key: old_entry}, 600)  # and stores the pre-edit row after it
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
        selectors.invalidate_profiles([other_user.pk])
        assert not can_view_profile(user, other_user.pk)
        assert can_view_profile(other_user, other_user.pk)
    finally:
        unregister_profile_visibility(crossed)
