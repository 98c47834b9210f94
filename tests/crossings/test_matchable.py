"""Who may be crossed, judged when the detector runs (docs/crossings.md): user state now,
blocks now, the daily cap of new people, records written only when an encounter starts,
and no row state that stops the batch for everyone else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts.models import Block
from crossings.detection import run as detector
from crossings.detection.run import run_detection
from crossings.models import Crossing
from tests.factories import ingest, make_city
from tests.factories import make_verified_user as make_user

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

SPOT = (52.52, 13.405)


@pytest.fixture(autouse=True)
def berlin(db):
    return make_city()


def meet(*users, at=None, dx_m=5):
    """Each user pings at SPOT (a few metres apart), 20 s after the previous one."""
    at = at or timezone.now() - timedelta(minutes=1)
    for i, user in enumerate(users):
        ingest(user, (SPOT[0], SPOT[1] + i * dx_m / 68_000, at + timedelta(seconds=20 * i)))


def pairs():
    return {frozenset((str(c.user_low_id), str(c.user_high_id))) for c in Crossing.objects.all()}


def pair(a, b):
    return frozenset((str(a.pk), str(b.pk)))


def sample(name, **labels):
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_unverified_users_are_never_crossed_not_even_after_verifying():
    victim, stranger = make_user(), make_user(is_verified=False)
    meet(victim, stranger)
    stranger.is_verified = True
    stranger.save(update_fields=["is_verified"])
    run_detection()
    assert pairs() == set()


@pytest.mark.parametrize("state", [{"ghost_mode": True}, {"is_shadow_banned": True}, {"is_active": False}])
def test_a_state_taken_after_the_pings_hides_the_pings_already_stored(state):
    victim, other, witness = make_user(), make_user(), make_user()
    meet(victim, other, witness)
    for name, value in state.items():
        setattr(victim, name, value)
    victim.save()
    run_detection()
    assert pairs() == {pair(other, witness)}


def test_a_block_before_detection_means_no_crossing_for_that_pair_only():
    a, b, c = make_user(), make_user(), make_user()
    meet(a, b, c)
    Block.objects.create(blocker=b, blocked=a)
    skipped = sample("crossings_detector_skipped_total", reason="blocked")
    run_detection()
    assert pairs() == {pair(a, c), pair(b, c)}
    assert sample("crossings_detector_skipped_total", reason="blocked") == skipped + 1


def test_a_user_erased_while_detection_runs_stops_nobody_elses_crossings(monkeypatch):
    a, b, doomed = make_user(), make_user(), make_user()
    meet(a, doomed, b)
    store = detector.store_encounters

    def erase_then_store(cursor, enc, users, *args, **kwargs):
        with connection.cursor() as other:  # the same transaction: the row is gone for the store
            other.execute("DELETE FROM users WHERE id = %s", [doomed.pk])
        return store(cursor, enc, users, *args, **kwargs)

    monkeypatch.setattr(detector, "store_encounters", erase_then_store)
    gone = sample("crossings_detector_skipped_total", reason="user_gone")
    result = run_detection()
    assert not result.skipped
    assert pairs() == {pair(a, b)}
    assert sample("crossings_detector_skipped_total", reason="user_gone") == gone + 2


@override_settings(CROSSINGS_NEW_PER_DAY=2)
def test_one_account_gains_at_most_the_daily_cap_of_new_people():
    walker = make_user()
    others = [make_user() for _ in range(4)]
    start = timezone.now() - timedelta(minutes=50)
    capped = sample("crossings_new_pairs_capped_total")
    # The walker meets them one after the other, 11 minutes and 1 km apart (about 5 km/h):
    # the others are never near each other within the window.
    for i, other in enumerate(others):
        at = start + timedelta(minutes=11 * i)
        ingest(walker, (SPOT[0] + i * 0.009, SPOT[1], at))
        ingest(other, (SPOT[0] + i * 0.009, SPOT[1], at + timedelta(seconds=30)))
    run_detection()
    assert pairs() == {pair(walker, others[0]), pair(walker, others[1])}
    assert sample("crossings_new_pairs_capped_total") == capped + 2
    # Known people do not count again: meeting the first one again still records.
    meet(walker, others[0], at=timezone.now() - timedelta(seconds=30))
    run_detection()
    assert pairs() == {pair(walker, others[0]), pair(walker, others[1])}


def test_walking_together_writes_the_record_once():
    a, b = make_user(), make_user()
    start = timezone.now() - timedelta(minutes=9)
    meet(a, b, at=start)
    run_detection()
    first = Crossing.objects.get()
    for minute in range(1, 8):  # seven more detector runs while they walk on together
        meet(a, b, at=start + timedelta(minutes=minute))
        result = run_detection()
        assert (result.changed, result.written) == (0, 0)
    again = Crossing.objects.get()
    assert (again.updated_at, again.last_crossed_at, again.times) == (first.updated_at, first.last_crossed_at, 1)


@override_settings(CROSSING_REPEAT_GAP_S=900, CROSSING_END_SLACK_S=300, CROSSING_LIVE_S=7200)
def test_an_encounter_that_goes_on_past_the_slack_refreshes_its_end_without_a_visible_change():
    a, b = make_user(), make_user()
    start = timezone.now() - timedelta(minutes=40)
    for minute in range(0, 12, 2):  # 10 minutes together: the end moves past the 5-minute slack
        meet(a, b, at=start + timedelta(minutes=minute))
        run_detection()
    record = Crossing.objects.get()
    assert record.times == 1 and record.last_crossed_at == record.first_crossed_at
    assert record.encounter_ends[-1] - record.encounter_starts[-1] >= 300 * 1_000_000


@override_settings(CROSSING_REPEAT_GAP_S=900, CROSSING_END_SLACK_S=300, CROSSING_LIVE_S=7200)
def test_a_lagging_stored_end_never_splits_an_encounter():
    """The stored end lags the true one by up to the slack; a match within the repeat gap of
    the true end (but not of the stored one) continues the encounter, as the definition says."""
    a, b = make_user(), make_user()
    start = timezone.now() - timedelta(minutes=60)
    meet(a, b, at=start)
    run_detection()
    meet(a, b, at=start + timedelta(minutes=4))  # within the slack: not written
    run_detection()
    assert Crossing.objects.get().encounter_ends[-1] < int((start + timedelta(minutes=3)).timestamp() * 1e6)
    # 16 minutes after the stored end, 12 after the true one (gap 15): the same encounter.
    meet(a, b, at=start + timedelta(minutes=16))
    run_detection()
    assert Crossing.objects.get().times == 1
    # 16 minutes after the true end: a new encounter.
    meet(a, b, at=start + timedelta(minutes=32, seconds=30))
    run_detection()
    record = Crossing.objects.get()
    assert record.times == 2
    assert record.last_crossed_at > start + timedelta(minutes=32)
