"""The floor views at the paths the harness uses, for tests (bench.hooks.urls, under config.settings.bench)."""

from django.urls import include, path

urlpatterns = [path("bench/", include("bench.hooks.floor_views"))]
