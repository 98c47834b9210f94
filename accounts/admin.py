"""Staff tools for accounts: users (found fast among millions), sessions, blocks and the
reports queue.  Every action goes through ``accounts.services`` so caches and other apps
hear about it (signals), exactly as with the API."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Case, IntegerField, Value, When
from django.db.models.functions import Upper
from django.utils.functional import cached_property

from accounts import services
from accounts.models import Block, ReportStatus, Session, User, UserReport, normalize_phone

# ---------------------------------------------------------------- big tables


class EstimatedCountPaginator(Paginator):
    """A paginator that never runs COUNT(*) over a whole big table.

    Unfiltered lists use the planner's estimate (``pg_class.reltuples``, kept fresh by
    autovacuum); filtered lists count at most ``COUNT_LIMIT`` rows, which an index serves
    quickly, and show that many pages when there are more.
    """

    COUNT_LIMIT = 10_000

    @cached_property
    def count(self):
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:
            return super().count
        if not query.where:
            estimate = _estimated_rows(queryset.model._meta.db_table, queryset.db)
            if estimate is not None and estimate > self.COUNT_LIMIT:
                return estimate
        return queryset.order_by()[: self.COUNT_LIMIT + 1].count()


def _estimated_rows(table: str, alias: str) -> int | None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:  # -1: never analysed
        return None
    return int(row[0])


class BigTableAdminMixin:
    paginator: type[Paginator] = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50


# ------------------------------------------------------------------------ users


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("phone", "display_name")

    def clean_phone(self):
        try:
            phone = normalize_phone(self.cleaned_data.get("phone"))
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        if User.objects.filter(phone=phone).exists():
            raise forms.ValidationError(services.DUPLICATE_PHONE_MESSAGE)
        return phone


class UserChangeForm(DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes: dict = {}

    def clean_phone(self):
        try:
            return normalize_phone(self.cleaned_data.get("phone"))
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc


PHONE_GROUP = "admins"


def sees_phones(staff) -> bool:
    """Phone numbers are shown to the ``admins`` group (and superusers) only."""
    return bool(staff.is_superuser or staff.groups.filter(name=PHONE_GROUP).exists())


def mask_phone(phone: str) -> str:
    """``+14155550123`` -> ``+1•••••••23``: enough to tell two numbers apart, not to call one."""
    if not phone:
        return ""
    return phone[:2] + "•" * max(0, len(phone) - 4) + phone[-2:]


@admin.register(User)
class UserAdmin(BigTableAdminMixin, DjangoUserAdmin):
    """Search: an exact phone number (any format, normalised to E.164; the unique index),
    or the start of a display name (the ``idx_users_display_name_upper`` index).

    Staff outside the ``admins`` group (moderators) see a masked phone and cannot search by
    phone (an exact match would confirm a number)."""

    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ("display_name", "id", "is_verified", "is_shadow_banned", "is_active", "is_staff",
                    "trust_level", "created_at", "last_active_at")
    list_filter = ("is_active", "is_staff", "is_verified", "is_shadow_banned")
    search_fields = ("phone",)  # shows the search box; get_search_results does the work
    search_help_text = "An exact phone number (+14155550123) or the start of a display name."
    ordering = ("-created_at",)
    readonly_fields = ("id", "created_at", "last_login", "last_active_at")
    fieldsets = (
        (None, {"fields": ("id", "phone", "password")}),
        ("Profile", {"fields": ("display_name", "bio", "avatar", "ghost_mode")}),
        ("Moderation", {"fields": ("is_active", "is_verified", "is_shadow_banned", "trust_level")}),
        ("Staff", {"fields": ("is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("created_at", "last_login", "last_active_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("phone", "display_name", "password1", "password2")}),
    )
    actions = ("verify", "shadow_ban", "lift_shadow_ban", "deactivate", "revoke_sessions")

    @admin.display(description="phone")
    def masked_phone(self, user):
        return mask_phone(user.phone)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or sees_phones(request.user):
            return fieldsets
        return [(name, {**options, "fields": tuple("masked_phone" if field == "phone" else field
                                                     for field in options["fields"])})
                for name, options in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if sees_phones(request.user) else (*fields, "masked_phone")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if (term[0] == "+" or term[0].isdigit()) and sees_phones(request.user):
            try:
                return queryset.filter(phone=normalize_phone(term)), False
            except ValidationError:
                pass
        # LIKE 'PREFIX%' on upper(display_name): served by the expression index.
        prefix = term.upper()
        return queryset.alias(name_upper=Upper("display_name")).filter(name_upper__startswith=prefix), False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            if "is_active" in form.changed_data:
                if obj.is_active:
                    services.reactivated(obj.pk)
                else:  # already saved inactive: this revokes the sessions and every token
                    services.deactivate_users([obj.pk])
            services.profile_changed(obj.pk)

    def delete_model(self, request, obj):
        services.erase_user(obj.pk)

    def delete_queryset(self, request, queryset):
        for user_id in queryset.values_list("pk", flat=True):
            services.erase_user(user_id)

    @admin.action(description="Mark as verified")
    def verify(self, request, queryset):
        done = services.set_verified(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{done} user(s) verified.", messages.SUCCESS)

    @admin.action(description="Shadow-ban (others stop seeing them)")
    def shadow_ban(self, request, queryset):
        done = services.set_shadow_ban(queryset.values_list("pk", flat=True), True)
        self.message_user(request, f"{done} user(s) shadow-banned.", messages.SUCCESS)

    @admin.action(description="Lift shadow ban")
    def lift_shadow_ban(self, request, queryset):
        done = services.set_shadow_ban(queryset.values_list("pk", flat=True), False)
        self.message_user(request, f"Shadow ban lifted for {done} user(s).", messages.SUCCESS)

    @admin.action(description="Deactivate (and revoke all sessions)")
    def deactivate(self, request, queryset):
        done = services.deactivate_users(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{done} user(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Revoke all sessions")
    def revoke_sessions(self, request, queryset):
        done = sum(services.revoke_all_sessions(pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{done} session(s) revoked.", messages.SUCCESS)


# --------------------------------------------------------------------- sessions


@admin.register(Session)
class SessionAdmin(BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("id", "user", "user_agent", "ip", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    exclude = ("refresh_token_hash",)
    readonly_fields = ("id", "user", "generation", "user_agent", "ip", "created_at", "last_used_at",
                       "expires_at", "revoked_at")
    ordering = ("-created_at",)
    search_fields = ("=user__id",)
    search_help_text = "A user id."
    actions = ("revoke",)

    def has_add_permission(self, request):
        return False

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        try:
            return queryset.filter(user_id=search_term.strip()), False
        except ValidationError:
            return queryset.none(), False

    @admin.action(description="Revoke selected sessions")
    def revoke(self, request, queryset):
        done = sum(services.revoke_session(pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{done} session(s) revoked.", messages.SUCCESS)


# ----------------------------------------------------------------------- blocks


@admin.register(Block)
class BlockAdmin(BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("blocker", "blocked", "created_at")
    list_select_related = ("blocker", "blocked")
    raw_id_fields = ("blocker", "blocked")
    ordering = ("-created_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.unblock_user(blocker_id=obj.blocker_id, blocked_id=obj.blocked_id)

    def delete_queryset(self, request, queryset):
        for blocker_id, blocked_id in queryset.values_list("blocker_id", "blocked_id"):
            services.unblock_user(blocker_id=blocker_id, blocked_id=blocked_id)


# ---------------------------------------------------------------------- reports


@admin.register(UserReport)
class UserReportAdmin(BigTableAdminMixin, admin.ModelAdmin):
    """The reports queue: open reports first, oldest first; resolve or dismiss in bulk."""

    list_display = ("created_at", "status", "reason", "reported", "reporter", "details_excerpt", "resolved_by")
    list_filter = ("status", "reason")
    list_select_related = ("reported", "reporter", "resolved_by")
    raw_id_fields = ("reported", "reporter", "resolved_by")
    readonly_fields = ("id", "reporter", "reported", "reason", "details", "created_at", "resolved_at",
                       "resolved_by")
    actions = ("resolve", "dismiss", "deactivate_reported", "shadow_ban_reported")

    def get_ordering(self, request):
        open_first = Case(When(status=ReportStatus.OPEN, then=Value(0)), default=Value(1),
                          output_field=IntegerField())
        return (open_first.asc(), "created_at")

    def has_add_permission(self, request):
        return False

    @admin.display(description="details")
    def details_excerpt(self, report):
        return (report.details[:80] + "…") if len(report.details) > 80 else report.details

    def _close(self, request, queryset, status):
        done = services.close_reports(queryset.values_list("pk", flat=True), staff_user_id=request.user.pk,
                                      status=status)
        self.message_user(request, f"{done} report(s) {status}.", messages.SUCCESS)

    @admin.action(description="Resolve selected reports")
    def resolve(self, request, queryset):
        self._close(request, queryset, ReportStatus.RESOLVED)

    @admin.action(description="Dismiss selected reports")
    def dismiss(self, request, queryset):
        self._close(request, queryset, ReportStatus.DISMISSED)

    @admin.action(description="Deactivate the reported users")
    def deactivate_reported(self, request, queryset):
        done = services.deactivate_users(queryset.values_list("reported_id", flat=True))
        self.message_user(request, f"{done} user(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Shadow-ban the reported users")
    def shadow_ban_reported(self, request, queryset):
        done = services.set_shadow_ban(queryset.values_list("reported_id", flat=True), True)
        self.message_user(request, f"{done} user(s) shadow-banned.", messages.SUCCESS)
