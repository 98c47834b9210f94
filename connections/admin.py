"""Connections in the admin: read-only; chat content is not shown (staff see metadata only).

Lists show short ids, the two people by name, and counts (docs/admin.md)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Length

from accounts.admin import ReadableListMixin, linked_id, short_id, user_link, when
from connections.models import Connection, Message


class _ReadOnly(ReadableListMixin, admin.ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def _message_count():
    """Messages of each listed connection: a correlated count over idx_messages_conn_created,
    run for the page's rows only."""
    counted = (Message.objects.filter(connection=OuterRef("pk")).order_by().values("connection")
               .annotate(n=Count("id")).values("n"))
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@admin.register(Connection)
class ConnectionAdmin(_ReadOnly):
    list_display = ("connection_id", "low_name", "high_name", "requested_by", "status", "messages", "created",
                    "responded")
    list_display_links = ("connection_id",)
    list_filter = ("status",)
    list_select_related = ("user_low", "user_high")
    raw_id_fields = ("user_low", "user_high", "requester")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(message_n=_message_count())

    @admin.display(description="id", ordering="id")
    def connection_id(self, conn):
        return short_id(conn.pk)

    @admin.display(description="user")
    def low_name(self, conn):
        return user_link(conn.user_low)

    @admin.display(description="user")
    def high_name(self, conn):
        return user_link(conn.user_high)

    @admin.display(description="requested by")
    def requested_by(self, conn):
        # The requester is one of the pair: no third join.
        return user_link(conn.user_low if conn.requester_id == conn.user_low_id else conn.user_high)

    @admin.display(description="messages", ordering="message_n")
    def messages(self, conn):
        return conn.message_n

    @admin.display(description="created", ordering="created_at")
    def created(self, conn):
        return when(conn.created_at)

    @admin.display(description="responded", ordering="responded_at")
    def responded(self, conn):
        return when(conn.responded_at)


@admin.register(Message)
class MessageAdmin(_ReadOnly):
    """Message bodies are private: staff see who wrote when, and how much, not what."""

    list_display = ("message_id", "in_connection", "sender_name", "length", "erased", "created")
    list_display_links = ("message_id",)
    fields = ("id", "connection", "sender", "characters", "erased", "created_at")
    readonly_fields = fields
    list_select_related = ("sender",)
    ordering = ("-id",)  # UUIDv7: newest first, through the primary key

    def get_queryset(self, request):
        # The body's length is computed in SQL: the bodies never reach the admin process.
        return super().get_queryset(request).defer("body").annotate(body_chars=Length("body"))

    @admin.display(description="id", ordering="id")
    def message_id(self, message):
        return short_id(message.pk)

    @admin.display(description="connection")
    def in_connection(self, message):
        return linked_id(message.connection_id, "admin:connections_connection_change")

    @admin.display(description="sender", ordering="sender__display_name")
    def sender_name(self, message):
        return user_link(message.sender)

    @admin.display(description="characters", ordering="body_chars")
    def length(self, message):
        return message.body_chars

    @admin.display(description="characters")
    def characters(self, message):
        return message.body_chars

    @admin.display(description="created", ordering="created_at")
    def created(self, message):
        return when(message.created_at)
