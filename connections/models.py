"""Connection requests between two users (one row per pair) and the chat between connections."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.ids import uuid7


class ConnectionStatus(models.TextChoices):
    PENDING = "pending", "pending"
    ACCEPTED = "accepted", "accepted"
    DECLINED = "declined", "declined"


class Connection(models.Model):
    """A request and, once accepted, a connection between ``user_low`` and ``user_high``.

    The pair is stored ordered (``user_low < user_high``) so that a unique constraint holds
    one row per pair whichever side asked first: two simultaneous requests from both sides
    meet on that row (see ``services.request_connection``).  Each side's read marker lives
    here too, so unread counts need no extra table.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user_low = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                 db_index=False)
    user_high = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                  db_index=False)
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                  db_index=False)
    status = models.CharField(max_length=10, choices=ConnectionStatus.choices, default=ConnectionStatus.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    responded_at = models.DateTimeField(null=True, blank=True)
    low_last_read_at = models.DateTimeField(null=True, blank=True)
    high_last_read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "connections"
        constraints = [
            models.UniqueConstraint(fields=["user_low", "user_high"], name="uniq_connection_pair"),
            models.CheckConstraint(condition=Q(user_low__lt=F("user_high")), name="connection_pair_ordered"),
            models.CheckConstraint(
                condition=Q(requester=F("user_low")) | Q(requester=F("user_high")), name="connection_requester_member"
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="idx_connections_status"),
            models.Index(fields=["user_low", "status"], name="idx_connections_low_status"),
            models.Index(fields=["user_high", "status"], name="idx_connections_high_status"),
        ]

    def __str__(self) -> str:
        return f"{self.user_low_id} ~ {self.user_high_id} ({self.status})"

    def other(self, user_id):
        return self.user_high_id if str(self.user_low_id) == str(user_id) else self.user_low_id

    def is_member(self, user_id) -> bool:
        return str(user_id) in (str(self.user_low_id), str(self.user_high_id))


class Message(models.Model):
    """A chat message between accepted connections; kept until the connection or account goes."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="messages", db_index=False)
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+",
                               db_index=False)
    body = models.TextField(max_length=2000)
    erased = models.BooleanField(default=False, help_text="The sender's account was erased: body blanked.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "messages"
        indexes = [
            models.Index(F("connection"), F("created_at").desc(), name="idx_messages_conn_created"),
            models.Index(fields=["sender"], name="idx_messages_sender"),
        ]

    def __str__(self) -> str:
        return f"message {self.id} in {self.connection_id}"
