"""Read-only models over the statistics materialized views (created by migrations)."""

from __future__ import annotations

from django.db import models


class UserStats(models.Model):
    """The one row of ``user_stats_mv``: site-wide figures, as of ``refreshed_at``."""

    id = models.IntegerField(primary_key=True)
    total_users = models.BigIntegerField()
    new_users_24h = models.BigIntegerField()
    active_users_24h = models.BigIntegerField()
    verified_users = models.BigIntegerField()
    refreshed_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "user_stats_mv"
        verbose_name = "statistics"
        verbose_name_plural = "statistics"

    def __str__(self) -> str:
        return f"statistics as of {self.refreshed_at:%Y-%m-%d %H:%M:%S}"


class CityStats(models.Model):
    """One row of ``city_stats_mv`` per city: pings and crossings of the last 24 hours."""

    city_id = models.IntegerField(primary_key=True)
    slug = models.CharField(max_length=50)
    name = models.CharField(max_length=100)
    pings_24h = models.BigIntegerField()
    crossings_24h = models.BigIntegerField()
    refreshed_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "city_stats_mv"
        ordering = ["slug"]
        verbose_name = "city statistics"
        verbose_name_plural = "city statistics"

    def __str__(self) -> str:
        return f"{self.name}: {self.pings_24h} pings, {self.crossings_24h} crossings"


class ActivityStats(models.Model):
    """The one row of ``activity_stats_mv``: crossings, connections, messages, live stories."""

    id = models.IntegerField(primary_key=True)
    crossings_total = models.BigIntegerField()
    connections_accepted = models.BigIntegerField()
    connections_made_24h = models.BigIntegerField()
    connection_requests_pending = models.BigIntegerField()
    messages_24h = models.BigIntegerField()
    stories_live = models.BigIntegerField()
    refreshed_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "activity_stats_mv"
        verbose_name = "activity statistics"
        verbose_name_plural = "activity statistics"

    def __str__(self) -> str:
        return f"activity as of {self.refreshed_at:%Y-%m-%d %H:%M:%S}"
