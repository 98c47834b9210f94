"""Staff statistics over HTTP: thin over analytics.selectors."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors


class IsStaffOr404(permissions.BasePermission):
    """Staff only; to anyone else the endpoint does not exist (docs/api.md: 404 for the invisible)."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False  # 401 with the usual WWW-Authenticate
        if not request.user.is_staff:
            raise NotFound()
        return True


class StatsView(APIView):
    permission_classes = [IsStaffOr404]

    @extend_schema(
        summary="Site statistics (staff only)",
        description="Figures from the statistics materialized views, refreshed every 5 minutes; "
        "`refreshed_at` says when.",
        responses=inline_serializer(
            "StaffStats",
            {
                "refreshed_at": serializers.DateTimeField(allow_null=True),
                "users": serializers.DictField(child=serializers.IntegerField()),
                "totals": serializers.DictField(child=serializers.IntegerField()),
                "cities": inline_serializer(
                    "StaffCityStats",
                    {
                        "slug": serializers.CharField(),
                        "name": serializers.CharField(),
                        "pings_24h": serializers.IntegerField(),
                        "crossings_24h": serializers.IntegerField(),
                    },
                    many=True,
                ),
            },
        ),
    )
    def get(self, request):
        return Response(selectors.stats())
