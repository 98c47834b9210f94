"""Output shapes of the crossings API (for the OpenAPI schema; views build plain dicts)."""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import PublicProfileSerializer


class PlaceOut(serializers.Serializer):
    lat = serializers.FloatField(help_text="Centre of a coarse cell (H3 resolution 7, about 1.2 km), never a ping.")
    lng = serializers.FloatField()
    cell = serializers.CharField(help_text="H3 cell index.")
    city = serializers.CharField(allow_null=True)


class CrossingOut(serializers.Serializer):
    id = serializers.UUIDField()
    user = PublicProfileSerializer()
    first_crossed_at = serializers.DateTimeField(help_text="Truncated to the minute.")
    last_crossed_at = serializers.DateTimeField(help_text="Truncated to the minute.")
    times = serializers.IntegerField(help_text="Number of separate encounters.")
    place = PlaceOut()


class CrossingPageOut(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CrossingOut(many=True)
