"""Reads of the precomputed statistics: what the staff API and the admin page show.

Every figure comes from a materialized view, so a read is a few index lookups however
many users, pings and crossings there are; ``refreshed_at`` says how old the figures are.
"""

from __future__ import annotations

from datetime import datetime

from analytics.models import UserStats

USER_FIGURES = ("total_users", "new_users_24h", "active_users_24h", "verified_users")


def user_stats() -> dict:
    """Site-wide figures and when they were computed (all zero if the view is empty)."""
    row = UserStats.objects.values(*USER_FIGURES, "refreshed_at").first()
    if row is None:
        return {**dict.fromkeys(USER_FIGURES, 0), "refreshed_at": None}
    return row


def stats() -> dict:
    """Everything a staff member sees on the statistics page."""
    users = user_stats()
    refreshed_at: datetime | None = users.pop("refreshed_at")
    return {"refreshed_at": refreshed_at, "users": users}
