"""Connections in the admin: read-only; chat content is not shown (staff see metadata only)."""

from __future__ import annotations

from django.contrib import admin

from connections.models import Connection, Message


class _ReadOnly(admin.ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Connection)
class ConnectionAdmin(_ReadOnly):
    list_display = ("id", "user_low", "user_high", "requester", "status", "created_at", "responded_at")
    list_filter = ("status",)
    list_select_related = ("user_low", "user_high", "requester")
    raw_id_fields = ("user_low", "user_high", "requester")


@admin.register(Message)
class MessageAdmin(_ReadOnly):
    """Message bodies are private: staff see who wrote when, not what."""

    list_display = ("id", "connection", "sender", "length", "erased", "created_at")
    fields = ("id", "connection", "sender", "length", "erased", "created_at")
    readonly_fields = fields
    list_select_related = ("sender",)

    @admin.display(description="characters")
    def length(self, obj):
        return len(obj.body)
