"""Staff tools: remove stories, resolve story reports (moderators and admins, see roles migration)."""

from __future__ import annotations

from django.contrib import admin, messages

from stories import services
from stories.models import CloseFriend, Story, StoryReport, StoryReportStatus


@admin.register(Story)
class StoryAdmin(admin.ModelAdmin):
    list_display = ("id", "author", "kind", "visibility", "created_at", "expires_at")
    list_filter = ("kind", "visibility")
    list_select_related = ("author",)
    raw_id_fields = ("author",)
    readonly_fields = ("id", "author", "kind", "media", "media_type", "media_bytes", "place_cell", "place_lat",
                       "place_lng", "created_at", "expires_at")
    date_hierarchy = "created_at"
    actions = ["remove_selected"]
    show_full_result_count = False

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
class StoryReportAdmin(admin.ModelAdmin):
    list_display = ("id", "reason", "status", "story", "story_author", "reporter", "created_at")
    list_filter = ("status", "reason")
    raw_id_fields = ("story", "story_author", "reporter", "resolved_by")
    readonly_fields = ("id", "story", "story_author", "story_excerpt", "reporter", "reason", "details",
                       "created_at", "resolved_at", "resolved_by")
    actions = ["resolve_and_remove", "dismiss"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("story_author", "reporter")

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
class CloseFriendAdmin(admin.ModelAdmin):
    list_display = ("author", "friend", "created_at")
    raw_id_fields = ("author", "friend")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
