"""Users, their device sessions, blocks, phone verification codes and reports about users."""

from __future__ import annotations

import phonenumbers
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from core.ids import uuid7


def normalize_phone(raw: str) -> str:
    """Return ``raw`` in E.164, or raise ValidationError with a message a user understands."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError("Enter a phone number in international format, e.g. +14155550123.")
    try:
        parsed = phonenumbers.parse(raw.strip(), None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            "Enter a phone number in international format, starting with + and the country code."
        ) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError("This phone number is not valid.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, phone: str, password: str | None = None, **extra):
        user = self.model(phone=normalize_phone(phone), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, phone: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("display_name", "Admin")
        return self.create_user(phone, password, **extra)


class TrustLevel(models.IntegerChoices):
    NEW = 0, "new"
    BASIC = 1, "basic"
    TRUSTED = 2, "trusted"


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    phone = models.CharField(max_length=16, help_text="E.164, e.g. +14155550123")
    display_name = models.CharField(max_length=50)
    bio = models.CharField(max_length=300, blank=True, default="")
    avatar = models.ImageField(upload_to="avatars/%Y/%m/", blank=True, default="")
    is_verified = models.BooleanField(default=False)
    ghost_mode = models.BooleanField(default=False, help_text="Location sharing off: pings are never matched.")
    trust_level = models.PositiveSmallIntegerField(choices=TrustLevel.choices, default=TrustLevel.NEW)
    is_shadow_banned = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    last_active_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "phone"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        db_table = "users"
        constraints = [models.UniqueConstraint(fields=["phone"], name="idx_users_phone")]
        indexes = [
            models.Index(fields=["created_at"], name="idx_users_created_at"),
            # The admin's search by name: a prefix match (LIKE 'ABC%') on the upper-cased name.
            # In the database it is built with text_pattern_ops (migration 0002) so that a
            # B-tree serves LIKE prefixes under any collation; Django cannot express that
            # opclass on an expression index correctly, hence the RunSQL.
            models.Index(Upper("display_name"), name="idx_users_display_name_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.id})"

    def clean(self):
        super().clean()
        self.phone = normalize_phone(self.phone)


class Session(models.Model):
    """One signed-in device.  Only a hash of its current refresh token is stored."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions", db_index=False)
    refresh_token_hash = models.CharField(max_length=64)
    generation = models.PositiveIntegerField(default=0)
    user_agent = models.CharField(max_length=256, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "sessions"
        indexes = [
            models.Index(fields=["user"], name="idx_sessions_user_id"),
            models.Index(fields=["expires_at"], name="idx_sessions_expires_at"),
        ]

    def __str__(self) -> str:
        return f"session {self.id} of {self.user_id}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class Block(models.Model):
    """``blocker`` blocked ``blocked``: each is hidden from the other everywhere, at once."""

    blocker = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks_made")
    blocked = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks_received")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="uniq_block_pair"),
            models.CheckConstraint(condition=~Q(blocker=models.F("blocked")), name="block_not_self"),
        ]
        indexes = [models.Index(fields=["blocked", "blocker"], name="idx_blocks_blocked")]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


class PhoneCode(models.Model):
    """An SMS verification code, stored hashed; it expires and allows few attempts."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="phone_codes")
    phone = models.CharField(max_length=16)
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="idx_phonecodes_user")]

    def __str__(self) -> str:
        return f"code for {self.phone}"


class PendingRegistration(models.Model):
    """A sign-up waiting for its SMS code: the account exists only once the number's owner
    enters the code, so that signing up never tells whether a number has an account."""

    phone = models.CharField(max_length=16, primary_key=True)
    password = models.CharField(max_length=128, help_text="Hashed, as users.password")
    display_name = models.CharField(max_length=50)
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        db_table = "pending_registrations"
        indexes = [models.Index(fields=["expires_at"], name="idx_pending_reg_expires_at")]

    def __str__(self) -> str:
        return f"pending sign-up of {self.phone}"


class ReportReason(models.TextChoices):
    SPAM = "spam", "spam"
    ABUSE = "abuse", "abuse"
    INAPPROPRIATE = "inappropriate", "inappropriate"
    IMPERSONATION = "impersonation", "impersonation"
    OTHER = "other", "other"


class ReportStatus(models.TextChoices):
    OPEN = "open", "open"
    RESOLVED = "resolved", "resolved"
    DISMISSED = "dismissed", "dismissed"


class UserReport(models.Model):
    """A report about a user, queued for staff; kept, anonymised, when either user is erased."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    reporter = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="reports_made")
    # Both sides become NULL when an account is erased: the report and its outcome stay.
    reported = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="reports_received")
    reason = models.CharField(max_length=20, choices=ReportReason.choices)
    details = models.TextField(max_length=2000, blank=True, default="")
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default=ReportStatus.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="idx_userreports_queue")]
        constraints = [
            models.UniqueConstraint(
                fields=["reporter", "reported"], condition=Q(status="open"), name="uniq_open_user_report"
            )
        ]

    def __str__(self) -> str:
        return f"report on {self.reported_id}: {self.reason}"
