"""Locations endpoints: send pings, see and delete one's own.

``POST`` answers a well-formed batch on a lean path outside DRF (same token check, rate limit,
validation and INSERT; ``LocationsView.lean_post``); everything else, every refusal included,
goes through DRF as before.  Design and figures: docs/benchmarks/performance.md ("What was changed").
"""

from __future__ import annotations

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.response import Response

from accounts.authentication import lean_claims
from core.api.rest import NewestFirstCursorPagination
from locations import selectors, services
from locations.api import serializers as s
from locations.validation import PingsInvalid, clean_pings

_JSON = "application/json"
_ACCEPTS_JSON = frozenset({"*/*", "application/*", _JSON})


class PingPagination(NewestFirstCursorPagination):
    ordering = "-recorded_at"


class LocationsView(generics.GenericAPIView):
    """``POST`` a batch of pings; ``GET`` or ``DELETE`` the caller's own stored pings.

    Nobody but the owner ever sees a ping: the queryset is always filtered on the token's
    user id, and no other endpoint serves raw pings.
    """

    pagination_class = PingPagination
    serializer_class = s.OwnPingSerializer
    #: Answer well-formed POSTs on the lean path (``False``: DRF answers every one, as before;
    #: bench/scenarios/ping_me_paths.py and the tests compare the two).
    lean_post = True

    def dispatch(self, request, *args, **kwargs):
        if request.method == "POST" and self.lean_post:
            response = self._lean_post(request)
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    def _lean_post(self, request) -> HttpResponse | None:
        """The 201 of a well-formed batch from a live token within its rate limit, without
        DRF's request wrapping, negotiation and rendering; None when DRF must answer.

        It gives up before any side effect, or after ones DRF will not repeat: the revocation
        check and the rate count are remembered on the request (``guards_passed``,
        ``rate_counted``), so DRF's authentication skips the first and its throttle reads the
        second; the last-ping cache and INSERT happen only for a batch that is answered here.
        So every refusal (401, 400, 406, 413, 415, 429) is DRF's own, byte for byte.
        """
        meta = request.META
        if meta.get("QUERY_STRING") or not self._negotiable(meta):
            return None
        claims = lean_claims(request, self)
        if claims is None:
            return None
        pings = self._lean_pings(request)
        if pings is None:
            return None
        try:
            result = services.ingest_pings(claims.user_id, pings)
        except services.UserGone:
            return None  # DRF answers the 401 (its second try inserts nothing either)
        response = HttpResponse(orjson.dumps({"accepted": result.accepted, "implausible": result.implausible}),
                                status=status.HTTP_201_CREATED, content_type=_JSON)
        for name, value in self.default_response_headers.items():  # as APIView.finalize_response
            response[name] = value
        return response

    @staticmethod
    def _negotiable(meta) -> bool:
        """A JSON body and a response DRF would render as JSON (else DRF answers 415 or 406)."""
        if meta.get("CONTENT_TYPE", "").partition(";")[0].strip() != _JSON:
            return False
        accept = meta.get("HTTP_ACCEPT")
        return not accept or any(part.partition(";")[0].strip() in _ACCEPTS_JSON for part in accept.split(","))

    @staticmethod
    def _lean_pings(request):
        """The validated pings of a body ``{"pings": [...]}``, or None (DRF then says why)."""
        length = request.META.get("CONTENT_LENGTH", "")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if not (length.isascii() and length.isdigit()) or int(length) == 0:
            return None
        if limit is not None and int(length) > limit:
            return None
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return None
        if type(body) is not dict or len(body) != 1 or "pings" not in body:
            return None
        try:
            return clean_pings(body["pings"], now=timezone.now())
        except PingsInvalid:
            return None

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
