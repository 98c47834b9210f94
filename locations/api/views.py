"""Locations endpoints: send pings, see and delete one's own."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.response import Response

from core.api.rest import NewestFirstCursorPagination
from locations import selectors, services
from locations.api import serializers as s
from locations.validation import PingsInvalid, clean_pings


class PingPagination(NewestFirstCursorPagination):
    ordering = "-recorded_at"


class LocationsView(generics.GenericAPIView):
    """``POST`` a batch of pings; ``GET`` or ``DELETE`` the caller's own stored pings.

    Nobody but the owner ever sees a ping: the queryset is always filtered on the token's
    user id, and no other endpoint serves raw pings.
    """

    pagination_class = PingPagination
    serializer_class = s.OwnPingSerializer

    def get_queryset(self):
        return selectors.user_pings(self.request.user.pk)

    @extend_schema(responses={200: s.OwnPingSerializer(many=True)})
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=s.PingBatchSerializer, responses={201: s.IngestResultSerializer})
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise ValidationError({"detail": "A JSON object {\"pings\": [...]} is required."})
        unknown = sorted(set(body) - {"pings"})
        if unknown:
            raise ValidationError({name: ["Unknown field."] for name in unknown})
        if "pings" not in body:
            raise ValidationError({"pings": ["This field is required."]})
        try:
            pings = clean_pings(body["pings"], now=timezone.now())
        except PingsInvalid as exc:
            raise ValidationError(exc.detail)
        try:
            result = services.ingest_pings(request.user, pings)
        except services.UserGone:
            raise AuthenticationFailed("This account no longer exists.")
        return Response({"accepted": result.accepted, "implausible": result.implausible},
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        services.delete_user_pings(request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
