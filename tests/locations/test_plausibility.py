"""Spoofing: a ping implying a speed above MAX_PLAUSIBLE_SPEED_KMH is stored as implausible.

Berlin (52.52, 13.405) to Potsdam (52.39, 13.06) is about 27 km: 5 minutes apart that is
~330 km/h (implausible at the default 300), 10 minutes apart ~165 km/h (plausible).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import override_settings

from locations.models import Ping, PingStatus
from tests.conftest import client_for
from tests.factories import ingest
from tests.factories import make_verified_user as make_user

BERLIN = (52.52, 13.405)
POTSDAM = (52.39, 13.06)
NEARBY = (52.521, 13.406)  # ~130 m from BERLIN


def statuses(user):
    return list(Ping.objects.filter(user_id=user.pk).order_by("recorded_at").values_list("status", flat=True))


pytestmark = pytest.mark.django_db


def test_too_fast_within_one_batch(user, now):
    result = ingest(user, (*BERLIN, now - timedelta(minutes=5)), (*POTSDAM, now))
    assert (result.accepted, result.implausible) == (1, 1)
    assert statuses(user) == [PingStatus.MATCHABLE, PingStatus.IMPLAUSIBLE]


def test_fast_but_plausible(user, now):
    result = ingest(user, (*BERLIN, now - timedelta(minutes=10)), (*POTSDAM, now))
    assert (result.accepted, result.implausible) == (2, 0)


def test_batch_order_does_not_matter(user, now):
    result = ingest(user, (*POTSDAM, now), (*BERLIN, now - timedelta(minutes=5)))
    assert (result.accepted, result.implausible) == (1, 1)
    assert statuses(user) == [PingStatus.MATCHABLE, PingStatus.IMPLAUSIBLE]


@pytest.mark.parametrize("cold_cache", [False, True])
def test_too_fast_across_requests(user, now, cold_cache):
    ingest(user, (*BERLIN, now - timedelta(minutes=5)))
    if cold_cache:  # the previous ping then comes from the database
        cache.delete_pattern("*")
    result = ingest(user, (*POTSDAM, now))
    assert (result.accepted, result.implausible) == (0, 1)


def test_implausible_ping_is_not_the_next_reference(user, now):
    """After a spoofed ping, a ping back near the real position is plausible."""
    ingest(user, (*BERLIN, now - timedelta(minutes=6)))
    assert ingest(user, (*POTSDAM, now - timedelta(minutes=3))).implausible == 1
    assert ingest(user, (*NEARBY, now)).accepted == 1


def test_late_ping_is_checked_against_both_neighbours(user, now):
    ingest(user, (*BERLIN, now - timedelta(minutes=20)), (*BERLIN, now))
    # Recorded between the two: Potsdam 10 min from each is ~165 km/h: fine...
    assert ingest(user, (*POTSDAM, now - timedelta(minutes=10))).accepted == 1
    # ...but 2 minutes after the first and 18 before the second is not.
    late = ingest(user, (*POTSDAM, now - timedelta(minutes=18)))
    assert (late.accepted, late.implausible) == (0, 1)


def test_late_ping_too_fast_towards_the_next_one(user, now):
    ingest(user, (*BERLIN, now))
    late = ingest(user, (*POTSDAM, now - timedelta(minutes=2)))
    assert late.implausible == 1


def test_gps_jitter_is_not_spoofing(user, now):
    """50 m in one second is 180 km/h, but within the jitter allowance."""
    result = ingest(user, (*BERLIN, now - timedelta(seconds=1)), (52.52045, 13.405, now))
    assert result.implausible == 0


def test_users_are_checked_separately(user, other_user, now):
    ingest(user, (*BERLIN, now - timedelta(minutes=1)))
    assert ingest(other_user, (*POTSDAM, now)).implausible == 0


@override_settings(MAX_PLAUSIBLE_SPEED_KMH=100.0)
def test_speed_limit_is_a_setting(user, now):
    assert ingest(user, (*BERLIN, now - timedelta(minutes=10)), (*POTSDAM, now)).implausible == 1


def test_ghost_mode_pings_are_stored_but_not_matchable(now):
    ghost = make_user(ghost_mode=True)
    result = ingest(ghost, (*BERLIN, now - timedelta(minutes=5)), (*POTSDAM, now))
    assert (result.accepted, result.implausible) == (1, 1)
    assert statuses(ghost) == [PingStatus.GHOST, PingStatus.IMPLAUSIBLE]


def test_implausible_counted_in_api_response(user, now):
    client = client_for(user)
    body = {"pings": [
        {"lat": BERLIN[0], "lng": BERLIN[1], "recorded_at": (now - timedelta(minutes=5)).isoformat()},
        {"lat": POTSDAM[0], "lng": POTSDAM[1], "recorded_at": now.isoformat()},
    ]}
    response = client.post("/api/v1/locations/", body, format="json")
    assert response.status_code == 201
    assert response.json() == {"accepted": 1, "implausible": 1}


def test_cached_last_ping_stays_the_newest_accepted_one(user, now):
    from core.cache.client import redis_client
    from locations.services import _Last, _last_ping_key

    def cached():
        return _Last.decode(redis_client().get(_last_ping_key(user.pk))).accepted.recorded_at

    ingest(user, (*BERLIN, now - timedelta(minutes=1)))
    assert cached() == now - timedelta(minutes=1)
    ingest(user, (*BERLIN, now - timedelta(minutes=10)))  # late: does not move it back
    assert cached() == now - timedelta(minutes=1)
    assert ingest(user, (*POTSDAM, now)).implausible == 1  # implausible: not the reference
    assert cached() == now - timedelta(minutes=1)
    ingest(user, (*NEARBY, now))
    assert cached() == now


def test_a_retried_batch_is_not_stored_twice(user, now):
    """A client that did not see the answer sends the same batch again."""
    batch = [(*BERLIN, now - timedelta(minutes=5)), (*POTSDAM, now - timedelta(minutes=4)), (*NEARBY, now)]
    first = ingest(user, *batch)
    again = ingest(user, *batch)
    assert (again.accepted, again.implausible) == (first.accepted, first.implausible) == (2, 1)
    assert Ping.objects.filter(user_id=user.pk).count() == 3
    partly = ingest(user, batch[-1], (*NEARBY, now + timedelta(seconds=30)))
    assert (partly.accepted, partly.implausible) == (2, 0)
    assert Ping.objects.filter(user_id=user.pk).count() == 4


@pytest.mark.parametrize(
    "stale_value", [b"1764140000.5,52.52,13.405", b"garbage", b"1764140000,52.52,13.405", b"\xff\xfe"]
)
def test_an_unreadable_cached_last_ping_falls_back_to_the_database(user, now, stale_value):
    """A value left by an older release (seconds, not microseconds) or a damaged one is
    not trusted: the request succeeds and plausibility is judged from the stored pings."""
    from core.cache.client import redis_client
    from locations.services import _last_ping_key

    ingest(user, (*BERLIN, now - timedelta(minutes=5)))
    redis_client().set(_last_ping_key(user.pk), stale_value, ex=600)
    response = client_for(user).post(
        "/api/v1/locations/", {"pings": [{"lat": POTSDAM[0], "lng": POTSDAM[1], "recorded_at": now.isoformat()}]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json() == {"accepted": 0, "implausible": 1}
