from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from accounts.api.serializers import PublicProfileSerializer, StrictCharField, StrictUUIDField
from core.api.rest import StrictFieldsMixin


class ConnectionRequestIn(StrictFieldsMixin, serializers.Serializer):
    user_id = StrictUUIDField()


MESSAGE_MAX_CHARS = 2000


class MessageIn(StrictFieldsMixin, serializers.Serializer):
    # The pattern only documents that blank bodies and NUL characters are refused (the field
    # refuses them before validators run).
    body = StrictCharField(max_length=MESSAGE_MAX_CHARS, allow_blank=False, trim_whitespace=True,
                           validators=[RegexValidator(r"^[^\x00]*[^\s\x00][^\x00]*$", "This field may not be blank.")])


class ReadIn(StrictFieldsMixin, serializers.Serializer):
    up_to = StrictUUIDField(help_text="The newest message of this chat you have read.")


class ReadOut(serializers.Serializer):
    up_to = serializers.UUIDField()
    read_at = serializers.DateTimeField(help_text="The created_at of that message: the new read marker.")
    moved = serializers.BooleanField(help_text="False when the marker was already there or later.")


class ConnectionOut(serializers.Serializer):
    id = serializers.UUIDField()
    user = PublicProfileSerializer()
    status = serializers.ChoiceField(choices=["pending", "accepted", "declined"])
    direction = serializers.ChoiceField(choices=["incoming", "outgoing"])
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    responded_at = serializers.DateTimeField(allow_null=True)
    unread_count = serializers.IntegerField()


class MessageOut(serializers.Serializer):
    id = serializers.UUIDField()
    sender_id = serializers.UUIDField(allow_null=True)
    body = serializers.CharField()
    created_at = serializers.DateTimeField()


def connection_row(conn, user_id) -> dict:
    """A connection as cached and listed, without the other user's profile (added at read time)."""
    other = conn.other(user_id)
    return {
        "id": str(conn.id),
        "user_id": str(other),
        "status": conn.status,
        "direction": "outgoing" if str(conn.requester_id) == str(user_id) else "incoming",
        "created_at": conn.created_at,
        "updated_at": conn.updated_at,
        "responded_at": conn.responded_at,
    }


def message_row_out(row: dict) -> dict:
    """``message_out`` of a row of ``selectors.MessageRows``."""
    sender = row["sender_id"]
    return {"id": str(row["id"]), "sender_id": str(sender) if sender else None, "body": row["body"],
            "created_at": row["created_at"]}


def message_out(message) -> dict:
    return {
        "id": str(message.id),
        "sender_id": str(message.sender_id) if message.sender_id else None,
        "body": message.body,
        "created_at": message.created_at,
    }


class ConnectionPageOut(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ConnectionOut(many=True)


class MessagePageOut(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = MessageOut(many=True)
