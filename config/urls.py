from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.graphql import graphql_view
from core.api import http
from core.observability import health, metrics

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("locations.api.urls")),
    path("", include("crossings.api.urls")),
    path("", include("connections.api.urls")),
    path("", include("stories.api.urls")),
    path("", include("analytics.api.urls")),
]

urlpatterns = [
    # The front door of a browser that opens the server: the API's documentation.
    path("", RedirectView.as_view(pattern_name="api-docs", permanent=False), name="home"),
    path("health/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
    # /metrics: every process's metrics in multiprocess mode, plus scrape-time collectors.
    path("metrics", metrics.metrics_view, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("graphql/", graphql_view, name="graphql"),
]

handler404 = http.not_found
