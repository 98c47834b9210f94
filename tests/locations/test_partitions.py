"""Routing of pings to city/day partitions, creation ahead, and the DEFAULT safety nets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from locations import partitions, selectors, services
from locations.models import Ping
from tests.factories import ingest, make_city

pytestmark = pytest.mark.django_db

BERLIN = (52.52, 13.405)
OUTSIDE = (48.0, 2.0)


def partition_of(user) -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, city_id FROM locations_ping WHERE user_id = %s "
                       "ORDER BY recorded_at", [user.pk])
        return cursor.fetchall()


def test_ping_lands_in_its_city_and_day(user, berlin):
    now = timezone.now()
    ingest(user, (*BERLIN, now))
    assert partition_of(user) == [(f"locations_ping_city{berlin.id}_p{now:%Y%m%d}", berlin.id)]


def test_ping_outside_every_city_goes_to_the_default_list_partition(user, berlin):
    services.ensure_partitions(days_ahead=1)
    now = timezone.now()
    ingest(user, (*OUTSIDE, now))
    assert partition_of(user) == [(f"locations_ping_nocity_p{now:%Y%m%d}", 0)]


def test_days_split_at_utc_midnight(user, berlin):
    midnight = datetime.combine(timezone.now().astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    ingest(user, (*BERLIN, midnight - timedelta(seconds=1)), (*BERLIN, midnight))
    day_before = midnight - timedelta(days=1)
    assert [name for name, _ in partition_of(user)] == [
        f"locations_ping_city{berlin.id}_p{day_before:%Y%m%d}",
        f"locations_ping_city{berlin.id}_p{midnight:%Y%m%d}",
    ]


def test_inactive_city_gets_no_pings(user):
    make_city("closed", lat=BERLIN[0], lng=BERLIN[1], radius_km=10, active=False)
    ingest(user, (*BERLIN, timezone.now()))
    assert partition_of(user)[0][1] == 0


def test_nearest_centre_wins_where_cities_overlap(user):
    make_city("west", lat=52.52, lng=13.2, radius_km=30)
    east = make_city("east", lat=52.52, lng=13.5, radius_km=30)
    ingest(user, (52.52, 13.4, timezone.now()))
    assert partition_of(user)[0][1] == east.id


def test_city_ids_for_points(berlin):
    points = [BERLIN, (52.52, 13.405 + 0.30), (52.52, 13.405 + 0.45), OUTSIDE]  # centre, ~20 km, ~30 km east
    assert selectors.city_ids_for_points(points) == [berlin.id, berlin.id, 0, 0]
    assert selectors.cities() == [berlin]


def test_resolving_a_hundred_pings_costs_at_most_one_query(berlin, django_assert_max_num_queries):
    selectors.clear_city_cache()
    points = [(52.4 + i * 0.002, 13.3 + i * 0.002) for i in range(100)]
    with django_assert_max_num_queries(1):
        ids = selectors.city_ids_for_points(points)
        selectors.city_ids_for_points(points)
    assert set(ids) == {berlin.id}


def test_ensure_partitions_creates_days_ahead_and_is_idempotent(berlin):
    today = timezone.now().astimezone(UTC).date()
    created = services.ensure_partitions(days_ahead=5).created
    tables = partitions.existing_tables()
    for list_name in (f"locations_ping_city{berlin.id}", "locations_ping_nocity"):
        for offset in range(-1, 6):
            assert partitions.day_partition(list_name, today + timedelta(days=offset)) in tables
    assert f"locations_ping_nocity_p{today + timedelta(days=5):%Y%m%d}" in created
    assert services.ensure_partitions(days_ahead=5).created == []


def test_a_ping_without_its_day_partition_is_caught_then_moved(user, berlin):
    """No day partition yet (beat missed): the DEFAULT day partition takes the ping, and
    creating the day later moves it there."""
    now = timezone.now()
    # Simulate a missing day partition by dropping today's.
    list_name = f"locations_ping_city{berlin.id}"
    today_part = partitions.day_partition(list_name, now.astimezone(UTC).date())
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{today_part}"')
    ingest(user, (*BERLIN, now))
    assert partition_of(user) == [(f"{list_name}_pdefault", berlin.id)]
    result = services.ensure_partitions(days_ahead=1)
    assert today_part in result.created and result.moved_rows == 1
    assert partition_of(user) == [(today_part, berlin.id)]
    row = Ping.objects.get(user_id=user.pk)
    assert row.recorded_at == now and row.status == 0


def test_city_rows_stranded_in_the_default_list_partition_move_to_the_new_city(user):
    """A city saved without its partition (e.g. by SQL) still gets its rows when partitioned."""
    from locations.models import City

    city = City.objects.create(slug="stranded", name="Stranded", lat=10, lng=10, radius_km=5)
    ingest(user, (10.0, 10.0, timezone.now()))
    assert partition_of(user)[0] == ("locations_ping_nocity_pdefault", city.id)
    partitions.create_list_partition(city.id)
    assert partition_of(user)[0] == (f"locations_ping_city{city.id}_pdefault", city.id)


def test_partition_report_counts_rows(user, berlin):
    ingest(user, (*BERLIN, timezone.now()), (*BERLIN, timezone.now() - timedelta(minutes=1)))
    report = {info.name: info for info in partitions.partition_report()}
    today = f"locations_ping_city{berlin.id}_p{timezone.now():%Y%m%d}"
    assert report[today].rows == 2 and report[today].total_bytes > 0
    assert report[f"locations_ping_city{berlin.id}"].level == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_ensure_partitions_do_not_collide():
    """Beat and an operator may run ensure_partitions at once: both succeed, each day once."""
    import threading

    from django.db import connections

    make_city("twin-town", lat=1.0, lng=1.0, radius_km=5)
    errors = []

    def run():
        try:
            services.ensure_partitions(days_ahead=6)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert services.missing_partitions(days_ahead=6) == []
