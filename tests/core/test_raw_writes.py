"""Raw SQL writes still invalidate what django-cachalot cached (core/cache/raw_writes.py), with
cachalot's own every-table scan off."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from core.cache import raw_writes
from locations.models import City
from tests.factories import make_city


@pytest.mark.django_db(transaction=True)
def test_a_raw_write_to_a_cached_table_is_seen_by_the_next_orm_read(django_assert_num_queries):
    city = make_city(name="Oldtown")
    assert [c.name for c in City.objects.filter(pk=city.pk)] == ["Oldtown"]
    with django_assert_num_queries(0):  # cached by cachalot
        assert [c.name for c in City.objects.filter(pk=city.pk)] == ["Oldtown"]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE locations_city SET name = %s WHERE id = %s", ["Newtown", city.pk])
    assert [c.name for c in City.objects.filter(pk=city.pk)] == ["Newtown"]


@pytest.mark.django_db(transaction=True)
def test_a_raw_write_in_a_transaction_is_seen_after_the_commit():
    city = make_city(name="Before")
    list(City.objects.filter(pk=city.pk))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany("UPDATE locations_city SET name = %s WHERE id = %s", [["After", city.pk]])
    assert City.objects.get(pk=city.pk).name == "After"
    assert [c.name for c in City.objects.filter(pk=city.pk)] == ["After"]


def test_only_writes_to_cached_tables_count():
    assert raw_writes.written_cachable_tables("SELECT * FROM locations_city") == set()
    assert raw_writes.written_cachable_tables("INSERT INTO realtime_event VALUES (1)") == set()
    assert raw_writes.written_cachable_tables(b"DELETE FROM locations_city WHERE id = 1") == {"locations_city"}
    # A name inside another (auth_group in auth_group_permissions) invalidates both, as cachalot's own
    # hook does: one table too many is a cache miss, never a stale read.
    assert "auth_group_permissions" in raw_writes.written_cachable_tables(
        'update "auth_group_permissions" set group_id = 2')


def test_the_hook_replaces_cachalots_and_is_installed_once(settings):
    from cachalot.settings import cachalot_settings

    assert cachalot_settings.CACHALOT_INVALIDATE_RAW is False
    assert getattr(CursorWrapper.execute, raw_writes.MARK, False)
    before = CursorWrapper.execute
    raw_writes.install()
    assert CursorWrapper.execute is before
