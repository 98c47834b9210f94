"""GraphQL types and resolvers of crossings: ``crossings`` (the keyset pages of GET crossings/,
same order and cursors) and ``crossing(id)``.

Pages come from ``crossings.selectors.crossings_page`` (first page cached) and profiles and
visibility from ``with_profiles``, as in the REST views.  Design: docs/subsystems/graphql.md.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from django.http import Http404

from accounts.api.graphql import PublicProfile, profile_out
from core.api import graphql as gql
from crossings import selectors

DEFAULT_PAGE_SIZE = 20


@strawberry.type(description="A coarse place: the centre of an H3 resolution-7 cell (~1.2 km), never a ping.")
class Place:
    lat: float
    lng: float
    cell: str
    city: str | None


@strawberry.type
class Crossing:
    id: strawberry.ID
    user: PublicProfile
    first_crossed_at: datetime = strawberry.field(description="Truncated to the minute.")
    last_crossed_at: datetime = strawberry.field(description="Truncated to the minute.")
    times: int = strawberry.field(description="Number of separate encounters.")
    place: Place


@strawberry.type(description="One page, newest encounter first; cursors are those of GET crossings/.")
class CrossingPage:
    items: list[Crossing]
    has_next: bool
    has_previous: bool
    next_cursor: str | None = strawberry.field(description="Pass as `cursor` for the next (older) page.")
    previous_cursor: str | None = strawberry.field(description="Pass as `cursor` for the previous page.")


def crossing_out(item: dict) -> Crossing:
    place = item["place"]
    return Crossing(id=item["id"], user=profile_out(item["user"]), first_crossed_at=item["first_crossed_at"],
                    last_crossed_at=item["last_crossed_at"], times=item["times"],
                    place=Place(lat=place["lat"], lng=place["lng"], cell=place["cell"], city=place["city"]))


def _crossings(info: strawberry.Info, first: int | None = DEFAULT_PAGE_SIZE,
               cursor: str | None = None) -> CrossingPage | None:
    me = gql.viewer_id(info)
    size = gql.page_size(first, DEFAULT_PAGE_SIZE)
    parsed = gql.parse_cursor(cursor)
    page = selectors.crossings_page(me, parsed, size)
    if page is None:
        raise gql.CodedError("Invalid cursor.", "NOT_FOUND")
    rows, has_next, has_previous = page
    return CrossingPage(
        items=[crossing_out(item) for item in selectors.with_profiles(me, rows)],
        has_next=has_next, has_previous=has_previous,
        next_cursor=f"n.{rows[-1]['id']}" if has_next and rows else None,
        previous_cursor=f"p.{rows[0]['id']}" if has_previous and rows else None,
    )


def _crossing(info: strawberry.Info, id: strawberry.ID) -> Crossing | None:
    me = gql.viewer_id(info)
    crossing = selectors.get_visible_crossing(me, gql.parse_id(id))
    items = selectors.with_profiles(me, [selectors.crossing_row(crossing, me)]) if crossing else []
    if not items:
        raise Http404
    return crossing_out(items[0])


@strawberry.type
class CrossingsQuery:
    crossings: CrossingPage | None = strawberry.field(
        resolver=_crossings, description="People I crossed paths with, newest encounter first (GET crossings/).")
    crossing: Crossing | None = strawberry.field(
        resolver=_crossing, description="One crossing of mine (GET crossings/{id}/).")
