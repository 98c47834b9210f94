from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import PublicProfileSerializer, StrictCharField, StrictUUIDField
from core.api.numbers import StrictFloatField
from core.api.rest import StrictFieldsMixin
from stories.models import StoryReportReason, Visibility


class StoryIn(StrictFieldsMixin, serializers.Serializer):
    text = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    caption = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.CONNECTIONS)
    media = serializers.FileField(required=False, allow_empty_file=False, max_length=200)
    lat = StrictFloatField(required=False, min_value=-90, max_value=90)
    lng = StrictFloatField(required=False, min_value=-180, max_value=180)

    def validate(self, attrs):
        if ("lat" in attrs) != ("lng" in attrs):
            raise serializers.ValidationError({"lat": ["Send lat and lng together."]})
        return attrs


class StoryOut(serializers.Serializer):
    id = serializers.UUIDField()
    author_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=["text", "image", "video"])
    text = serializers.CharField()
    caption = serializers.CharField()
    media_url = serializers.CharField(allow_null=True)
    media_type = serializers.CharField(allow_null=True)
    visibility = serializers.ChoiceField(choices=Visibility.choices)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class StoryWithAuthorOut(StoryOut):
    author = PublicProfileSerializer()


class NearbyStoryOut(StoryWithAuthorOut):
    distance_km = serializers.FloatField(help_text="Between coarse cells (~2 km precision).")


class FeedGroupOut(serializers.Serializer):
    author = PublicProfileSerializer()
    stories = StoryOut(many=True)


class FeedOut(serializers.Serializer):
    results = FeedGroupOut(many=True)


class NearbyOut(serializers.Serializer):
    radius_km = serializers.FloatField(help_text="The radius used: 5, widened to 10, 15 or 20 km if needed.")
    expanded = serializers.BooleanField()
    enough = serializers.BooleanField(help_text="False: few stories even at the widest radius.")
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = NearbyStoryOut(many=True)


class NearbyQuery(serializers.Serializer):
    lat = StrictFloatField(min_value=-90, max_value=90)
    lng = StrictFloatField(min_value=-180, max_value=180)


class CloseFriendIn(StrictFieldsMixin, serializers.Serializer):
    user_id = StrictUUIDField()


class CloseFriendOut(serializers.Serializer):
    user_id = serializers.UUIDField()


class StoryReportIn(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.ChoiceField(choices=StoryReportReason.choices)
    details = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")


class StoryReportTargetIn(StoryReportIn):
    """``POST reports/`` about a story (documents the body; accounts' serializer validates it)."""

    story_id = StrictUUIDField()


class StoryReportOut(serializers.Serializer):
    id = serializers.UUIDField()
    story_id = serializers.UUIDField()
    reason = serializers.ChoiceField(choices=StoryReportReason.choices)
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class CloseFriendsOut(serializers.Serializer):
    results = PublicProfileSerializer(many=True)
