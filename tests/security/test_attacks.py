"""Attacks on the crossings feature through the public API, against a live server
(docs/crossings.md, "The threat model"; measured figures in docs/privacy.md).

Set ``ATTACK_REPORT=1`` to print the figures (error per victim, accounts, requests).
"""

from __future__ import annotations

import math
import os
import random
import statistics
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings

from accounts import services as account_services
from crossings.detection.core import Cells
from tests.factories import ingest, make_city, make_verified_user
from tests.security.attacks import Attacker, Bisection, detect_all, error_m, minutes_ago, now, offset

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

BERLIN = (52.52, 13.405)


def report(line: str) -> None:
    if os.environ.get("ATTACK_REPORT"):
        print(line)


@pytest.fixture
def attacker(live_server):
    make_city("berlin", lat=BERLIN[0], lng=BERLIN[1], radius_km=25.0)
    return Attacker(live_server.url)


def victim_at(point, at=None):
    victim = make_verified_user()
    ingest(victim, (*point, at or minutes_ago(1)))
    return victim


@pytest.mark.slow
def test_unverified_accounts_learn_nothing(attacker):
    """The bisection attack with 100 throw-away accounts and no SIM: no crossing at all."""
    victim = victim_at(BERLIN)
    at = now()
    accounts = []
    for i in range(100):
        account = attacker.account(verified=False)
        angle, distance = i * 0.7, 5 + (i % 10) * 30
        point = offset(BERLIN, distance * math.cos(angle), distance * math.sin(angle))
        assert attacker.ping(account, [(*point, at)]).status_code == 201
        accounts.append(account)
    detect_all()
    assert all(attacker.crossed(account) == set() for account in accounts)
    assert victim.pk


@pytest.mark.slow
def test_verified_accounts_locate_nobody_better_than_their_cell(attacker):
    """The same attack with verified accounts (SIMs): over victims at random positions the
    median error is at least a quarter of a cell, and moving a victim inside its cell changes
    nothing the attacker sees."""
    cell = settings.CROSSING_CELL_M
    rng = random.Random(20261201)
    errors = []
    for _ in range(12):
        truth = offset(BERLIN, rng.uniform(-3000, 3000), rng.uniform(-3000, 3000))
        victim = victim_at(truth)
        # The attacker knows the neighbourhood (a few hundred metres), not the spot: the test
        # measures what the crossings add to that, not what the attacker knew.
        guess = offset(truth, rng.uniform(-250, 250), rng.uniform(-250, 250))
        estimate = Bisection(attacker, str(victim.pk), guess, rounds=6).run(now())
        errors.append(error_m(estimate, truth))
        report(f"victim at {truth[0]:.6f},{truth[1]:.6f}: estimated {errors[-1]:.1f} m away")
    report(f"median error {statistics.median(errors):.1f} m over {len(errors)} victims; "
           f"{attacker.accounts} accounts, {attacker.request_count} requests")
    assert statistics.median(errors) >= cell / 4


@pytest.mark.slow
def test_the_attacker_cannot_tell_two_positions_in_one_cell_apart(attacker):
    cells = Cells(settings.CROSSING_CELL_M)

    def cell(point):
        row, col = cells.cell_of([point[0]], [point[1]])
        return int(row[0]), int(col[0])

    a = offset(BERLIN, 1234.0, -777.0)
    b = next(p for p in (offset(a, dx, dy) for dx, dy in ((40, 40), (-40, -40), (40, -40), (-40, 40)))
             if cell(p) == cell(a))
    estimates = []
    for truth in (a, b):
        victim = victim_at(truth)
        estimates.append(Bisection(attacker, str(victim.pk), offset(a, 20.0, 20.0), rounds=6).run(now()))
    assert estimates[0] == estimates[1]


def test_a_backdated_sweep_crosses_nobody(attacker):
    """One account, pings dated 50 minutes back (as a sweep of the city's recent past)."""
    victims = [victim_at(offset(BERLIN, 40.0 * i, 0.0), at=minutes_ago(50)) for i in range(20)]
    sweeper = attacker.account(verified=True)
    start = minutes_ago(50)
    for part in range(4):
        pings = [(*offset(BERLIN, 40.0 * i, 0.0), start + timedelta(milliseconds=i + 100 * part)) for i in range(20)]
        assert attacker.ping(sweeper, pings).status_code == 201
    detect_all()
    assert attacker.crossed(sweeper) == set()
    assert victims


def test_a_fast_sweep_crosses_nobody(attacker):
    """Pings a millisecond apart, or spaced out but faster than 60 km/h, cross nobody beyond
    what their first ping (judged like anyone's single ping) may."""
    victims = [victim_at(offset(BERLIN, 1000.0 * i, 0.0)) for i in range(6)]
    burst, drive = attacker.account(verified=True), attacker.account(verified=True)
    at = minutes_ago(1)
    attacker.ping(burst, [(*offset(BERLIN, 1000.0 * i, 0.0), at + timedelta(milliseconds=i)) for i in range(6)])
    # 1 km every 25 s is 144 km/h: plausible (a car), not matchable.
    attacker.ping(drive, [(*offset(BERLIN, 1000.0 * i, 0.0), at - timedelta(seconds=25 * (6 - i)))
                          for i in range(6)])
    detect_all()
    first, everyone = {str(victims[0].pk)}, {str(v.pk) for v in victims}
    assert attacker.crossed(burst) & everyone <= first
    assert attacker.crossed(drive) & everyone <= first


def test_ghost_mode_turned_on_after_the_fact_hides_the_pings_already_stored(attacker):
    victim = victim_at(BERLIN, at=minutes_ago(3))
    _session, access, _ = account_services.open_session(victim)
    response = attacker.session.patch(f"{attacker.base_url}/api/v1/me/", json={"ghost_mode": True},
                                      headers={"Authorization": f"Bearer {access}"}, timeout=60)
    assert response.status_code == 200, response.text
    spy = attacker.account(verified=True)
    attacker.ping(spy, [(*BERLIN, minutes_ago(2))])
    backdated = attacker.account(verified=True)
    attacker.ping(backdated, [(*BERLIN, minutes_ago(15))])
    detect_all()
    assert attacker.crossed(spy) == set()
    assert attacker.crossed(backdated) == set()


@override_settings(CROSSINGS_NEW_PER_DAY=10)
def test_walking_a_crowded_street_gains_at_most_the_daily_cap(attacker):
    """A verified account cycling past 20 people at a plausible speed gains at most the cap
    (10 here, so that the test stays short; 300 a day by default)."""
    start = minutes_ago(9)
    # Every 25 s, 100 m on (14 km/h), past one person standing there.
    path = [(*offset(BERLIN, 100.0 * i, 0.0), start + timedelta(seconds=25 * i)) for i in range(20)]
    people = [victim_at(point[:2], at=point[2] + timedelta(seconds=5)) for point in path]
    walker = attacker.account(verified=True)
    assert attacker.ping(walker, path).status_code == 201
    detect_all()
    crossed = attacker.crossed(walker)
    report(f"walker crossed {len(crossed)} of {len(people)} people with a cap of 10")
    assert 0 < len(crossed) <= 10
