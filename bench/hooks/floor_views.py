"""The framework floor: the cheapest views Django and DRF can serve, beside the app's.

Enabled only with BENCH_FLOOR_VIEWS=1 under config.settings.bench (bench/hooks/urls.py).  They go through the same
middleware and gunicorn settings as the API, so the app's CPU per request can be read as
a multiple of what the framework costs before any of our code runs.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

_PAYLOAD = {"status": "ok", "service": "crossings", "floor": True}


def django_json(request):
    """A bare Django view: a small JSON object, no database, no cache."""
    return JsonResponse(_PAYLOAD)


class DRFView(APIView):
    """A bare DRF view: the same object through DRF's request/response cycle and our renderer."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request):
        return Response(_PAYLOAD)


class DRFQueryView(DRFView):
    """A DRF view with one primary-key query (the floor of any view that reads a row)."""

    def get(self, request):
        from accounts.models import User

        row = User.objects.filter(pk=request.GET.get("id") or None).values("id", "display_name").first()
        if row is None:
            row = User.objects.order_by().values("id", "display_name").first()
        return Response({"user": row})


urlpatterns = [
    path("floor/django/", django_json, name="bench-floor-django"),
    path("floor/drf/", DRFView.as_view(), name="bench-floor-drf"),
    path("floor/drf-query/", DRFQueryView.as_view(), name="bench-floor-drf-query"),
]
