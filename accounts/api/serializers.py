"""Input and output shapes of the accounts API.  Input serializers refuse unknown fields
and values of the wrong JSON type (DRF would quietly turn 123 into "123")."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed

from accounts import report_targets, selectors
from accounts.models import ReportReason, Session, User, normalize_phone
from core.api.rest import StrictFieldsMixin
from core.uploads import images

AVATAR_MAX_BYTES = getattr(settings, "AVATAR_MAX_BYTES", 2 * 1024 * 1024)
AVATAR_MAX_PIXELS = 4096 * 4096


class StrictCharField(serializers.CharField):
    """A string, and only a string."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        if "\x00" in data:
            raise serializers.ValidationError("Must not contain NUL characters.")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A user id as a string (DRF's UUIDField would also take an integer)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true/false (and their spelling in multipart forms), not 0/1 or other values."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.lower() in ("true", "false"):
            return data.lower() == "true"
        self.fail("invalid", input=data)


def _phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


# ------------------------------------------------------------------------ output


class MeSerializer(serializers.ModelSerializer):
    """The signed-in user's own account (the only place their phone number appears)."""

    avatar_url = serializers.SerializerMethodField()
    trust_level = serializers.CharField(source="get_trust_level_display")

    class Meta:
        model = User
        fields = ["id", "phone", "display_name", "bio", "avatar_url", "is_verified", "ghost_mode",
                  "trust_level", "created_at"]
        read_only_fields = fields

    def get_avatar_url(self, user) -> str | None:
        return selectors.avatar_url(user.avatar.name if user.avatar else "")


_CREATED_AT = serializers.DateTimeField()


def me_out(user) -> dict:
    """``MeSerializer(user).data`` without building a ModelSerializer's fields on every request
    (that cost more than the rest of ``GET me/``); the serializer still documents the shape."""
    return {
        "id": str(user.pk),
        "phone": user.phone,
        "display_name": user.display_name,
        "bio": user.bio,
        "avatar_url": selectors.avatar_url(user.avatar.name if user.avatar else ""),
        "is_verified": user.is_verified,
        "ghost_mode": user.ghost_mode,
        "trust_level": user.get_trust_level_display(),
        "created_at": _CREATED_AT.to_representation(user.created_at),
    }


class PublicProfileSerializer(serializers.Serializer):
    """Documents the shape of ``selectors.get_public_profiles`` entries (never a phone)."""

    id = serializers.UUIDField()
    display_name = serializers.CharField()
    bio = serializers.CharField()
    avatar_url = serializers.CharField(allow_null=True)
    is_verified = serializers.BooleanField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AuthResponseSerializer(TokenPairSerializer):
    user = MeSerializer()


class MeWrappedSerializer(serializers.Serializer):
    user = MeSerializer()


class PhoneCodeSentSerializer(serializers.Serializer):
    detail = serializers.CharField()
    expires_at = serializers.DateTimeField()


class SessionSerializer(serializers.ModelSerializer):
    """``last_used_at`` moves on every refresh (at least every access-token lifetime)."""

    device = serializers.CharField(source="user_agent", help_text="The User-Agent the session began with.")
    current = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = ["id", "device", "user_agent", "ip", "created_at", "last_used_at", "expires_at", "current"]
        read_only_fields = fields

    def get_current(self, session) -> bool:
        return session.pk == self.context.get("current_session_id")


class BlockSerializer(serializers.Serializer):
    """A block: the blocked user's id and when, nothing of their profile (docs/security.md)."""

    user_id = serializers.UUIDField(source="blocked_id")
    created_at = serializers.DateTimeField()


class UserReportSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    user_id = serializers.UUIDField(source="reported_id", allow_null=True)
    reason = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


# ------------------------------------------------------------------------- input


class RegisterSerializer(StrictFieldsMixin, serializers.Serializer):
    phone = StrictCharField(max_length=32)
    password = StrictCharField(max_length=128, trim_whitespace=False, write_only=True)
    display_name = StrictCharField(max_length=50)

    def validate_phone(self, value):
        return _phone(value)

    def validate(self, attrs):
        candidate = User(phone=attrs["phone"], display_name=attrs["display_name"])
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from exc
        return attrs


class RegisterVerifySerializer(StrictFieldsMixin, serializers.Serializer):
    phone = StrictCharField(max_length=32)
    code = StrictCharField(min_length=6, max_length=6)

    def validate_phone(self, value):
        return _phone(value)

    def validate_code(self, value):
        if not value.isascii() or not value.isdigit():
            raise serializers.ValidationError("The code is 6 digits.")
        return value


class RegistrationStartedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds the code is valid for")


class LoginSerializer(StrictFieldsMixin, serializers.Serializer):
    phone = StrictCharField(max_length=32)
    password = StrictCharField(max_length=128, trim_whitespace=False)

    def validate_phone(self, value):
        return _phone(value)


class OpaqueTokenField(StrictCharField):
    """A token as it was sent: never trimmed (``"\x1f"`` is not blank, it is no token), and a
    string that cannot be one (a NUL) is refused as an invalid token (401), like any other
    string that is not a live token; only a non-string or an empty string is a 400."""

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            raise AuthenticationFailed("Invalid token.")
        return super().to_internal_value(data)


class RefreshSerializer(StrictFieldsMixin, serializers.Serializer):
    refresh = OpaqueTokenField(max_length=512)


class EmptySerializer(StrictFieldsMixin, serializers.Serializer):
    """Endpoints that take no input still refuse unexpected fields."""


class PhoneVerifySerializer(StrictFieldsMixin, serializers.Serializer):
    code = StrictCharField(min_length=6, max_length=6)

    def validate_code(self, value):
        if not value.isascii() or not value.isdigit():
            raise serializers.ValidationError("The code is 6 digits.")
        return value


class MeUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    display_name = StrictCharField(max_length=50, min_length=1)
    bio = StrictCharField(max_length=300, allow_blank=True)
    avatar = serializers.ImageField(allow_null=True, allow_empty_file=False)
    ghost_mode = StrictBooleanField()

    def validate_display_name(self, value):
        if any(ord(ch) < 32 for ch in value):
            raise serializers.ValidationError("Must not contain control characters.")
        return value

    def validate_avatar(self, value):
        if value is None:
            return None
        if value.size > AVATAR_MAX_BYTES:
            raise serializers.ValidationError(f"The image is larger than {AVATAR_MAX_BYTES // 1024} KiB.")
        image = getattr(value, "image", None)
        if image is None or image.format not in ("JPEG", "PNG", "WEBP", "GIF"):
            raise serializers.ValidationError("Upload a JPEG, PNG, WebP or GIF image.")
        width, height = image.size
        if width * height > AVATAR_MAX_PIXELS:
            raise serializers.ValidationError("The image has too many pixels (at most 4096 x 4096).")
        # Stored re-encoded: upright, without EXIF (GPS), ICC, XMP or comments (core.uploads.images).
        try:
            clean = images.reencode(value, max_pixels=AVATAR_MAX_PIXELS, max_frames=settings.STORY_MAX_IMAGE_FRAMES,
                                    name=value.name)
        except images.ImageRefused as exc:
            raise serializers.ValidationError(str(exc)) from None
        if clean is None:
            raise serializers.ValidationError("Upload a JPEG, PNG, WebP or GIF image.")
        return clean.content


class BlockCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    user_id = StrictUUIDField()


class UserReportIn(StrictFieldsMixin, serializers.Serializer):
    """Documents a report about a user (``ReportCreateSerializer`` validates every kind)."""

    user_id = StrictUUIDField()
    reason = serializers.ChoiceField(choices=ReportReason.choices)
    details = StrictCharField(max_length=2000, allow_blank=True, required=False, default="")


class ReportCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """``user_id`` (accounts) or another registered target such as ``story_id`` (stories)."""

    user_id = StrictUUIDField(required=False)
    reason = serializers.ChoiceField(choices=ReportReason.choices)
    details = StrictCharField(max_length=2000, allow_blank=True, required=False, default="")

    def get_fields(self):
        fields = super().get_fields()
        for name in report_targets.handlers():
            fields[name] = StrictCharField(max_length=100, required=False)
        return fields

    def validate(self, attrs):
        targets = [name for name in ["user_id", *report_targets.handlers()] if name in attrs]
        if len(targets) != 1:
            names = " or ".join(["user_id", *report_targets.handlers()])
            raise serializers.ValidationError({"detail": f"Give exactly one of {names}."})
        attrs["target"] = targets[0]
        return attrs


def parse_uuid(value) -> uuid.UUID | None:
    """An id from a URL; None when it is not a UUID (the view answers 404)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
