"""Helpers for the crossings tests: stored pings and records as plain tuples."""

from __future__ import annotations

from django.db import connection

from crossings.models import Crossing

US = 1_000_000


def epoch_us(value) -> int:
    return int(value.timestamp()) * US + value.microsecond


def matchable_pings() -> list[tuple]:
    """Every stored matchable ping as (user_id, t_us, lat, lng), the reference's input: status
    matchable, not expired, and its user active, verified, not shadow-banned, not a ghost now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT p.user_id, p.recorded_at, p.lat, p.lng FROM locations_ping p JOIN users u "
                       "ON u.id = p.user_id AND u.is_active AND u.is_verified AND NOT u.is_shadow_banned "
                       "AND NOT u.ghost_mode WHERE p.status = 0 AND p.expires_at > now()")
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
