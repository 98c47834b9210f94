"""Nearby stories: widening radius, per-cell cache that never hides a fresh write, privacy."""

from __future__ import annotations

import math

import pytest

from tests.conftest import client_for
from tests.factories import make_connection, make_story, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/stories/nearby/"
LAT, LNG = 48.8566, 2.3522  # Paris


def east(km: float) -> tuple[float, float]:
    """A point ``km`` east of the centre."""
    return LAT, LNG + km / (111.32 * math.cos(math.radians(LAT)))


def post_public(n: int, km: float, visibility="public"):
    lat, lng = east(km)
    return [make_story(make_user(), f"{km}km-{i}", visibility=visibility, lat=lat, lng=lng) for i in range(n)]


def nearby(client, lat=LAT, lng=LNG):
    response = client.get(f"{URL}?lat={lat}&lng={lng}")
    assert response.status_code == 200, response.content
    return response.json()


def test_radius_widens_until_enough(auth_client, settings):
    settings.STORY_NEARBY_ENOUGH = 3
    assert nearby(auth_client)["radius_km"] == 20 and nearby(auth_client)["enough"] is False  # "be the first"
    from django.core.cache import cache

    post_public(2, 1)
    post_public(2, 12)
    post_public(5, 40)  # too far for any radius
    cache.delete_pattern("*nearby*")
    body = nearby(auth_client)
    assert body["radius_km"] == 15 and body["expanded"] is True and body["count"] == 4 and body["enough"]
    assert all(item["distance_km"] <= 15 for item in body["results"])
    post_public(3, 2)
    cache.delete_pattern("*nearby*")
    body = nearby(auth_client)
    assert body["radius_km"] == 5 and body["expanded"] is False and body["count"] == 5


def test_only_live_public_stories_and_never_a_raw_position(auth_client):
    post_public(1, 1, visibility="connections")
    post_public(1, 1, visibility="close_friends")
    (public,) = post_public(1, 1)
    body = nearby(auth_client)
    assert [item["id"] for item in body["results"]] == [str(public.pk)]
    item = body["results"][0]
    assert not {"lat", "lng", "place_lat", "place_lng", "place_cell", "_lat", "_cell"} & set(item)
    assert "phone" not in item["author"]


def test_own_story_and_deletion_show_at_once_despite_the_cell_cache(user, auth_client):
    post_public(1, 1)
    assert nearby(auth_client)["count"] == 1  # the cell's candidates are cached now
    lat, lng = east(0.5)
    response = auth_client.post("/api/v1/stories/", {"text": "mine", "visibility": "public", "lat": lat,
                                                      "lng": lng}, format="json")
    story_id = response.json()["id"]
    assert {item["text"] for item in nearby(auth_client)["results"]} == {"1km-0", "mine"}
    other = client_for(make_user())
    assert {item["text"] for item in nearby(other)["results"]} >= {"1km-0"}
    auth_client.delete(f"/api/v1/stories/{story_id}/")
    assert {item["text"] for item in nearby(auth_client)["results"]} == {"1km-0"}
    assert {item["text"] for item in nearby(other)["results"]} == {"1km-0"}


def test_blocked_authors_are_hidden_both_ways(user, auth_client, django_capture_on_commit_callbacks):
    from accounts import services as account_services

    (story,) = post_public(1, 1)
    assert nearby(auth_client)["count"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        account_services.block_user(blocker_id=story.author_id, blocked_id=user.pk)
    assert nearby(auth_client)["count"] == 0
    assert auth_client.get(f"/api/v1/stories/{story.pk}/").status_code == 404


@pytest.mark.parametrize("query", ["", "?lat=1", "?lat=abc&lng=2", "?lat=95&lng=2", "?lat=1&lng=181"])
def test_bad_points_are_a_400(auth_client, query):
    assert auth_client.get(URL + query).status_code == 400


def test_nearby_is_private_and_revalidated(auth_client):
    post_public(1, 1)
    first = auth_client.get(f"{URL}?lat={LAT}&lng={LNG}")
    assert "private" in first["Cache-Control"] and "public" not in first["Cache-Control"]
    again = auth_client.get(f"{URL}?lat={LAT}&lng={LNG}", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_connection_only_story_nearby_is_not_listed_even_for_connections(user, auth_client):
    friend = make_user()
    make_connection(user, friend)
    lat, lng = east(1)
    make_story(friend, "conn only", visibility="connections", lat=lat, lng=lng)
    assert nearby(auth_client)["count"] == 0
