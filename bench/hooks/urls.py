"""The app's URLs plus the framework-floor views (config.settings.bench with BENCH_FLOOR_VIEWS=1)."""

from django.urls import include, path

from config.urls import urlpatterns as app_urlpatterns

urlpatterns = [*app_urlpatterns, path("bench/", include("bench.hooks.floor_views"))]
