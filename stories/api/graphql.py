"""GraphQL types and resolvers of stories: ``feed``, ``nearbyStories(lat, lng)``, ``story(id)``
and the ``postStory`` mutation (text stories; media goes through POST stories/).

Every read is a ``stories.selectors`` call (batched caches; blocks, expiry and visibility are
decided there), as in the REST views.  Design: docs/subsystems/graphql.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from django.http import Http404

from accounts.api.graphql import PublicProfile, profile_out
from core.api import graphql as gql
from stories import selectors, services
from stories.api import serializers as s


@strawberry.enum
class StoryVisibility(Enum):
    PUBLIC = "public"
    CONNECTIONS = "connections"
    CLOSE_FRIENDS = "close_friends"


@strawberry.type
class Story:
    id: strawberry.ID
    author_id: strawberry.ID
    author: PublicProfile | None = strawberry.field(description="Null only in postStory's answer.")
    kind: str = strawberry.field(description="text, image or video.")
    text: str
    caption: str
    media_url: str | None
    media_type: str | None
    visibility: str
    created_at: datetime
    expires_at: datetime
    distance_km: float | None = strawberry.field(
        description="nearbyStories only: between coarse cells (~2 km precision).")


@strawberry.type(description="Live stories of one author, newest first.")
class FeedGroup:
    author: PublicProfile
    stories: list[Story]


@strawberry.type
class NearbyStories:
    radius_km: float = strawberry.field(description="The radius used: 5, widened to 10, 15 or 20 km if needed.")
    expanded: bool
    enough: bool = strawberry.field(description="False: few stories even at the widest radius.")
    count: int
    results: list[Story]


def story_out(item: dict, author: PublicProfile | None, distance_km: float | None = None) -> Story:
    return Story(id=item["id"], author_id=item["author_id"], author=author, kind=item["kind"], text=item["text"],
                 caption=item["caption"], media_url=item["media_url"], media_type=item["media_type"],
                 visibility=item["visibility"], created_at=item["created_at"], expires_at=item["expires_at"],
                 distance_km=distance_km)


def _feed(info: strawberry.Info) -> list[FeedGroup] | None:
    groups = []
    for group in selectors.feed(gql.viewer_id(info)):
        author = profile_out(group["author"])
        groups.append(FeedGroup(author=author, stories=[story_out(item, author) for item in group["stories"]]))
    return groups


def _nearby(info: strawberry.Info, lat: float, lng: float) -> NearbyStories | None:
    me = gql.viewer_id(info)
    query = s.NearbyQuery(data={"lat": lat, "lng": lng})
    query.is_valid(raise_exception=True)
    found = selectors.nearby(me, query.validated_data["lat"], query.validated_data["lng"])
    return NearbyStories(radius_km=found["radius_km"], expanded=found["expanded"], enough=found["enough"],
                         count=found["count"],
                         results=[story_out(item, profile_out(item["author"]), item["distance_km"])
                                  for item in found["results"]])


def _story(info: strawberry.Info, id: strawberry.ID) -> Story | None:
    story = selectors.visible_story(gql.viewer_id(info), gql.parse_id(id))
    if story is None:
        raise Http404
    return story_out(story, profile_out(story["author"]))


@strawberry.type
class StoriesQuery:
    feed: list[FeedGroup] | None = strawberry.field(
        resolver=_feed, description="Live stories of my connections that I may see, and my own, grouped by "
                                    "author (GET stories/feed/).")
    nearby_stories: NearbyStories | None = strawberry.field(
        resolver=_nearby, description="Live public stories near a point (GET stories/nearby/).")
    story: Story | None = strawberry.field(
        resolver=_story, description="One live story I may see (GET stories/{id}/).")


@strawberry.type
class StoriesMutation:
    @strawberry.mutation(description="Post a text story; it lives 24 h (POST stories/ with JSON).")
    def post_story(self, info: strawberry.Info, text: str,
                   visibility: StoryVisibility = StoryVisibility.CONNECTIONS,
                   lat: float | None = None, lng: float | None = None) -> Story:
        me = gql.viewer_id(info)
        data: dict = {"text": text, "visibility": visibility.value}
        if lat is not None:
            data["lat"] = lat
        if lng is not None:
            data["lng"] = lng
        serializer = s.StoryIn(data=data)
        serializer.is_valid(raise_exception=True)
        valid = serializer.validated_data
        story = services.create_story(author_id=me, text=valid["text"], caption=valid["caption"],
                                      visibility=valid["visibility"], lat=valid.get("lat"), lng=valid.get("lng"))
        return story_out(selectors.public_story(selectors.story_dict(story)), None)
