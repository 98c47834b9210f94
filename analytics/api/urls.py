from django.urls import path

from analytics.api.views import StatsView

urlpatterns = [
    path("admin/stats/", StatsView.as_view(), name="admin-stats"),
]
