"""Which stored pings may ever match (docs/crossings.md, "matchable"): the rules ingest applies.

A ping is stored whatever it is; only a MATCHABLE one is matched.  Unverified phones, late
pings, pings too close in time or too fast between matchable neighbours, and teleports are
stored for their owner's history and never matched.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from core.geo import M_PER_DEG
from locations.models import Ping, PingStatus
from tests.conftest import client_for
from tests.factories import ingest
from tests.factories import make_verified_user as make_user

pytestmark = pytest.mark.django_db

BERLIN = (52.52, 13.405)


def statuses(user):
    return list(Ping.objects.filter(user_id=user.pk).order_by("recorded_at").values_list("status", flat=True))


def north_of(point, metres):
    return point[0] + metres / M_PER_DEG, point[1]


def test_an_unverified_phone_stores_pings_that_never_match_even_after_verifying(now):
    user = make_user(is_verified=False)
    ingest(user, (*BERLIN, now - timedelta(minutes=2)))
    user.is_verified = True
    user.save(update_fields=["is_verified"])
    ingest(user, (*north_of(BERLIN, 20), now), now=now)
    assert statuses(user) == [PingStatus.UNVERIFIED, PingStatus.MATCHABLE]


def test_a_ping_received_after_the_live_window_is_late(user, now):
    ingest(user, (*BERLIN, now - timedelta(seconds=601)), now=now)
    ingest(user, (*BERLIN, now - timedelta(seconds=500)), now=now)
    assert statuses(user) == [PingStatus.LATE, PingStatus.MATCHABLE]


@override_settings(CROSSING_LIVE_S=60)
def test_the_live_window_is_a_setting(user, now):
    ingest(user, (*BERLIN, now - timedelta(seconds=90)), now=now)
    assert statuses(user) == [PingStatus.LATE]


def test_no_one_second_floor_a_fast_sweep_is_implausible(user, now):
    """550 pings 0.1 ms apart, each 183 m further on, were all plausible with a 1 s floor."""
    pings = [(*north_of(BERLIN, 183 * i), now - timedelta(microseconds=100 * (20 - i))) for i in range(20)]
    result = ingest(user, *pings, now=now)
    assert result.implausible == 19
    assert statuses(user).count(PingStatus.MATCHABLE) == 1


def test_pings_closer_than_the_minimum_interval_are_dense(user, now):
    ingest(user, (*BERLIN, now - timedelta(seconds=60)), (*north_of(BERLIN, 10), now - timedelta(seconds=50)),
           (*north_of(BERLIN, 30), now - timedelta(seconds=25)), now=now)
    # The second is 10 s after a matchable ping; the third 25 s after the first (the last matchable).
    assert statuses(user) == [PingStatus.MATCHABLE, PingStatus.DENSE, PingStatus.MATCHABLE]


def test_a_late_ping_just_before_a_stored_one_is_dense(user, now):
    """Sending pings out of order does not get around the interval: both neighbours count."""
    ingest(user, (*BERLIN, now), now=now)
    ingest(user, (*north_of(BERLIN, 5), now - timedelta(seconds=10)), now=now)
    assert statuses(user) == [PingStatus.DENSE, PingStatus.MATCHABLE]


def test_faster_than_walking_or_cycling_is_stored_but_not_matched(user, now):
    # 1 000 m in 30 s is 120 km/h: plausible (a car), but no crossing is made at that speed.
    ingest(user, (*BERLIN, now - timedelta(seconds=30)), (*north_of(BERLIN, 1000), now), now=now)
    assert statuses(user) == [PingStatus.MATCHABLE, PingStatus.FAST]
    # 300 m in 30 s is 36 km/h: matchable, judged against the last matchable ping.
    ingest(user, (*north_of(BERLIN, 300), now + timedelta(seconds=30)), now=now + timedelta(seconds=30))
    assert statuses(user)[-1] == PingStatus.MATCHABLE


def test_speed_is_measured_across_requests_from_the_cached_last_matchable_ping(user, now):
    ingest(user, (*BERLIN, now - timedelta(seconds=30)), now=now)
    ingest(user, (*north_of(BERLIN, 1000), now), now=now)
    assert statuses(user) == [PingStatus.MATCHABLE, PingStatus.FAST]


@pytest.mark.parametrize("accuracy, expected", [(None, PingStatus.IMPLAUSIBLE), (50.0, PingStatus.DENSE)])
def test_jitter_allowance_comes_from_the_reported_accuracy(user, now, accuracy, expected):
    """100 m in one second: a teleport, unless both fixes say they may be 50 m off."""
    ingest(user, (*BERLIN, now - timedelta(seconds=1), accuracy), (*north_of(BERLIN, 100), now, accuracy), now=now)
    assert statuses(user)[-1] == expected


def test_the_jitter_allowance_is_capped(user, now):
    """A reported accuracy of 5 km does not excuse a 5 km jump in a second."""
    ingest(user, (*BERLIN, now - timedelta(seconds=1), 5000.0), (*north_of(BERLIN, 5000), now, 5000.0), now=now)
    assert statuses(user)[-1] == PingStatus.IMPLAUSIBLE


@override_settings(MATCH_MAX_SPEED_KMH=10.0, MATCH_MIN_INTERVAL_S=5.0)
def test_the_match_rules_are_settings(user, now):
    # 100 m in 30 s is 12 km/h.
    ingest(user, (*BERLIN, now - timedelta(seconds=30)), (*north_of(BERLIN, 100), now), now=now)
    assert statuses(user) == [PingStatus.MATCHABLE, PingStatus.FAST]


def test_ghost_mode_wins_over_the_other_rules(now):
    ghost = make_user(ghost_mode=True, is_verified=False)
    ingest(ghost, (*BERLIN, now), now=now)
    assert statuses(ghost) == [PingStatus.GHOST]


def test_an_erased_user_can_store_nothing(now):
    gone = make_user()
    client = client_for(gone)
    gone.delete()
    response = client.post("/api/v1/locations/",
                           {"pings": [{"lat": BERLIN[0], "lng": BERLIN[1], "recorded_at": now.isoformat()}]},
                           format="json")
    assert response.status_code == 401
    assert Ping.objects.count() == 0


def test_ingest_refuses_a_user_erased_after_authentication(now):
    """The race the API cannot rule out: the row goes between the token check and the INSERT."""
    from locations.services import UserGone

    gone = make_user()
    gone_id = gone.pk
    gone.delete()
    with pytest.raises(UserGone):
        ingest(gone_id, (*BERLIN, now), now=now)
    assert Ping.objects.count() == 0


STORED = ("city_id", "recorded_at", "lat", "lng", "accuracy_m", "status", "expires_at")


@pytest.mark.parametrize("state", [{}, {"ghost_mode": True}, {"is_verified": False}])
@pytest.mark.parametrize("accuracy", [None, 7.25])
def test_a_single_ping_is_stored_as_the_same_ping_in_a_batch(berlin, now, state, accuracy):
    """One ping goes in as a row of parameters, a batch as arrays (services._insert): same row."""
    alone, batched = make_user(**state), make_user(**state)
    ping = (*north_of(BERLIN, 30), now, accuracy)
    ingest(alone, ping, now=now)
    ingest(batched, (*BERLIN, now - timedelta(seconds=30)), ping, now=now)
    mine = Ping.objects.filter(recorded_at=now)
    assert mine.get(user_id=alone.pk).city_id == berlin.id
    assert (list(mine.filter(user_id=alone.pk).values_list(*STORED))
            == list(mine.filter(user_id=batched.pk).values_list(*STORED)))
