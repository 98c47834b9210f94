"""The statistics page in the admin: the same figures as ``GET /api/v1/admin/stats/``.

The view is registered through its read-only model so that it appears in the admin index
under "Analytics" and obeys the admin's permissions (view permission on statistics).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from analytics import charts, selectors, tasks
from analytics.models import UserStats


def _rows(figures: dict) -> list[tuple[str, int]]:
    return [(name.replace("_24h", " (24 h)").replace("_", " "), value) for name, value in figures.items()]


@admin.register(UserStats)
class StatisticsAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        urls = super().get_urls()
        refresh = path("refresh/", self.admin_site.admin_view(self.refresh_view), name="analytics_refresh")
        return [refresh, *urls]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        figures = selectors.stats()
        context = {
            **self.admin_site.each_context(request),
            "title": "Statistics",
            "opts": self.model._meta,
            "figures": figures,
            "user_rows": _rows(figures["users"]),
            "total_rows": _rows(figures["totals"]),
            "can_refresh": request.user.is_superuser,
            "charts": charts.charts(figures, charts.cached_hourly_activity()),
            "hourly_cache_s": settings.STATS_CHARTS_CACHE_S,
        }
        return TemplateResponse(request, "admin/analytics/stats.html", context)

    def refresh_view(self, request):
        """POST: refresh soon (superusers), instead of waiting for beat's next run.

        Queued rather than run here: at scale a refresh outlasts the web request's timeout.
        """
        if request.method != "POST" or not request.user.is_superuser:
            return HttpResponseRedirect(reverse("admin:analytics_userstats_changelist"))
        tasks.refresh_stats.delay()
        messages.success(request, "Refresh queued: reload this page in a few seconds.")
        return HttpResponseRedirect(reverse("admin:analytics_userstats_changelist"))
