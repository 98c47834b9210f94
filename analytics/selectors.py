"""Reads of the precomputed statistics: what the staff API and the admin page show.

Every figure comes from a materialized view, so a read is a few index lookups however
many users, pings and crossings there are; ``refreshed_at`` says how old the figures are.
"""

from __future__ import annotations

from datetime import datetime

from analytics.models import ActivityStats, CityStats, UserStats

USER_FIGURES = ("total_users", "new_users_24h", "active_users_24h", "verified_users")


def user_stats() -> dict:
    """Site-wide figures and when they were computed (all zero if the view is empty)."""
    row = UserStats.objects.values(*USER_FIGURES, "refreshed_at").first()
    if row is None:
        return {**dict.fromkeys(USER_FIGURES, 0), "refreshed_at": None}
    return row


ACTIVITY_FIGURES = ("crossings_total", "connections_accepted", "connections_made_24h",
                    "connection_requests_pending", "messages_24h", "stories_live")


def activity_stats() -> dict:
    """Crossings, connections, messages and live stories (all zero if the view is empty)."""
    row = ActivityStats.objects.values(*ACTIVITY_FIGURES).first()
    return row or dict.fromkeys(ACTIVITY_FIGURES, 0)


def city_stats() -> list[dict]:
    """Pings and crossings of the last 24 hours, per city (cities added since the last refresh
    appear after the next one)."""
    rows = CityStats.objects.order_by("slug").values("slug", "name", "pings_24h", "crossings_24h")
    return [dict(row) for row in rows]


def stats() -> dict:
    """Everything a staff member sees on the statistics page.

    ``refreshed_at`` is that of user_stats_mv; every view is refreshed in the same run.
    """
    users = user_stats()
    refreshed_at: datetime | None = users.pop("refreshed_at")
    cities = city_stats()
    totals = {
        "pings_24h": sum(city["pings_24h"] for city in cities),
        "crossings_24h": sum(city["crossings_24h"] for city in cities),
        **activity_stats(),
    }
    return {"refreshed_at": refreshed_at, "users": users, "totals": totals, "cities": cities}
