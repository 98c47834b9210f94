"""blocks/ and reports/."""

from __future__ import annotations

import uuid

import pytest
from django.http import Http404

from accounts import report_targets, selectors, signals
from accounts.models import Block, UserReport
from tests.conftest import client_for
from tests.factories import make_user

pytestmark = pytest.mark.django_db

BLOCKS = "/api/v1/blocks/"
REPORTS = "/api/v1/reports/"


# ---------------------------------------------------------------------- blocks


def test_block_is_idempotent_and_signals_once(user, other_user, commit_hooks):
    events = []

    def receiver(sender, blocker_id, blocked_id, **kwargs):
        events.append((blocker_id, blocked_id))

    signals.user_blocked.connect(receiver)
    client = client_for(user)
    try:
        with commit_hooks():
            first = client.post(BLOCKS, {"user_id": str(other_user.pk)}, format="json")
            again = client.post(BLOCKS, {"user_id": str(other_user.pk)}, format="json")
    finally:
        signals.user_blocked.disconnect(receiver)
    assert first.status_code == 201, first.content
    assert again.status_code == 200
    assert first.json()["user_id"] == str(other_user.pk)
    assert set(first.json()) == {"user_id", "created_at"}  # ids only: no profile of the blocked user
    assert Block.objects.count() == 1
    assert events == [(user.pk, other_user.pk)]


def test_block_failures(user):
    client = client_for(user)
    assert client.post(BLOCKS, {"user_id": str(user.pk)}, format="json").status_code == 400
    assert client.post(BLOCKS, {"user_id": str(uuid.uuid4())}, format="json").status_code == 404
    assert client.post(BLOCKS, {"user_id": "nope"}, format="json").status_code == 400
    assert client.post(BLOCKS, {"user_id": 12}, format="json").status_code == 400
    assert client.post(BLOCKS, {"user_id": None}, format="json").status_code == 400
    assert client.post(BLOCKS, {}, format="json").status_code == 400
    assert client.post(BLOCKS, {"user_id": str(uuid.uuid4()), "why": "x"}, format="json").status_code == 400
    assert client.post(BLOCKS, b"{", content_type="application/json").status_code == 400
    assert not Block.objects.exists()


def test_block_list_is_own_newest_first_and_paginated(user, other_user):
    client = client_for(user)
    third = make_user(display_name="Carol")
    client.post(BLOCKS, {"user_id": str(other_user.pk)}, format="json")
    client.post(BLOCKS, {"user_id": str(third.pk)}, format="json")
    Block.objects.create(blocker=other_user, blocked=third)  # someone else's block
    page = client.get(BLOCKS, {"page_size": 1}).json()
    assert [item["user_id"] for item in page["results"]] == [str(third.pk)]
    assert page["next"]
    rest = client.get(page["next"]).json()
    assert [item["user_id"] for item in rest["results"]] == [str(other_user.pk)]
    assert client.get(BLOCKS, {"cursor": "garbage"}).status_code == 404


def test_unblock(user, other_user, commit_hooks):
    client = client_for(user)
    client.post(BLOCKS, {"user_id": str(other_user.pk)}, format="json")
    events = []

    def receiver(sender, blocker_id, blocked_id, **kwargs):
        events.append((blocker_id, blocked_id))

    signals.user_unblocked.connect(receiver)
    try:
        with commit_hooks():
            assert client.delete(f"{BLOCKS}{other_user.pk}/").status_code == 204
    finally:
        signals.user_unblocked.disconnect(receiver)
    assert events == [(user.pk, other_user.pk)]
    assert client.delete(f"{BLOCKS}{other_user.pk}/").status_code == 404
    assert client.delete(f"{BLOCKS}not-a-uuid/").status_code == 404
    # Only the blocker can lift a block.
    Block.objects.create(blocker=other_user, blocked=user)
    assert client.delete(f"{BLOCKS}{other_user.pk}/").status_code == 404
    assert Block.objects.count() == 1


def test_blocks_require_auth(api):
    assert api.get(BLOCKS).status_code == 401
    assert api.post(BLOCKS, {"user_id": str(uuid.uuid4())}, format="json").status_code == 401


def test_hidden_user_ids_both_ways_and_invalidated_at_once(user, other_user, commit_hooks):
    assert selectors.hidden_user_ids(user.pk) == set()  # now cached
    assert selectors.hidden_user_ids(other_user.pk) == set()
    with commit_hooks():
        client_for(user).post(BLOCKS, {"user_id": str(other_user.pk)}, format="json")
    assert selectors.hidden_user_ids(user.pk) == {other_user.pk}
    assert selectors.hidden_user_ids(str(other_user.pk)) == {user.pk}
    assert selectors.is_blocked_between(user.pk, other_user.pk)
    assert selectors.is_blocked_between(other_user.pk, user.pk)
    with commit_hooks():
        client_for(user).delete(f"{BLOCKS}{other_user.pk}/")
    assert not selectors.is_blocked_between(other_user.pk, user.pk)
    assert selectors.hidden_user_ids("garbage") == set()
    assert not selectors.is_blocked_between(user.pk, "garbage")


def test_hidden_user_ids_read_from_cache(user, other_user, django_assert_num_queries):
    Block.objects.create(blocker=other_user, blocked=user)
    assert selectors.hidden_user_ids(user.pk) == {other_user.pk}
    with django_assert_num_queries(0):
        assert selectors.hidden_user_ids(user.pk) == {other_user.pk}


def test_a_stale_reader_cannot_recache_after_a_block(user, other_user):
    """A reader that loaded the set before the block stores it under the version the block bumped."""
    from core.cache import keys as cachekeys

    key = selectors.hidden_key(user.pk)
    slow_reader = cachekeys.read_entries([key])  # reads the version, then the (pre-block) database
    Block.objects.create(blocker=user, blocked=other_user)
    selectors.bump_hidden(user.pk)  # the block's invalidation, after its commit
    slow_reader.fill({key: []}, 600)  # the slow reader's stale write
    assert selectors.hidden_user_ids(user.pk) == {other_user.pk}


# --------------------------------------------------------------------- reports


def test_report_a_user(user, other_user):
    client = client_for(user)
    response = client.post(REPORTS, {"user_id": str(other_user.pk), "reason": "spam", "details": "ads"},
                           format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "open" and body["reason"] == "spam" and body["user_id"] == str(other_user.pk)
    report = UserReport.objects.get()
    assert (report.reporter_id, report.reported_id, report.details) == (user.pk, other_user.pk, "ads")
    again = client.post(REPORTS, {"user_id": str(other_user.pk), "reason": "abuse"}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert UserReport.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"reason": "spam"}, 400),
        ({"user_id": "SELF", "reason": "spam"}, 400),
        ({"user_id": "OTHER", "reason": "boredom"}, 400),
        ({"user_id": "OTHER", "reason": 3}, 400),
        ({"user_id": "OTHER", "reason": ["spam"]}, 400),
        ({"user_id": "OTHER", "reason": "spam", "details": "d" * 2001}, 400),
        ({"user_id": "OTHER", "reason": "spam", "details": 7}, 400),
        ({"user_id": "OTHER", "reason": "spam", "story_id": "x"}, 400),
        ({"user_id": "not-a-uuid", "reason": "spam"}, 400),
        ({"user_id": "UNKNOWN", "reason": "spam"}, 404),
    ],
)
def test_report_failures(user, other_user, body, status):
    ids = {"SELF": str(user.pk), "OTHER": str(other_user.pk), "UNKNOWN": str(uuid.uuid4())}
    if body.get("user_id") in ids:
        body = {**body, "user_id": ids[body["user_id"]]}
    response = client_for(user).post(REPORTS, body, format="json")
    assert response.status_code == status, response.content
    assert not UserReport.objects.exists()


def test_report_targets_registered_by_other_apps(user):
    received = []

    def report_story(reporter_id, target_id, reason, details):
        if target_id != "story-1":
            raise Http404("No such story.")
        received.append((reporter_id, target_id, reason, details))
        return {"id": "r1", "story_id": target_id, "status": "open"}

    registered, schemas = report_targets.handlers(), report_targets.schemas()
    report_targets.register_report_target("story_id", report_story)
    try:
        client = client_for(user)
        response = client.post(REPORTS, {"story_id": "story-1", "reason": "abuse"}, format="json")
        assert response.status_code == 201
        assert response.json() == {"id": "r1", "story_id": "story-1", "status": "open"}
        assert received == [(user.pk, "story-1", "abuse", "")]
        assert client.post(REPORTS, {"story_id": "nope", "reason": "abuse"}, format="json").status_code == 404
        both = client.post(REPORTS, {"story_id": "story-1", "user_id": str(uuid.uuid4()), "reason": "spam"},
                           format="json")
        assert both.status_code == 400
    finally:
        report_targets.unregister_report_target("story_id")
        for field, handler in registered.items():  # the apps' own registrations (stories' story_id)
            request, response = schemas.get(field, (None, None))
            report_targets.register_report_target(field, handler, request=request, response=response)
    with pytest.raises(ValueError):
        report_targets.register_report_target("user_id", report_story)
