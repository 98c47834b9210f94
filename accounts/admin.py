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
from django.db.models import Case, Count, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Upper
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString

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


# ------------------------------------------------------------------- list columns
# The lists need the page's width at 1280 px: the app list stays on the index page and in
# the breadcrumbs instead of a sidebar on every page.
admin.site.enable_nav_sidebar = False

# Readable changelists for moderators (docs/admin.md): short ids in monospace with the full
# id in the title, names linked to the user, compact times, escaped excerpts; one line per
# row at 1280 px (accounts/static/crossings_admin/admin.css).  None of these run a query.

ADMIN_CSS = "crossings_admin/admin.css"
EXCERPT_CHARS = 80


class ReadableListMixin:
    """The stylesheet of the list columns below (CSP: a static file, no inline style)."""

    class Media:
        css = {"all": (ADMIN_CSS,)}


def short(pk) -> str:
    """8 characters that tell rows apart: the end of the id.  Our ids are UUIDv7, whose first
    8 characters are the creation time and repeat for every row made within a minute; the
    last 8 are random."""
    return str(pk)[-8:]


def short_id(pk) -> SafeString:
    """A short id in monospace; the whole id in the title (hover, copy)."""
    if pk is None:
        return format_html('<span class="muted">{}</span>', "—")
    return format_html('<span class="short-id" title="{}">{}</span>', str(pk), short(pk))


def linked_id(pk, url_name: str) -> SafeString:
    """A short id linking to an object's change page."""
    if pk is None:
        return short_id(None)
    return format_html('<a class="short-id" href="{}" title="{}">{}</a>',
                       reverse(url_name, args=[pk]), str(pk), short(pk))


def user_link(user) -> SafeString:
    """A user's display name linking to their page; "erased" when the account is gone."""
    if user is None:
        return format_html('<span class="muted">{}</span>', "erased")
    return format_html('<a class="user-link" href="{}" title="{}">{}</a>',
                       reverse("admin:accounts_user_change", args=[user.pk]), str(user.pk),
                       excerpt(user.display_name, 30) or "(no name)")


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of a text on one line (the admin escapes it)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def excerpt_cell(text: str | None, limit: int = EXCERPT_CHARS) -> SafeString | str:
    """An excerpt for a list cell: cut to the column's width on screen, whole in the title."""
    cut = excerpt(text, limit)
    return format_html('<span title="{}">{}</span>', cut, cut) if cut else ""


def when(moment) -> SafeString:
    """``02 Dec 03:04`` (UTC), the exact time with the year in the title."""
    if moment is None:
        return format_html('<span class="muted">{}</span>', "—")
    local = timezone.localtime(moment)
    return format_html('<time class="when" datetime="{}" title="{}">{}</time>', local.isoformat(),
                       local.strftime("%Y-%m-%d %H:%M:%S %Z"), local.strftime("%d %b %H:%M"))


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
    """Phone numbers (and users' coordinates) are shown to the ``admins`` group (and
    superusers) only.  Answered once per request: the staff object remembers it."""
    known = getattr(staff, "_sees_phones", None)
    if known is None:
        known = bool(staff.is_superuser or staff.groups.filter(name=PHONE_GROUP).exists())
        staff._sees_phones = known
    return known


def mask_phone(phone: str) -> str:
    """``+14155550123`` -> ``+1•••••••23``: enough to tell two numbers apart, not to call one."""
    if not phone:
        return ""
    return phone[:2] + "•" * max(0, len(phone) - 4) + phone[-2:]


def _open_reports_on_user():
    """Open reports about each listed user: a correlated count, run for the page's rows only."""
    reports = (UserReport.objects.filter(reported=OuterRef("pk"), status=ReportStatus.OPEN)
               .order_by().values("reported").annotate(n=Count("id")).values("n"))
    return Coalesce(Subquery(reports, output_field=IntegerField()), Value(0))


@admin.register(User)
class UserAdmin(ReadableListMixin, BigTableAdminMixin, DjangoUserAdmin):
    """Search: an exact phone number (any format, normalised to E.164; the unique index),
    or the start of a display name (the ``idx_users_display_name_upper`` index).

    Staff outside the ``admins`` group (moderators) see a masked phone on a user's page, no
    phone column in the list, and cannot search by phone (an exact match would confirm a
    number)."""

    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ("user_id", "name", "verified", "banned", "active", "trust_level", "open_reports", "joined",
                    "last_active")  # staff: a filter
    list_display_links = ("user_id", "name")
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

    @admin.display(description="id", ordering="id")
    def user_id(self, user):
        return short_id(user.pk)

    @admin.display(description="name", ordering="display_name")
    def name(self, user):
        return format_html('<span class="name" title="{}">{}</span>', user.display_name, user.display_name)

    @admin.display(description="verified", boolean=True, ordering="is_verified")
    def verified(self, user):
        return user.is_verified

    @admin.display(description="banned", boolean=True, ordering="is_shadow_banned")
    def banned(self, user):
        return user.is_shadow_banned

    @admin.display(description="active", boolean=True, ordering="is_active")
    def active(self, user):
        return user.is_active

    @admin.display(description="phone", ordering="phone")
    def phone_number(self, user):
        return format_html('<span class="phone">{}</span>', user.phone)

    @admin.display(description="reports", ordering="open_reports_n")
    def open_reports(self, user):
        return user.open_reports_n

    @admin.display(description="joined", ordering="created_at")
    def joined(self, user):
        return when(user.created_at)

    @admin.display(description="active at", ordering="last_active_at")
    def last_active(self, user):
        return when(user.last_active_at)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(open_reports_n=_open_reports_on_user())

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if not sees_phones(request.user):
            changelist.search_help_text = "The start of a display name."
        return changelist

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if sees_phones(request.user):
            columns.insert(columns.index("name") + 1, "phone_number")
        return columns

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
class SessionAdmin(ReadableListMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("session_id", "owner", "device", "ip", "created", "last_used", "expires", "revoked")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    exclude = ("refresh_token_hash",)
    readonly_fields = ("id", "user", "generation", "user_agent", "ip", "created_at", "last_used_at",
                       "expires_at", "revoked_at")
    ordering = ("-created_at",)
    search_fields = ("=user__id",)
    search_help_text = "A user id."
    actions = ("revoke",)

    @admin.display(description="id", ordering="id")
    def session_id(self, session):
        return short_id(session.pk)

    @admin.display(description="user", ordering="user__display_name")
    def owner(self, session):
        return user_link(session.user)

    @admin.display(description="device")
    def device(self, session):
        return excerpt(session.user_agent, 40)

    @admin.display(description="created", ordering="created_at")
    def created(self, session):
        return when(session.created_at)

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, session):
        return when(session.last_used_at)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, session):
        return when(session.expires_at)

    @admin.display(description="revoked", ordering="revoked_at")
    def revoked(self, session):
        return when(session.revoked_at)

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
class BlockAdmin(ReadableListMixin, BigTableAdminMixin, admin.ModelAdmin):
    list_display = ("block", "blocker_name", "blocked_name", "created")
    list_display_links = ("block",)
    list_select_related = ("blocker", "blocked")
    raw_id_fields = ("blocker", "blocked")
    ordering = ("-created_at",)

    @admin.display(description="block")
    def block(self, obj):
        return format_html('<span class="short-id">{}</span>', f"#{obj.pk}")

    @admin.display(description="blocker", ordering="blocker__display_name")
    def blocker_name(self, obj):
        return user_link(obj.blocker)

    @admin.display(description="blocked", ordering="blocked__display_name")
    def blocked_name(self, obj):
        return user_link(obj.blocked)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return when(obj.created_at)

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
class UserReportAdmin(ReadableListMixin, BigTableAdminMixin, admin.ModelAdmin):
    """The reports queue: open reports first, oldest first; resolve or dismiss in bulk.

    Each row: what was reported (the user, linked, and an excerpt of their profile text),
    by whom, why (reason and an excerpt of the report's text), and where it stands."""

    list_display = ("report_id", "created", "status", "reason", "reported_user", "profile_excerpt", "reporter_user",
                    "details_excerpt")
    list_display_links = ("report_id",)
    list_filter = ("status", "reason")
    list_select_related = ("reported", "reporter")
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

    @admin.display(description="id", ordering="id")
    def report_id(self, report):
        return short_id(report.pk)

    @admin.display(description="reported", ordering="created_at")
    def created(self, report):
        return when(report.created_at)

    @admin.display(description="user reported", ordering="reported__display_name")
    def reported_user(self, report):
        return user_link(report.reported)

    @admin.display(description="their profile")
    def profile_excerpt(self, report):
        return excerpt_cell(report.reported.bio) if report.reported is not None else ""

    @admin.display(description="reporter", ordering="reporter__display_name")
    def reporter_user(self, report):
        return user_link(report.reporter)

    @admin.display(description="report text")
    def details_excerpt(self, report):
        return excerpt_cell(report.details)

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
