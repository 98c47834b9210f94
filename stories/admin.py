"""Staff tools: remove stories, resolve story reports (moderators and admins, see roles migration).

Lists are built for moderators (docs/admin.md): short ids, author names, text excerpts and a
thumbnail of the media; a story's coordinates are shown to the ``admins`` group only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Case, IntegerField, Value, When
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import (
    ReadableListMixin,
    excerpt,
    excerpt_cell,
    sees_phones,
    short,
    short_id,
    user_link,
    when,
)
from stories import services
from stories.models import CloseFriend, Story, StoryReport, StoryReportStatus

THUMB_PX = 40
COORDINATES = ("place_lat", "place_lng")


def thumbnail(story: Story):
    """A small lazy image for image media, a label for video, nothing for a text story."""
    if not story.media:
        return ""
    if story.media_type.startswith("image/"):
        return format_html('<img class="thumb" src="{}" loading="lazy" width="{}" height="{}" alt="{}">',
                           story.media.url, THUMB_PX, THUMB_PX, f"{story.kind} story")
    label = "▶ video" if story.media_type.startswith("video/") else (story.media_type or "file")
    return format_html('<span class="media-label" title="{}">{}</span>', story.media_type, label)


@admin.register(Story)
class StoryAdmin(ReadableListMixin, admin.ModelAdmin):
    list_display = ("story_id", "thumbnail", "author_name", "kind", "text_excerpt", "visibility", "created",
                    "expires")
    list_display_links = ("story_id",)
    list_filter = ("kind", "visibility")
    list_select_related = ("author",)
    raw_id_fields = ("author",)
    readonly_fields = ("id", "author", "kind", "media", "media_type", "media_bytes", "place_cell", "place_lat",
                       "place_lng", "created_at", "expires_at")
    date_hierarchy = "created_at"
    actions = ["remove_selected"]
    show_full_result_count = False

    @admin.display(description="id", ordering="id")
    def story_id(self, story):
        return short_id(story.pk)

    @admin.display(description="media")
    def thumbnail(self, story):
        return thumbnail(story)

    @admin.display(description="author", ordering="author__display_name")
    def author_name(self, story):
        return user_link(story.author)

    @admin.display(description="text")
    def text_excerpt(self, story):
        return excerpt_cell(story.text or story.caption)

    @admin.display(description="created", ordering="created_at")
    def created(self, story):
        return when(story.created_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, story):
        return when(story.expires_at)

    # A story's place is a user's position: not for moderators (neither shown nor editable).
    def get_exclude(self, request, obj=None):
        excluded = tuple(super().get_exclude(request, obj) or ())
        return excluded if sees_phones(request.user) else (*excluded, *COORDINATES)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if sees_phones(request.user) else tuple(f for f in fields if f not in COORDINATES)

    @admin.action(description="Remove selected stories (media deleted, open reports resolved)",
                  permissions=["delete"])
    def remove_selected(self, request, queryset):
        count = services.remove_stories(queryset.values_list("pk", flat=True), staff_user_id=request.user.pk)
        self.message_user(request, f"{count} stories removed.", messages.SUCCESS)

    def delete_model(self, request, obj):
        services.remove_stories([obj.pk], staff_user_id=request.user.pk)

    def delete_queryset(self, request, queryset):
        services.remove_stories(queryset.values_list("pk", flat=True), staff_user_id=request.user.pk)

    def has_add_permission(self, request):
        return False


@admin.register(StoryReport)
class StoryReportAdmin(ReadableListMixin, admin.ModelAdmin):
    """The story reports queue: open reports first, oldest first.  Each row: the story
    (linked while it exists) and an excerpt of it as reported, its author, the reporter,
    the reason and an excerpt of the report's text."""

    list_display = ("report_id", "created", "status", "reason", "reported_excerpt", "author_name", "reporter_name",
                    "details_excerpt")
    list_display_links = ("report_id",)
    list_filter = ("status", "reason")
    list_select_related = ("story_author", "reporter")
    raw_id_fields = ("story", "story_author", "reporter", "resolved_by")
    readonly_fields = ("id", "story", "story_author", "story_excerpt", "reporter", "reason", "details",
                       "created_at", "resolved_at", "resolved_by")
    actions = ["resolve_and_remove", "dismiss"]
    show_full_result_count = False

    def get_ordering(self, request):
        open_first = Case(When(status=StoryReportStatus.OPEN, then=Value(0)), default=Value(1),
                          output_field=IntegerField())
        return (open_first.asc(), "created_at")

    @admin.display(description="id", ordering="id")
    def report_id(self, report):
        return short_id(report.pk)

    @admin.display(description="reported", ordering="created_at")
    def created(self, report):
        return when(report.created_at)

    @admin.display(description="story (as reported)")
    def reported_excerpt(self, report):
        """The story's text when it was reported, linking to the story while it exists."""
        text = excerpt(report.story_excerpt) or "(no text)"
        if report.story_id is None:
            return format_html('<span class="muted" title="removed: {}">{}</span>', text, text)
        return format_html('<a href="{}" title="{} ({})">{}</a>',
                           reverse("admin:stories_story_change", args=[report.story_id]), text,
                           short(report.story_id), text)

    @admin.display(description="author", ordering="story_author__display_name")
    def author_name(self, report):
        return user_link(report.story_author)

    @admin.display(description="reporter", ordering="reporter__display_name")
    def reporter_name(self, report):
        return user_link(report.reporter)

    @admin.display(description="report text")
    def details_excerpt(self, report):
        return excerpt_cell(report.details)

    @admin.action(description="Resolve: remove the reported stories", permissions=["change"])
    def resolve_and_remove(self, request, queryset):
        count = services.resolve_reports(queryset.values_list("pk", flat=True), staff_user_id=request.user.pk,
                                         status=StoryReportStatus.RESOLVED)
        self.message_user(request, f"{count} reports resolved.", messages.SUCCESS)

    @admin.action(description="Dismiss: keep the stories", permissions=["change"])
    def dismiss(self, request, queryset):
        count = services.resolve_reports(queryset.values_list("pk", flat=True), staff_user_id=request.user.pk,
                                         status=StoryReportStatus.DISMISSED)
        self.message_user(request, f"{count} reports dismissed.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False


@admin.register(CloseFriend)
class CloseFriendAdmin(ReadableListMixin, admin.ModelAdmin):
    list_display = ("pair", "author_name", "friend_name", "created")
    list_display_links = ("pair",)
    list_select_related = ("author", "friend")
    raw_id_fields = ("author", "friend")

    @admin.display(description="pair")
    def pair(self, obj):
        return format_html('<span class="short-id">{}</span>', f"#{obj.pk}")

    @admin.display(description="author", ordering="author__display_name")
    def author_name(self, obj):
        return user_link(obj.author)

    @admin.display(description="close friend", ordering="friend__display_name")
    def friend_name(self, obj):
        return user_link(obj.friend)

    @admin.display(description="since", ordering="created_at")
    def created(self, obj):
        return when(obj.created_at)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
