"""The detector on real PostgreSQL: exact against the reference over the stored pings,
across cities (partitions), batches and late arrivals; idempotent; crash-safe; concurrent."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.geo import EARTH_RADIUS_M
from crossings.detection import run as detector
from crossings.detection.run import run_detection
from crossings.models import Crossing, DetectorState
from tests.crossings.helpers import clear_pings_and_crossings, epoch_us, matchable_pings, records
from tests.crossings.reference import reference_crossings
from tests.factories import ingest, make_city
from tests.factories import make_verified_user as make_user

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
# Tests of a single run: kept on committed data as well (cheaper in-transaction runs were
# occasionally held back by another of this process's connections).
single_run = pytest.mark.django_db(transaction=True, databases="__all__")

M_PER_DEG = np.radians(1.0) * EARTH_RADIUS_M
# Two cities 2 km apart, 1 km radius each: their border (and the no-city partition) is here.
BORDER_LAT, BORDER_LNG = 52.52, 13.405 + 1000 / (M_PER_DEG * np.cos(np.radians(52.52)))


@pytest.fixture
def cities(db):
    west = make_city("west", lat=52.52, lng=13.405, radius_km=1.0)
    east = make_city("east", lat=52.52, lng=13.405 + 2000 / (M_PER_DEG * np.cos(np.radians(52.52))), radius_km=1.0)
    return west, east


def _point(dx_m, dy_m):
    lng_scale = M_PER_DEG * np.cos(np.radians(BORDER_LAT))
    return (float(BORDER_LAT + dy_m / M_PER_DEG), float(BORDER_LNG + dx_m / lng_scale))


def _reference_by_uuid():
    pings = matchable_pings()
    return reference_crossings(pings)


_ping = st.tuples(
    st.integers(0, 4),  # user
    st.integers(-4, 4), st.integers(-4, 4), st.floats(-0.05, 0.05),  # 75 m lattice + jitter
    st.integers(0, 20), st.sampled_from([-1, 0, 1]),  # 300 s lattice + microseconds
    st.integers(0, 2),  # arrival batch
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_ping, min_size=1, max_size=25))
def test_detector_equals_reference_over_batches_cities_and_late_pings(cities, raws):
    clear_pings_and_crossings()
    users = [make_user() for _ in range(5)]
    base = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    for batch in range(3):
        by_user: dict[int, list] = {}
        for user, ix, iy, j, it, jt, arrival in raws:
            if arrival == batch:
                lat, lng = _point(ix * 75 + j, iy * 75 - j)
                by_user.setdefault(user, []).append((lat, lng, base + timedelta(seconds=it * 300, microseconds=jt)))
        for user, pings in by_user.items():
            ingest(users[user], *pings)
        run_detection()
    assert records() == _reference_by_uuid()


def _two_users_crossing(minutes_ago=5):
    a, b = make_user(), make_user()
    at = timezone.now() - timedelta(minutes=minutes_ago)
    ingest(a, (52.52, 13.405, at))
    ingest(b, (52.5205, 13.4055, at + timedelta(seconds=30)))
    return a, b


@single_run
def test_first_run_records_and_second_run_changes_nothing(cities, django_capture_on_commit_callbacks):
    from crossings.signals import crossing_recorded

    events = []

    def receiver(sender, user_ids, crossing_ids, **kwargs):
        events.append((set(user_ids), list(crossing_ids)))

    crossing_recorded.connect(receiver)
    a, b = _two_users_crossing()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = run_detection()
    finally:
        crossing_recorded.disconnect(receiver)
    assert first.pings == 2 and first.changed == 1
    crossing = Crossing.objects.get()
    assert {crossing.user_low_id, crossing.user_high_id} == {a.pk, b.pk}
    assert crossing.times == 1
    assert events == [({str(a.pk), str(b.pk)}, [str(crossing.pk)])]
    assert crossing.city_id is not None
    assert crossing.pk.version == 7
    import h3

    assert h3.is_valid_cell(crossing.place_cell) and h3.get_resolution(crossing.place_cell) == 7
    assert (crossing.place_lat, crossing.place_lng) == pytest.approx(h3.cell_to_latlng(crossing.place_cell))
    again = run_detection()
    assert again.pings == 0 and again.changed == 0
    assert Crossing.objects.get().updated_at == crossing.updated_at


@single_run
def test_reprocessing_the_same_pings_changes_nothing(cities):
    _two_users_crossing()
    run_detection()
    before = list(Crossing.objects.values())
    DetectorState.objects.filter(pk=1).update(xid_watermark=0, received_after=None)  # a duplicated batch
    result = run_detection()
    assert result.pings == 2 and result.changed == 0
    assert list(Crossing.objects.values()) == before


@single_run
def test_a_crash_mid_batch_loses_nothing(cities, monkeypatch):
    _two_users_crossing()

    def crash(*args, **kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(detector, "store_encounters", crash)
    with pytest.raises(RuntimeError):
        run_detection()
    assert not Crossing.objects.exists()
    assert not DetectorState.objects.filter(xid_watermark__gt=0).exists()
    monkeypatch.undo()
    assert run_detection().changed == 1
    assert records() == _reference_by_uuid()


@single_run
def test_dry_run_writes_nothing(cities):
    _two_users_crossing()
    result = run_detection(dry_run=True)
    assert result.pings == 2 and result.pairs == 1
    assert not Crossing.objects.exists()
    assert run_detection().changed == 1


def test_an_uncommitted_ingest_is_picked_up_by_a_later_run(cities):
    """A transaction that commits after a run started is not skipped by the watermark."""
    a, b = make_user(), make_user()
    at = timezone.now() - timedelta(minutes=3)
    ingest(a, (52.52, 13.405, at))
    started, release = threading.Event(), threading.Event()

    def slow_ingest():
        from django.db import transaction

        with transaction.atomic():
            ingest(b, (52.52, 13.405, at + timedelta(seconds=10)))
            started.set()
            release.wait(10)
        connections.close_all()

    thread = threading.Thread(target=slow_ingest)
    thread.start()
    started.wait(10)
    run_detection()  # b's ping is not final yet: it must wait for the next run
    release.set()
    thread.join()
    assert not Crossing.objects.exists()
    run_detection()
    assert Crossing.objects.count() == 1


def test_two_detectors_at_once_give_the_same_records(cities):
    users = [make_user() for _ in range(6)]
    now = timezone.now()
    rng = np.random.default_rng(7)
    for user in users:
        ingest(user, *[(52.52 + rng.normal(0, 0.0008), 13.405 + rng.normal(0, 0.0012),
                        now - timedelta(minutes=int(m))) for m in sorted(rng.integers(1, 60, 8))])
    results, errors = [], []

    def work():
        try:
            results.append(run_detection())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r.pings for r in results) == len(matchable_pings())  # each ping in exactly one batch
    expected = _reference_by_uuid()
    assert expected and records() == expected


@single_run
def test_ghost_and_implausible_pings_never_match(cities):
    a, b, c = make_user(), make_user(ghost_mode=True), make_user()
    at = timezone.now() - timedelta(minutes=5)
    ingest(a, (52.52, 13.405, at))
    ingest(b, (52.52, 13.405, at))
    ingest(c, (40.0, 10.0, at - timedelta(seconds=10)), (52.52, 13.405, at))  # an impossible jump
    run_detection()
    assert not Crossing.objects.exists()


@single_run
def test_pings_matched_across_a_city_border(cities):
    a, b = make_user(), make_user()
    at = timezone.now() - timedelta(minutes=5)
    ingest(a, (*_point(-40, 0), at))
    ingest(b, (*_point(40, 0), at))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT city_id) FROM locations_ping")
        assert cursor.fetchone()[0] == 2
    run_detection()
    assert Crossing.objects.count() == 1


@single_run
def test_times_and_first_last(cities):
    a, b = make_user(), make_user()
    now = timezone.now().replace(microsecond=0)
    for minutes in (200, 190, 60):  # two encounters: 200/190 min ago, then 60 min ago
        at = now - timedelta(minutes=minutes)
        ingest(a, (52.52, 13.405, at))
        ingest(b, (52.52, 13.405, at + timedelta(seconds=20)))
    run_detection()
    crossing = Crossing.objects.get()
    assert crossing.times == 2
    assert epoch_us(crossing.first_crossed_at) == epoch_us(now - timedelta(minutes=200, seconds=-20))
    assert epoch_us(crossing.last_crossed_at) == epoch_us(now - timedelta(minutes=60, seconds=-20))


def test_a_detected_crossing_shows_in_a_cached_feed_at_once(cities):
    """The detector bumps both users' feed caches after commit (freshness, docs/crossings.md)."""
    from tests.conftest import client_for

    a, b = make_user(), make_user()
    client = client_for(a)
    assert client.get("/api/v1/crossings/").json()["results"] == []  # cached, empty
    at = timezone.now() - timedelta(minutes=2)
    ingest(a, (52.52, 13.405, at))
    ingest(b, (52.5203, 13.4052, at + timedelta(seconds=40)))
    run_detection()
    results = client.get("/api/v1/crossings/").json()["results"]
    assert [item["user"]["id"] for item in results] == [str(b.pk)]
    assert client_for(a).get(f"/api/v1/users/{b.pk}/").status_code == 200
