"""Connections and chat endpoints (docs/api.md): thin views over services and selectors.

``GET connections/{id}/messages/`` answers a well-formed read of a chat the caches vouch for on
a lean path outside DRF (same token check, rate limit, membership checks and JSON bytes;
``MessageListView.lean_get``); everything else, every refusal included, goes through DRF.
Design and figures: docs/benchmarks/performance.md ("Chat").
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http_status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts.authentication import lean_claims
from connections import selectors, services
from connections.api import serializers as s
from core.api.http import conditional_json
from core.api.rest import NewestFirstCursorPagination, accepts_plain_json, dumps
from core.cache import keys as cachekeys
from core.cache import response as response_cache
from core.db import router as db_router

KINDS = ("accepted", "incoming", "outgoing")


class ConnectionPagination(NewestFirstCursorPagination):
    ordering = ("-updated_at", "-id")


class MessagePagination(NewestFirstCursorPagination):
    ordering = ("-created_at", "-id")


def _render_rows(user_id, rows: list[dict], unread: dict) -> list[dict]:
    """Attach profiles (batched, cached by accounts) and unread counts to cached rows."""
    profiles = {str(uid): p for uid, p in
                account_selectors.visible_profiles(user_id, [row["user_id"] for row in rows]).items()}
    out = []
    for row in rows:
        profile = profiles.get(row["user_id"])
        if profile is None:  # blocked, deactivated or shadow-banned since: not shown
            continue
        item = {k: v for k, v in row.items() if k != "user_id"}
        item["user"] = profile
        item["unread_count"] = unread.get(row["id"], 0)
        out.append(item)
    return out


class ConnectionListView(APIView):
    response_cache = True  # core.cache.response: every page is built from cached reads
    response_cache_params = ("status", "cursor", "page_size")  # every query parameter the view reads

    @extend_schema(
        operation_id="connections_list",
        parameters=[OpenApiParameter("status", enum=list(KINDS), default="accepted"),
                    OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
        responses=s.ConnectionPageOut,
    )
    def get(self, request):
        """Own connections (accepted) or pending requests (incoming, outgoing), newest first."""
        kind = request.query_params.get("status", "accepted")
        if kind not in KINDS:
            raise ValidationError({"status": [f"Must be one of: {', '.join(KINDS)}."]})
        me = request.user.pk
        suffix = "list:{}:{}:{}:{}".format(kind, request.query_params.get("cursor", ""),
                                           request.query_params.get("page_size", ""), request.get_host())
        # The page and the unread counts: one round trip to Redis when both are cached.
        page_key, unread_key = (selectors.CONN_NS, str(me), suffix), (selectors.UNREAD_NS, str(me), "")
        batch = cachekeys.read_entries([page_key, unread_key] if kind == "accepted" else [page_key])
        fresh = {}
        if page_key not in batch.hits:
            fresh[page_key] = self._load_page(request, kind)
        if kind == "accepted" and unread_key not in batch.hits:
            fresh[unread_key] = selectors.load_unread(me)
        batch.fill(fresh, settings.CONNECTIONS_CACHE_S)
        page = batch.hits[page_key]
        data = {"next": page["next"], "previous": page["previous"],
                "results": _render_rows(me, page["rows"], batch.hits.get(unread_key, {}))}
        response_cache.cacheable(request)
        return conditional_json(request, data)

    def _load_page(self, request, kind) -> dict:
        me = request.user.pk
        paginator = ConnectionPagination()
        with db_router.use_primary():
            conns = paginator.paginate_queryset(selectors.connections_for(me, kind), request, view=self)
            rows = [s.connection_row(conn, me) for conn in conns]
        return {"rows": rows, "next": paginator.get_next_link(), "previous": paginator.get_previous_link()}

    @extend_schema(request=s.ConnectionRequestIn, responses={200: s.ConnectionOut, 201: s.ConnectionOut, 409: None})
    def post(self, request):
        """Request a connection; toward someone who requested you, it accepts theirs."""
        data = _valid(s.ConnectionRequestIn, request)
        conn, created = services.request_connection(requester_id=request.user.pk, target_id=data["user_id"])
        return Response(_one(request.user.pk, conn),
                        status=http_status.HTTP_201_CREATED if created else http_status.HTTP_200_OK)


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


_SURROGATES = re.compile("[\ud800-\udfff]")


def _message_body(request) -> str:
    """``MessageIn``'s ``body``, checked by hand when the parsed JSON is exactly ``{"body": text}``
    that the serializer takes as it is (a string with something but spaces, no NUL or lone
    surrogate, at most its ``max_length`` once trimmed); anything else goes to the serializer,
    which refuses it with its own messages."""
    data = request.data
    if type(data) is dict and len(data) == 1:
        body = data.get("body")
        if type(body) is str and "\x00" not in body and (body.isascii() or not _SURROGATES.search(body)):
            body = body.strip()
            if body and len(body) <= s.MESSAGE_MAX_CHARS:
                return body
    return _valid(s.MessageIn, request)["body"]


def _one(user_id, conn) -> dict:
    row = s.connection_row(conn, user_id)
    profile = account_selectors.get_public_profile(row.pop("user_id"))
    return {**row, "user": profile, "unread_count": 0}


class ConnectionDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, connection_id: uuid.UUID):
        """Cancel your pending request, or end a connection (its chat goes with it)."""
        services.remove_connection(user_id=request.user.pk, connection_id=connection_id)
        return Response(status=http_status.HTTP_204_NO_CONTENT)


class ConnectionAcceptView(APIView):
    @extend_schema(request=None, responses={200: s.ConnectionOut, 409: None})
    def post(self, request, connection_id: uuid.UUID):
        conn = services.accept_connection(user_id=request.user.pk, connection_id=connection_id)
        return Response(_one(request.user.pk, conn))


class ConnectionDeclineView(APIView):
    @extend_schema(request=None, responses={200: s.ConnectionOut, 409: None})
    def post(self, request, connection_id: uuid.UUID):
        conn = services.decline_connection(user_id=request.user.pk, connection_id=connection_id)
        return Response(_one(request.user.pk, conn))


_JSON = "application/json"
_PAGE_PARAMS = frozenset({"cursor", "page_size"})


class _PageRequest:
    """What DRF's cursor paginator reads of a request (``query_params``, ``build_absolute_uri``),
    from Django's request: DRF's ``Request.query_params`` is Django's ``GET``."""

    __slots__ = ("build_absolute_uri", "query_params")

    def __init__(self, request):
        self.query_params = request.GET
        self.build_absolute_uri = request.build_absolute_uri


class MessageListView(APIView):
    #: Answer well-formed GETs of a chat the caches vouch for on the lean path (``False``: DRF
    #: answers every one, as before; bench/scenarios/chat_paths.py and the tests compare the two).
    lean_get = True

    def dispatch(self, request, *args, **kwargs):
        if request.method == "GET" and self.lean_get:
            response = self._lean_get(request, kwargs.get("connection_id"))
            if response is not None:
                return response
        return super().dispatch(request, *args, **kwargs)

    def _lean_get(self, request, connection_id) -> HttpResponse | None:
        """The 200 of a chat page for a live token within its rate limit, when the cached
        connection index and hidden set say the chat is the caller's and accepted, without DRF's
        request wrapping, negotiation and rendering; None when DRF must answer.

        As ``locations.api.views.LocationsView._lean_post``: it gives up before any side effect
        but the revocation check and the rate count, which are remembered on the request
        (``guards_passed``, ``rate_counted``) so that DRF does not repeat them, and the activity
        mark (at most once a minute per user, as DRF's authentication would make it).  Cached
        reads (the chat, the unread counts) may be filled on the way; the read marker moves only
        for a page answered here.  So every refusal (401, 403, 404, 400, 406, 429) is DRF's own.
        """
        if not accepts_plain_json(request.META):
            return None
        query = request.GET
        if query and not _PAGE_PARAMS.issuperset(query):
            return None  # ?format= and the like: DRF's
        claims = lean_claims(request, self)
        if claims is None:
            return None
        me = claims.user_id
        conn, unread = selectors.cached_chat(me, connection_id, with_unread=True)
        if conn is None:
            return None  # not in the cached index, not accepted, hidden: the database says why (DRF)
        paginator = MessagePagination()
        try:
            page = paginator.paginate_queryset(selectors.MessageRows(conn.pk), _PageRequest(request), view=self)
        except (NotFound, ValidationError, DjangoValidationError):
            return None  # a bad cursor or page size: DRF's 404 or 400
        if page and "cursor" not in query and unread.get(str(conn.pk)):
            services.mark_read(user_id=me, connection=conn, until=page[0]["created_at"])
        response = HttpResponse(dumps({"next": paginator.get_next_link(), "previous": paginator.get_previous_link(),
                                       "results": [s.message_row_out(row) for row in page]}), content_type=_JSON)
        for name, value in self.default_response_headers.items():  # as APIView.finalize_response
            response[name] = value
        return response

    @extend_schema(operation_id="connections_messages_list",
                   parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
                   responses=s.MessagePageOut)
    def get(self, request, connection_id: uuid.UUID):
        """The conversation, newest first; reading the first page marks it read."""
        me = request.user.pk
        conn, unread = services.chat_connection(user_id=me, connection_id=connection_id, with_unread=True)
        paginator = MessagePagination()
        page = paginator.paginate_queryset(selectors.MessageRows(conn.pk), request, view=self)
        if page and "cursor" not in request.query_params and unread.get(str(conn.pk)):
            services.mark_read(user_id=me, connection=conn, until=page[0]["created_at"])
        return paginator.get_paginated_response([s.message_row_out(row) for row in page])

    @extend_schema(request=s.MessageIn, responses={201: s.MessageOut})
    def post(self, request, connection_id: uuid.UUID):
        """Send a message to an accepted connection (403 if pending, 404 if gone or blocked)."""
        message = services.send_message(user_id=request.user.pk, connection_id=connection_id,
                                        body=_message_body(request))
        return Response(s.message_out(message), status=http_status.HTTP_201_CREATED)


class MessageReadView(APIView):
    @extend_schema(operation_id="connections_messages_read", request=s.ReadIn, responses={200: s.ReadOut})
    def post(self, request, connection_id: uuid.UUID):
        """A read receipt: the chat is read up to ``up_to``; the other person hears ``message.read``."""
        data = _valid(s.ReadIn, request)
        message, moved = services.mark_read_up_to(user_id=request.user.pk, connection_id=connection_id,
                                                  up_to=data["up_to"])
        return Response({"up_to": str(message.pk), "read_at": message.created_at, "moved": moved})
