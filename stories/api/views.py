"""Stories endpoints (docs/api.md): thin views over stories.services and stories.selectors."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status as http_status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.http import conditional_json
from core.api.rest import OrjsonParser, PayloadTooLarge
from core.cache import response as response_cache
from stories import media, selectors, services
from stories.api import serializers as s

# Multipart overhead allowed above the largest media file before the body is refused unread.
_FORM_OVERHEAD = 64 * 1024


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _check_length(request) -> None:
    """Refuse an oversized upload from its Content-Length, before reading it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > media.max_upload_bytes() + _FORM_OVERHEAD:
        raise PayloadTooLarge(f"Media may be at most {media.max_upload_bytes()} bytes.")


class StoryCreateView(APIView):
    # The upload: documented as multipart (JSON still works for text stories).
    parser_classes = (OrjsonParser, MultiPartParser)

    @extend_schema(request={"multipart/form-data": s.StoryIn}, responses={201: s.StoryOut})
    def post(self, request):
        """Post a text story or an image/short video (field `media`); it lives 24 h."""
        _check_length(request)
        data = _valid(s.StoryIn, request.data)
        story = services.create_story(author_id=request.user.pk, text=data["text"], caption=data["caption"],
                                      visibility=data["visibility"], upload=data.get("media"),
                                      lat=data.get("lat"), lng=data.get("lng"))
        return Response(selectors.public_story(selectors.story_dict(story)), status=http_status.HTTP_201_CREATED)


class FeedView(APIView):
    response_cache = True  # core.cache.response: built from cached reads, until a story expires

    @extend_schema(operation_id="stories_feed_list", responses=s.FeedOut)
    def get(self, request):
        """Live stories of my connections that I may see, and my own, grouped by author."""
        groups = selectors.feed(request.user.pk)
        expiries = [story["expires_at"].timestamp() for group in groups for story in group["stories"]]
        response_cache.cacheable(request, until=min(expiries, default=None))
        return conditional_json(request, {"results": groups})


class NearbyView(APIView):
    @extend_schema(operation_id="stories_nearby_list",
                   parameters=[OpenApiParameter("lat", {"type": "number", "minimum": -90, "maximum": 90},
                                                required=True),
                               OpenApiParameter("lng", {"type": "number", "minimum": -180, "maximum": 180},
                                                required=True)], responses=s.NearbyOut)
    def get(self, request):
        """Live public stories near a point; the radius widens 5 → 10 → 15 → 20 km until enough."""
        query = _valid(s.NearbyQuery, request.query_params)
        return conditional_json(request, selectors.nearby(request.user.pk, query["lat"], query["lng"]))


class StoryDetailView(APIView):
    @extend_schema(responses=s.StoryWithAuthorOut)
    def get(self, request, story_id: uuid.UUID):
        story = selectors.visible_story(request.user.pk, story_id)
        if story is None:
            raise NotFound("No such story.")
        # The content never changes; a deletion by the author invalidates the client's copy.
        return conditional_json(request, story, max_age=60, last_modified=story["created_at"])

    @extend_schema(responses={204: None})
    def delete(self, request, story_id: uuid.UUID):
        services.delete_story(user_id=request.user.pk, story_id=story_id)
        return Response(status=http_status.HTTP_204_NO_CONTENT)


class StoryReportView(APIView):
    @extend_schema(request=s.StoryReportIn, responses={201: s.StoryReportOut})
    def post(self, request, story_id: uuid.UUID):
        """Report a story to staff (same as ``POST reports/ {story_id, reason}``)."""
        data = _valid(s.StoryReportIn, request.data)
        body = services.report_story(request.user.pk, story_id, data["reason"], data["details"])
        return Response(body, status=http_status.HTTP_201_CREATED)


class CloseFriendListView(APIView):
    @extend_schema(operation_id="stories_close_friends_list", responses=s.CloseFriendsOut)
    def get(self, request):
        """My close friends: the connections who see my close-friends stories."""
        return conditional_json(request, {"results": selectors.close_friends_of(request.user.pk)})

    @extend_schema(request=s.CloseFriendIn, responses={201: s.CloseFriendOut, 200: s.CloseFriendOut})
    def post(self, request):
        data = _valid(s.CloseFriendIn, request.data)
        created = services.add_close_friend(author_id=request.user.pk, friend_id=data["user_id"])
        return Response({"user_id": str(data["user_id"])},
                        status=http_status.HTTP_201_CREATED if created else http_status.HTTP_200_OK)


class CloseFriendDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, user_id: uuid.UUID):
        if not services.remove_close_friend(author_id=request.user.pk, friend_id=user_id):
            raise NotFound("Not on your close-friends list.")
        return Response(status=http_status.HTTP_204_NO_CONTENT)


