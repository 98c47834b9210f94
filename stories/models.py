"""Stories (text, image or short video, live for 24 h), close-friend lists and reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.ids import uuid7


class StoryKind(models.TextChoices):
    TEXT = "text", "text"
    IMAGE = "image", "image"
    VIDEO = "video", "video"


class Visibility(models.TextChoices):
    PUBLIC = "public", "public"
    CONNECTIONS = "connections", "connections"
    CLOSE_FRIENDS = "close_friends", "close friends"


class Story(models.Model):
    """A story.  Its place is coarsened on the way in (H3 resolution-7 cell and its centre,
    cells of about 5 km²): the author's exact position is never stored."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="stories",
                               db_index=False)
    kind = models.CharField(max_length=5, choices=StoryKind.choices)
    text = models.CharField(max_length=500, blank=True, default="")
    caption = models.CharField(max_length=300, blank=True, default="")
    media = models.FileField(upload_to="stories/%Y/%m/%d/", blank=True, default="", max_length=200)
    media_type = models.CharField(max_length=40, blank=True, default="")
    media_bytes = models.PositiveBigIntegerField(default=0)
    visibility = models.CharField(max_length=13, choices=Visibility.choices, default=Visibility.CONNECTIONS)
    place_cell = models.CharField(max_length=16, blank=True, default="")
    place_lat = models.FloatField(null=True, blank=True)
    place_lng = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "stories"
        verbose_name_plural = "stories"
        indexes = [
            models.Index(fields=["created_at"], name="idx_stories_created_at"),
            models.Index(fields=["expires_at"], name="idx_stories_expires_at"),
            models.Index(fields=["author", "expires_at"], name="idx_stories_author_live"),
            models.Index(fields=["place_cell", "expires_at"], name="idx_stories_public_place",
                         condition=Q(visibility="public")),
        ]
        permissions = [("moderate_story", "Can remove stories and resolve story reports")]

    def __str__(self) -> str:
        return f"{self.kind} story {self.id} by {self.author_id}"


class CloseFriend(models.Model):
    """``friend`` is on ``author``'s close-friends list (always one of the author's connections)."""

    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    friend = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["author", "friend"], name="uniq_close_friend"),
            models.CheckConstraint(condition=~Q(author=F("friend")), name="close_friend_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.friend_id} is a close friend of {self.author_id}"


class StoryReportReason(models.TextChoices):
    SPAM = "spam", "spam"
    ABUSE = "abuse", "abuse"
    INAPPROPRIATE = "inappropriate", "inappropriate"


class StoryReportStatus(models.TextChoices):
    OPEN = "open", "open"
    RESOLVED = "resolved", "resolved (story removed)"
    DISMISSED = "dismissed", "dismissed"


class StoryReport(models.Model):
    """A report about a story.  It outlives the story (expiry, removal) for the record."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    story = models.ForeignKey(Story, on_delete=models.SET_NULL, null=True, blank=True, related_name="reports")
    story_author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                     related_name="+")
    story_excerpt = models.CharField(max_length=300, blank=True, default="")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.CharField(max_length=20, choices=StoryReportReason.choices)
    details = models.TextField(max_length=2000, blank=True, default="")
    status = models.CharField(max_length=10, choices=StoryReportStatus.choices, default=StoryReportStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="idx_storyreports_queue")]
        constraints = [
            models.UniqueConstraint(fields=["reporter", "story"], condition=Q(status="open"),
                                    name="uniq_open_story_report")
        ]

    def __str__(self) -> str:
        return f"report on story {self.story_id}: {self.reason}"
