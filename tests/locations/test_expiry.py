"""Expiry: whole day partitions are dropped, the expired edge is deleted in batches, and
dropping neither loses nor blocks concurrent inserts for long."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from locations import partitions, services
from locations.models import Ping
from locations.validation import PingIn
from tests.factories import ingest, make_city, make_user

BERLIN = (52.52, 13.405)
OUTSIDE = (48.0, 2.0)
T = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # a fixed "now" for the sweep


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 1, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def aged_data(db, user, berlin):
    """Rows of 7, 9 and 10 January, seen from T = 10 January 12:00 with 24 h retention."""
    services.ensure_partitions(days_ahead=1, now=T - timedelta(days=3))  # 6 to 8 January
    services.ensure_partitions(days_ahead=1, now=T)  # 9 to 11 January
    ingest(user, (*BERLIN, at(7, 10)))  # expired; its day wholly expired: dropped
    ingest(user, (*BERLIN, at(9, 6)))  # expired, but its day still holds a live row: deleted
    ingest(user, (*BERLIN, at(9, 18)))  # live
    ingest(user, (*BERLIN, at(10, 11)))  # live
    outsider = make_user()
    ingest(outsider, (*OUTSIDE, at(9, 5)))  # expired, outside every city: deleted
    ingest(outsider, (*OUTSIDE, at(9, 20)))  # live
    return berlin


def test_sweep_drops_whole_days_and_deletes_the_expired_edge(aged_data):
    city = f"locations_ping_city{aged_data.id}"
    result = services.sweep_expired(now=T)
    for list_name in (city, "locations_ping_nocity"):
        assert f"{list_name}_p20260107" in result.dropped
        assert f"{list_name}_p20260108" in result.dropped
        assert f"{list_name}_p20260109" not in result.dropped
    assert result.deleted_rows == 2
    tables = partitions.existing_tables()
    assert f"{city}_p20260107" not in tables and f"{city}_p20260109" in tables
    remaining = sorted(Ping.objects.values_list("recorded_at", flat=True))
    assert remaining == [at(9, 18), at(9, 20), at(10, 11)]
    assert not Ping.objects.filter(expires_at__lte=T).exists()
    again = services.sweep_expired(now=T)
    assert again.dropped == [] and again.deleted_rows == 0


def test_dry_run_changes_nothing(aged_data):
    before = (partitions.existing_tables(), Ping.objects.count())
    result = services.sweep_expired(now=T, dry_run=True)
    assert f"locations_ping_city{aged_data.id}_p20260107" in result.dropped
    assert result.deleted_rows == 2
    assert (partitions.existing_tables(), Ping.objects.count()) == before


def test_deletes_run_in_bounded_batches(aged_data, monkeypatch):
    monkeypatch.setattr(services, "DELETE_BATCH", 1)
    user = make_user()
    ingest(user, *[(*BERLIN, at(9, 7) + timedelta(seconds=i)) for i in range(5)])
    assert services.sweep_expired(now=T).deleted_rows == 7


@pytest.mark.django_db(transaction=True)
def test_a_drop_blocked_by_a_long_transaction_gives_up_quickly(monkeypatch):
    """DETACH needs an exclusive lock on the city partition: while a transaction holds a
    conflicting lock, the sweep waits at most LOCK_TIMEOUT_MS per attempt, then gives up
    (and beat retries later), instead of queueing every insert behind it."""
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT_MS", 50)
    monkeypatch.setattr(partitions, "LOCK_RETRIES", 2)
    city = make_city("locked-town", lat=10, lng=10, radius_km=5)
    old = timezone.now() - timedelta(days=3)
    services.ensure_partitions(days_ahead=0, now=old)
    list_name = partitions.list_partition(city.id)
    target = partitions.DayPartition(partitions.day_partition(list_name, old.astimezone(UTC).date()),
                                     list_name, old.astimezone(UTC).date())
    holder_ready, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {list_name} IN ACCESS SHARE MODE")
                holder_ready.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert holder_ready.wait(10)
        started = time.monotonic()
        with pytest.raises(partitions.LockNotAcquired):
            partitions.drop_day_partition(target)
        assert time.monotonic() - started < 3
    finally:
        release.set()
        thread.join()
    partitions.drop_day_partition(target)  # once the lock is gone, it goes
    assert target.name not in partitions.existing_tables()


@pytest.mark.django_db(transaction=True)
def test_expiry_by_drop_while_inserts_run():
    """Writers insert pings of now in threads while the sweep drops old days: no insert fails
    or is lost, and the old days are gone."""
    city = make_city("drop-town", lat=BERLIN[0], lng=BERLIN[1], radius_km=20)
    now = timezone.now()
    old = now - timedelta(days=3)
    services.ensure_partitions(days_ahead=0, now=old)
    services.ensure_partitions(days_ahead=1, now=now)
    writers = [make_user() for _ in range(3)]
    old_user = make_user()
    ingest(old_user, *[(*BERLIN, old + timedelta(minutes=i)) for i in range(50)])
    ingest(old_user, *[(*OUTSIDE, old + timedelta(minutes=i, seconds=30)) for i in range(50)])

    errors, inserted, stop = [], [0] * len(writers), threading.Event()

    def write(index, user):
        try:
            i = 0
            while not stop.is_set():
                point = BERLIN if i % 2 == 0 else (BERLIN[0] + 0.0001, BERLIN[1])
                services.ingest_pings(user, [PingIn(timezone.now() - timedelta(seconds=600 - i), *point)])
                inserted[index] += 1
                i += 1
        except Exception as exc:  # recorded, asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(i, u)) for i, u in enumerate(writers)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        result = services.sweep_expired()
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert all(count > 0 for count in inserted)
    old_day = f"{old.astimezone(UTC):%Y%m%d}"
    assert f"locations_ping_city{city.id}_p{old_day}" in result.dropped
    assert f"locations_ping_nocity_p{old_day}" in result.dropped
    assert not Ping.objects.filter(user_id=old_user.pk).exists()
    for user, count in zip(writers, inserted, strict=True):
        assert Ping.objects.filter(user_id=user.pk).count() == count


@pytest.mark.django_db
def test_sweep_expired_command(aged_data, capsys):
    call_command("sweep_expired", "--dry-run")
    out = capsys.readouterr().out
    assert "pings: would remove" in out


def test_sweep_and_ensure_do_not_undo_each_other(db, berlin):
    """An empty partition of yesterday stays: late pings of yesterday may still come."""
    services.ensure_partitions(days_ahead=1)
    yesterday = (timezone.now() - timedelta(days=1)).astimezone(UTC).date()
    name = partitions.day_partition(f"locations_ping_city{berlin.id}", yesterday)
    assert name not in services.sweep_expired().dropped
    assert services.ensure_partitions(days_ahead=1).created == []
