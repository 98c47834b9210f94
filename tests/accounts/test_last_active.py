"""Periodic upkeep: last_active_at as a hot counter (marked in Redis, flushed in batched
UPDATEs) and the purge of ended sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services, tasks
from accounts.models import User
from core.cache.client import redis_client
from tests.conftest import client_for
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _pending() -> dict:
    _, pending, _ = services.active_keys()
    return {key.decode(): float(value) for key, value in redis_client().hgetall(pending).items()}


def test_requests_mark_activity_in_redis_not_in_the_database(user, django_assert_max_num_queries):
    client = client_for(user)
    # One query per request (the blocks page): the token needs no user row, and the
    # activity mark goes to Redis.
    with django_assert_max_num_queries(3) as captured:
        for _ in range(3):
            assert client.get("/api/v1/blocks/").status_code == 200
    assert not [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert str(user.pk) in _pending()
    assert User.objects.get(pk=user.pk).last_active_at is None


def test_at_most_one_mark_a_minute_even_across_processes(user):
    assert services.mark_active(user.pk) is True
    assert services.mark_active(user.pk) is False  # the in-process memo
    services.local_marks.clear()  # another process: only the Redis guard stops it
    assert services.mark_active(user.pk) is False
    assert len(_pending()) == 1


def test_flush_writes_every_pending_mark_in_batches(user, other_user):
    users = [user, other_user, *(make_user() for _ in range(5))]
    for each in users:
        services.mark_active(each.pk)
    assert services.flush_last_active(batch_size=3) == len(users)
    now = timezone.now()
    for each in User.objects.filter(pk__in=[u.pk for u in users]):
        assert each.last_active_at is not None
        assert now - each.last_active_at < timedelta(minutes=1)
    assert _pending() == {}
    assert services.flush_last_active() == 0  # nothing pending


def test_flush_never_moves_time_backwards_and_survives_junk(user):
    later = timezone.now() + timedelta(hours=1)
    User.objects.filter(pk=user.pk).update(last_active_at=later)
    services.mark_active(user.pk)
    _, pending, _ = services.active_keys()
    redis_client().hset(pending, "not-a-uuid", "123")
    redis_client().hset(pending, "00000000-0000-0000-0000-000000000001", "oops")
    assert services.flush_last_active() == 0
    assert User.objects.get(pk=user.pk).last_active_at == later


def test_a_half_done_flush_is_finished_by_the_next(user, other_user):
    services.mark_active(user.pk)
    _, pending, flushing = services.active_keys()
    redis_client().rename(pending, flushing)  # a flush died after taking the batch
    services.mark_active(other_user.pk)  # new marks keep arriving
    assert services.flush_last_active() == 1  # the left-over batch first
    assert User.objects.get(pk=user.pk).last_active_at is not None
    assert services.flush_last_active() == 1
    assert User.objects.get(pk=other_user.pk).last_active_at is not None


def test_the_celery_task_and_beat_entry(user):
    from config.celery import BEAT_SCHEDULE

    entry = BEAT_SCHEDULE["flush-last-active"]
    assert entry["task"] == tasks.flush_last_active.name == "accounts.tasks.flush_last_active"
    assert entry["schedule"] == 60.0
    services.mark_active(user.pk)
    assert tasks.flush_last_active.apply().get() == 1
    assert User.objects.get(pk=user.pk).last_active_at is not None


def test_purge_ended_sessions_and_dead_codes(user, sms_outbox):
    from accounts.models import PhoneCode, Session
    from config.celery import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["purge-ended-sessions"]["task"] == tasks.purge_ended_sessions.name
    live, _, _ = services.open_session(user)
    revoked, _, _ = services.open_session(user)
    services.revoke_session(revoked.pk)
    revoked.refresh_from_db()
    assert revoked.expires_at <= timezone.now()  # revoking ends the expiry too
    old, _, _ = services.open_session(user)
    Session.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=8))
    services.send_phone_code(user)
    PhoneCode.objects.update(expires_at=timezone.now() - timedelta(days=2))
    assert tasks.purge_ended_sessions.apply().get() == 2
    assert set(Session.objects.values_list("pk", flat=True)) == {live.pk, revoked.pk}
    assert not PhoneCode.objects.exists()
