"""bench/scenarios/ping_insert.py: a short side-by-side run gives every variant its figures, the
statements store what ``ingest_pings`` would, and the scratch copies of the table are gone after."""

from __future__ import annotations

import pytest
from django.db import connection

from bench.scenarios import ping_insert
from locations.models import Ping
from tests.factories import make_city, make_verified_user

pytestmark = pytest.mark.django_db


def test_a_short_run_measures_every_variant_and_leaves_no_scratch_table():
    make_city("berlin")
    users = [make_verified_user().pk for _ in range(3)]
    figures = ping_insert.measure(user_ids=users, rounds=1, batch=3)
    assert set(figures["variants"]) == {"arrays", "one row", *ping_insert.COPIES, "SELECT 1"}
    for label, row in figures["variants"].items():
        assert row["rounds"] == 1, label
        assert row["app_thread_cpu_us_per_ping"] > 0, label
    assert "pg_ratio_to_arrays_paired" in figures["variants"]["one row"]
    assert "pg_ratio_to_copy_paired" in figures["variants"]["no checks"]
    # Warm-up and measured round of the two statements on the real table, 3 pings each.
    assert Ping.objects.filter(user_id__in=users).count() == 2 * 2 * 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE %s", [ping_insert.SCRATCH_PREFIX + "%"])
        assert cursor.fetchone()[0] == 0
