"""Shapes of the locations endpoints.  Input is validated by ``locations.validation`` (by hand,
for speed); these serializers describe it for the OpenAPI schema and render output."""

from __future__ import annotations

from typing import cast

from rest_framework import serializers

from core.api.rest import StrictFieldsMixin
from locations import selectors
from locations.models import PingStatus


class PingInSerializer(StrictFieldsMixin, serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    recorded_at = serializers.DateTimeField(help_text="ISO 8601 with a time zone; at most 5 min ahead, "
                                                      "within the retention (default 24 h).")
    accuracy_m = serializers.FloatField(required=False, allow_null=True, min_value=0)


class PingBatchSerializer(StrictFieldsMixin, serializers.Serializer):
    pings = PingInSerializer(many=True, min_length=1, max_length=100,  # type: ignore[call-arg]  # ListSerializer's
                             help_text="1 to 100 pings, no two with the same recorded_at.")


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Pings stored as plausible.")
    implausible = serializers.IntegerField(help_text="Pings stored as implausible (never matched).")


class OwnPingSerializer(serializers.Serializer):
    """One of the caller's own pings: what the server keeps about them."""

    recorded_at = serializers.DateTimeField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    accuracy_m = serializers.FloatField(allow_null=True)
    city = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    received_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()

    def get_city(self, ping) -> str | None:
        context = cast(dict, self.context)  # a dict, which the stubs type as Mapping
        slugs = context.setdefault("city_slugs", {c.id: c.slug for c in selectors.cities()})
        return slugs.get(ping.city_id)

    def get_status(self, ping) -> str:
        return PingStatus(ping.status).label
