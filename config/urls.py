from importlib import import_module

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.graphql import graphql_view
from core.api import http
from core.observability import health, metrics


def _routes(module: str) -> list:
    """An app's API routes (its ``api/urls.py``, named as ``include`` would name it), to list them flat."""
    return list(import_module(module).urlpatterns)


# One flat list under the v1 namespace (one level of resolvers less for every API request than
# an include per app), the most requested first: pings are a third of all requests.
api_v1 = [
    *_routes("locations.api.urls"),
    *_routes("crossings.api.urls"),
    *_routes("accounts.api.urls"),
    *_routes("connections.api.urls"),
    *_routes("stories.api.urls"),
    *_routes("analytics.api.urls"),
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
