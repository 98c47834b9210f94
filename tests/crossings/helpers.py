"""Helpers for the crossings tests: stored pings and records as plain tuples."""

from __future__ import annotations

from django.db import connection

from crossings.models import Crossing

US = 1_000_000


def epoch_us(value) -> int:
    return int(value.timestamp()) * US + value.microsecond


def matchable_pings() -> list[tuple]:
    """Every stored matchable ping as (user_id, t_us, lat, lng), the reference's input."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, recorded_at, lat, lng FROM locations_ping WHERE status = 0")
        return [(str(u), epoch_us(t), lat, lng) for u, t, lat, lng in cursor.fetchall()]


def records() -> dict[tuple, tuple]:
    """Stored crossings as {(low, high): (first_us, last_us, times)}."""
    return {
        (str(c.user_low_id), str(c.user_high_id)): (epoch_us(c.first_crossed_at), epoch_us(c.last_crossed_at), c.times)
        for c in Crossing.objects.all()
    }


def clear_pings_and_crossings() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM locations_ping")
        cursor.execute("DELETE FROM crossings")
