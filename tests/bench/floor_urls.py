"""The floor views at the paths the harness uses, for tests (config/urls.py adds them only with BENCH_FLOOR_VIEWS=1)."""

from django.urls import include, path

urlpatterns = [path("bench/", include("bench.floor_views"))]
