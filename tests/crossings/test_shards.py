"""Detection shards (CROSSING_SHARDS): the records from 1, 2 or 4 shards equal the reference,
across city borders and shards, late pings and blocks; shards run at once without lost or
doubled records; one failing shard holds no other back; changing the count loses no ping."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, connections
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from accounts.models import Block
from core.geo import M_PER_DEG
from crossings.detection import run as detector
from crossings.detection.run import run_detection, shard_of
from crossings.models import Crossing, DetectorState
from crossings.selectors import detector_lag_seconds
from tests.crossings.helpers import clear_pings_and_crossings, matchable_pings, records
from tests.crossings.reference import reference_crossings
from tests.factories import ingest, make_city
from tests.factories import make_verified_user as make_user
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

LAT, LNG = 52.52, 13.405
LNG_M = M_PER_DEG * np.cos(np.radians(LAT))


def _point(dx_m, dy_m):
    return (float(LAT + dy_m / M_PER_DEG), float(LNG + dx_m / LNG_M))


@pytest.fixture
def cities(db):
    """Four cities of 300 m radius whose circles are 100 m apart around (LAT, LNG), which lies in
    no city, and a fifth 20 km away.  Consecutive ids: spread over 2 and 4 shards."""
    near = [make_city(f"c{i}", lat=LAT + dy / M_PER_DEG, lng=LNG + dx / LNG_M, radius_km=0.3)
            for i, (dx, dy) in enumerate([(-350, -350), (350, -350), (-350, 350), (350, 350)])]
    far = make_city("far", lat=LAT, lng=LNG + 20_000 / LNG_M, radius_km=1.0)
    return [*near, far]


@pytest.fixture
def shards(settings):
    def use(count):
        settings.CROSSING_SHARDS = count
    return use


def _expected(blocked=()):
    expected = reference_crossings(matchable_pings())
    for a, b in blocked:
        expected.pop((min(str(a.pk), str(b.pk)), max(str(a.pk), str(b.pk))), None)
    return expected


_ping = st.tuples(
    st.integers(0, 5),  # user
    st.integers(-9, 9), st.integers(-9, 9), st.floats(-0.05, 0.05),  # 75 m lattice over the 4 cities + jitter
    st.integers(0, 12), st.sampled_from([-1, 0, 1]),  # 300 s lattice + microseconds
    st.integers(0, 2),  # arrival batch
    st.booleans(),  # in the far city instead
)


@pytest.mark.parametrize("count", [1, 2, 4])
@hsettings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(raws=st.lists(_ping, min_size=1, max_size=30))
def test_sharded_detection_equals_the_reference(cities, shards, count, raws):
    """Across borders between cities of different shards and the no-city gaps, with late pings
    (arriving in a later batch than pings recorded after them) and a block."""
    shards(count)
    clear_pings_and_crossings()
    DetectorState.objects.all().delete()
    users = [make_user() for _ in range(6)]
    Block.objects.create(blocker=users[0], blocked=users[1])
    base = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    for batch in range(3):
        by_user: dict[int, list] = {}
        for user, ix, iy, j, it, jt, arrival, far in raws:
            if arrival == batch:
                dx = ix * 75 + j + (20_000 if far else 0)
                lat, lng = _point(dx, iy * 75 - j)
                by_user.setdefault(user, []).append((lat, lng, base + timedelta(seconds=it * 300, microseconds=jt)))
        for user, pings in by_user.items():
            ingest(users[user], *pings)
        result = run_detection()
        assert result.shards == count and not result.skipped
    assert records() == _expected(blocked=[(users[0], users[1])])


def _shard_pair(cities, count):
    """Two cities next to each other in different shards."""
    for a in cities[:4]:
        for b in cities[:4]:
            if shard_of(a.pk, count) < shard_of(b.pk, count):
                return a, b
    raise AssertionError("no two neighbour cities in different shards")


def test_a_pair_across_a_shard_border_is_one_record(cities, shards):
    shards(2)
    a_city, b_city = _shard_pair(cities, 2)
    a, b = make_user(), make_user()
    at = timezone.now() - timedelta(minutes=5)
    # 50 m either side of the middle of the two cities' centres: in the gap, or in each city.
    mid_lat, mid_lng = (a_city.lat + b_city.lat) / 2, (a_city.lng + b_city.lng) / 2
    ingest(a, (a_city.lat, a_city.lng, at), (mid_lat, mid_lng, at + timedelta(seconds=60)))
    ingest(b, (b_city.lat, b_city.lng, at), (mid_lat + 0.0003, mid_lng, at + timedelta(seconds=90)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT city_id % 2) FROM locations_ping")
        assert cursor.fetchone()[0] == 2
    result = run_detection()
    assert result.pings == 4 and result.changed == 1  # found by both shards, written once
    assert Crossing.objects.count() == 1 and Crossing.objects.get().times == 1
    assert records() == _expected()
    again = run_detection()
    assert again.pings == 0 and again.changed == 0


def test_a_shard_reads_only_the_pings_near_its_own(cities, shards):
    """The far city's pings are not in the context of the shard whose new pings are all near
    the four cities (its partition is skipped), and the far city's own crossing is found."""
    shards(2)
    near_user, near_other, far_user, far_other = (make_user() for _ in range(4))
    at = timezone.now() - timedelta(minutes=5)
    far_city = cities[4]
    near_city = next(c for c in cities[:4] if shard_of(c.pk, 2) != shard_of(far_city.pk, 2))
    ingest(near_user, (near_city.lat, near_city.lng, at))
    ingest(near_other, (near_city.lat + 0.0005, near_city.lng, at))
    ingest(far_user, (far_city.lat, far_city.lng, at))
    ingest(far_other, (far_city.lat, far_city.lng + 0.0005, at))
    result = run_detection(shard=shard_of(near_city.pk, 2))
    assert result.pings == 2 and result.context_pings == 2
    run_detection()
    assert len(records()) == 2 and records() == _expected()


def test_two_shards_at_once_lose_and_double_nothing(cities, shards, monkeypatch):
    """Shard 0 is held mid-run (its batch claimed, nothing stored) while shard 1 runs to the
    end without waiting; then both store the same cross-border pairs: one record each."""
    shards(2)
    users = [make_user() for _ in range(8)]
    now = timezone.now()
    rng = np.random.default_rng(17)
    for user in users:  # all around the four cities' borders, both shards' cities and the gap
        ingest(user, *[(*_point(rng.normal(0, 250), rng.normal(0, 250)), now - timedelta(minutes=int(m)))
                       for m in sorted(rng.integers(1, 50, 8))])
    held, release = threading.Event(), threading.Event()
    find = detector._find

    def held_find(*args, **kwargs):
        if threading.current_thread().name == "shard0":
            held.set()
            assert release.wait(60)
        return find(*args, **kwargs)

    monkeypatch.setattr(detector, "_find", held_find)
    results, errors = {}, []

    def work(index):
        try:
            results[index] = run_detection(shard=index, wait=False)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=work, args=(0,), name="shard0")
    first.start()
    try:
        wait_until(held.is_set, what="shard 0 claimed its batch")
        work(1)  # in this thread, while shard 0 holds its lock
        assert not errors and 1 in results and not results[1].skipped and results[1].pings > 0
    finally:
        release.set()
        first.join(60)
    assert not errors
    assert results[0].pings + results[1].pings == len(matchable_pings())  # each ping in one batch
    expected = _expected()
    assert expected and records() == expected
    assert run_detection().changed == 0


def test_a_failing_shard_holds_no_other_back(cities, shards, monkeypatch):
    """One shard's batch fails (a fault injected on its city's pings); the other shard's
    crossings are recorded and its watermark moves; the failed shard catches up on its next run."""
    shards(2)
    bad_city, good_city = _shard_pair(cities, 2)
    bad = [make_user() for _ in range(2)]
    good = [make_user() for _ in range(2)]
    at = timezone.now() - timedelta(minutes=5)
    for i, user in enumerate(bad):
        ingest(user, (bad_city.lat + i * 0.0003, bad_city.lng, at))
    for i, user in enumerate(good):
        ingest(user, (good_city.lat + i * 0.0003, good_city.lng, at))
    bad_shard = shard_of(bad_city.pk, 2)
    detect = detector.detect

    def failing_detect(ctx, **kwargs):
        if np.any(ctx.new & (ctx.city == bad_city.pk)):
            raise ValueError("a poison row")
        return detect(ctx, **kwargs)

    monkeypatch.setattr(detector, "detect", failing_detect)
    with pytest.raises(ValueError, match="poison"):
        run_detection()
    assert list(records()) == [tuple(sorted(str(u.pk) for u in good))]
    watermarks = dict(DetectorState.objects.values_list("pk", "xid_watermark"))
    assert watermarks[bad_shard + 1] == 0 and watermarks[2 - bad_shard] > 0
    monkeypatch.undo()
    assert run_detection().changed == 1
    assert len(records()) == 2 and records() == _expected()


def test_changing_the_shard_count_loses_no_ping(cities, shards):
    a, b, c, d = (make_user() for _ in range(4))
    now = timezone.now()
    shards(1)
    ingest(a, (*_point(-350, -350), now - timedelta(minutes=20)))
    ingest(b, (*_point(-350, -330), now - timedelta(minutes=19)))
    run_detection()
    ingest(c, (*_point(350, 350), now - timedelta(minutes=10)))  # pending when the count changes
    shards(4)
    assert detector_lag_seconds() > 0
    result = run_detection()
    assert result.shards == 4 and result.pings >= 1
    assert sorted(DetectorState.objects.values_list("pk", "shards")) == [(i, 4) for i in range(1, 5)]
    ingest(d, (*_point(350, 370), now - timedelta(minutes=9)))
    shards(2)
    run_detection()
    assert sorted(DetectorState.objects.values_list("pk", "shards")) == [(1, 2), (2, 2)]
    assert detector_lag_seconds() == 0
    assert len(records()) == 2 and records() == _expected()


def test_the_beat_task_runs_every_shard(cities, shards, monkeypatch):
    """``crossings.detect`` without a shard enqueues one task per shard (run eagerly here)."""
    from config.celery import app
    from crossings.tasks import detect_crossings

    shards(2)
    a_city, b_city = _shard_pair(cities, 2)
    users = [make_user() for _ in range(4)]
    at = timezone.now() - timedelta(minutes=3)
    for i, user in enumerate(users):
        city = a_city if i < 2 else b_city
        ingest(user, (city.lat + (i % 2) * 0.0003, city.lng, at))
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    assert detect_crossings.delay().get() == {"enqueued": 2}
    assert len(records()) == 2 and records() == _expected()
    assert detector_lag_seconds() == 0


def test_the_command_runs_one_shard_or_all(cities, shards):
    from io import StringIO

    from django.core.management import CommandError, call_command

    shards(2)
    a_city, b_city = _shard_pair(cities, 2)
    a, b, c, d = (make_user() for _ in range(4))
    at = timezone.now() - timedelta(minutes=3)
    ingest(a, (a_city.lat, a_city.lng, at))
    ingest(b, (a_city.lat + 0.0003, a_city.lng, at))
    ingest(c, (b_city.lat, b_city.lng, at))
    ingest(d, (b_city.lat + 0.0003, b_city.lng, at))
    out = StringIO()
    call_command("detect_crossings", "--shard", str(shard_of(a_city.pk, 2)), stdout=out)
    assert "2 new pings" in out.getvalue() and len(records()) == 1
    call_command("detect_crossings", stdout=out)
    assert "over 2 shards" in out.getvalue() and len(records()) == 2
    with pytest.raises(CommandError, match="between 0 and 1"):
        call_command("detect_crossings", "--shard", "2")


def test_a_city_moved_away_is_still_read_where_its_pings_are(cities, shards):
    """Pings keep the city they were stored with; after an admin moves the city, another
    shard's new ping next to them still finds them (the former circle is kept, CityArea)."""
    from locations.services import save_city

    shards(2)
    moved = next(c for c in cities[:4] if shard_of(c.pk, 2) == 1)
    u, v = make_user(), make_user()
    at = timezone.now() - timedelta(minutes=5)
    old_lat, old_lng = moved.lat, moved.lng
    ingest(u, (old_lat, old_lng, at))
    run_detection()
    moved.lat += 30_000 / M_PER_DEG
    save_city(moved)
    ingest(v, (old_lat + 100 / M_PER_DEG, old_lng, at + timedelta(seconds=30)))  # now in no city: shard 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT city_id FROM locations_ping WHERE user_id = %s", [v.pk])
        assert cursor.fetchone()[0] == 0
    result = run_detection()
    assert result.pings == 1 and result.changed == 1
    assert records() == _expected()
