"""``GET crossings/`` and ``GET crossings/{id}/``: thin views over crossings.selectors.

Keyset pagination, newest first, with a crossing-id cursor (never a time); the first page is
cached, profiles and visibility are applied on every request.
Design: docs/subsystems/read-caches.md.
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from core.api.http import conditional_json
from core.api.rest import parse_page_size
from core.cache import response as response_cache
from crossings import selectors
from crossings.api.serializers import CrossingOut, CrossingPageOut


def _parse_cursor(raw: str | None) -> tuple[str, uuid.UUID] | None:
    """``n.<id>`` (after that crossing) or ``p.<id>`` (before it)."""
    if raw is None:
        return None
    direction, _, value = raw.partition(".")
    try:
        if direction not in ("n", "p"):
            raise ValueError(direction)
        return direction, uuid.UUID(value)
    except ValueError:
        raise NotFound("Invalid cursor.")


class CrossingListView(APIView):
    response_cache = True  # core.cache.response: the first page is built from cached reads only
    response_cache_params = ("cursor", "page_size")  # every query parameter the view reads

    @extend_schema(
        operation_id="crossings_list",
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        responses=CrossingPageOut,
    )
    def get(self, request):
        """People I crossed paths with, newest encounter first (docs/crossings.md)."""
        me = request.user.pk
        size = parse_page_size(request)
        cursor = _parse_cursor(request.query_params.get("cursor"))
        page = selectors.crossings_page(me, cursor, size)
        if page is None:
            raise NotFound("Invalid cursor.")
        rows, has_next, has_previous = page
        url = request.build_absolute_uri()
        results = selectors.with_profiles(me, rows)
        if cursor is None:
            response_cache.cacheable(request)
        return conditional_json(request, {
            "next": replace_query_param(url, "cursor", f"n.{rows[-1]['id']}") if has_next and rows else None,
            "previous": (replace_query_param(url, "cursor", f"p.{rows[0]['id']}") if rows
                         else remove_query_param(url, "cursor")) if has_previous else None,
            "results": results,
        })


class CrossingDetailView(APIView):
    @extend_schema(operation_id="crossings_detail", responses=CrossingOut)
    def get(self, request, crossing_id: uuid.UUID):
        """One crossing of mine, if its other user is visible to me."""
        me = request.user.pk
        crossing = selectors.get_visible_crossing(me, crossing_id)
        items = selectors.with_profiles(me, [selectors.crossing_row(crossing, me)]) if crossing else []
        if not items:
            raise NotFound("No such crossing.")
        return Response(items[0])
