"""Cities and location pings.

``Ping`` maps the partitioned pings table made by raw SQL in migration 0001 (composite primary
key; ``ingest_xid`` and the id sequence exist only in SQL).
Design: docs/subsystems/partitions.md.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

#: ``city_id`` of a ping outside every city; it is routed to the DEFAULT list partition.
NO_CITY = 0


class City(models.Model):
    """A city: a circle on the map.  Its id is the LIST value of its partition."""

    id = models.AutoField(primary_key=True)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    lat = models.FloatField(help_text="Latitude of the centre, degrees.")
    lng = models.FloatField(help_text="Longitude of the centre, degrees.")
    radius_km = models.FloatField(help_text="Pings within this distance of the centre belong to the city.")
    active = models.BooleanField(default=True, help_text="Inactive cities keep their partitions but get no pings.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "cities"
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=models.Q(lat__gte=-90, lat__lte=90), name="city_lat_range"),
            models.CheckConstraint(condition=models.Q(lng__gte=-180, lng__lte=180), name="city_lng_range"),
            models.CheckConstraint(condition=models.Q(radius_km__gt=0, radius_km__lte=500), name="city_radius_range"),
        ]

    def __str__(self) -> str:
        return self.name


class PingStatus(models.IntegerChoices):
    """How ingest judged a ping; only MATCHABLE pings are ever matched (docs/crossings.md)."""

    MATCHABLE = 0, "matchable"
    IMPLAUSIBLE = 1, "implausible"  # a teleport: faster than MAX_PLAUSIBLE_SPEED_KMH
    GHOST = 2, "ghost"  # sent in ghost mode
    UNVERIFIED = 3, "unverified"  # sent before the phone was verified
    LATE = 4, "late"  # received more than CROSSING_LIVE_S after it was recorded
    FAST = 5, "fast"  # faster than MATCH_MAX_SPEED_KMH from a matchable neighbour
    DENSE = 6, "dense"  # less than MATCH_MIN_INTERVAL_S from a matchable neighbour


class Ping(models.Model):
    """One location ping.  Never joined by foreign key (the table is partitioned)."""

    pk = models.CompositePrimaryKey("city_id", "recorded_at", "id")
    id = models.BigIntegerField(
        db_default=models.Func(models.Value("locations_ping_id_seq"), function="nextval",
                               output_field=models.BigIntegerField()),
        editable=False,
    )
    user_id = models.UUIDField()
    city_id = models.IntegerField(default=NO_CITY)
    recorded_at = models.DateTimeField()
    lat = models.FloatField()
    lng = models.FloatField()
    accuracy_m = models.FloatField(null=True, blank=True)  # real in SQL
    status = models.SmallIntegerField(choices=PingStatus.choices, default=PingStatus.MATCHABLE)
    expires_at = models.DateTimeField()
    received_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "locations_ping"
        indexes = [
            models.Index(fields=["user_id", "recorded_at"], name="idx_locations_user_recorded"),
            models.Index(fields=["expires_at"], name="idx_locations_expires_at"),
            # Block-range index: tiny, and enough for the detector to find recent arrivals.
            BrinIndex(fields=["received_at"], name="idx_locations_received_brin"),
            # The detector loads every city's pings in a time range: the primary key leads with
            # city_id, so without this a day partition is read whole.  Pings arrive nearly in
            # recorded_at order, which is what a block-range index needs; it costs next to nothing.
            BrinIndex(fields=["recorded_at"], name="idx_locations_recorded_brin", pages_per_range=16),
        ]

    def __str__(self) -> str:
        return f"ping {self.id} of {self.user_id} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"
