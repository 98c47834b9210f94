"""The crossings API: feed, detail, pagination, caching, visibility and privacy."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services as account_services
from core.geo import haversine_m
from crossings import selectors
from tests.conftest import client_for
from tests.factories import make_crossing, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def me(db):
    return make_user(display_name="Me")


def _feed(client, **params):
    response = client.get("/api/v1/crossings/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_feed_newest_first_with_profiles_and_coarse_place(me):
    now = timezone.now()
    old, new = make_user(display_name="Old"), make_user(display_name="New")
    make_crossing(me, old, at=now - timedelta(hours=3))
    make_crossing(me, new, at=now - timedelta(minutes=5), times=2)
    body = _feed(client_for(me))
    assert [item["user"]["display_name"] for item in body["results"]] == ["New", "Old"]
    item = body["results"][0]
    assert set(item) == {"id", "user", "first_crossed_at", "last_crossed_at", "times", "place"}
    assert item["times"] == 2
    assert set(item["user"]) == {"id", "display_name", "bio", "avatar_url", "is_verified"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", item["last_crossed_at"])
    assert item["place"]["cell"] and len(item["place"]["cell"]) == 15


def test_feed_carries_no_raw_coordinates_phone_or_exact_times(me):
    other = make_user()
    at = timezone.now().replace(second=37, microsecond=123456)
    crossing = make_crossing(me, other, at=at, lat=52.5212345, lng=13.4098765)
    raw = client_for(me).get("/api/v1/crossings/").content.decode()
    detail = client_for(me).get(f"/api/v1/crossings/{crossing.pk}/").content.decode()
    for body in (raw, detail):
        assert "52.5212345" not in body and "13.4098765" not in body
        assert other.phone not in body and "123456" not in body
        assert re.search(r"\d\d:\d\d:37", body) is None  # seconds dropped (the minute may be 37)
    # The place is the centre of a cell of at least 500 m, not the ping.
    place = client_for(me).get(f"/api/v1/crossings/{crossing.pk}/").json()["place"]
    assert haversine_m(52.5212345, 13.4098765, place["lat"], place["lng"]) < 1500


def test_pagination_by_opaque_cursor(me):
    now = timezone.now()
    others = [make_user(display_name=f"U{i}") for i in range(5)]
    for i, other in enumerate(others):
        make_crossing(me, other, at=now - timedelta(minutes=i))
    client = client_for(me)
    first = _feed(client, page_size=2)
    assert [r["user"]["display_name"] for r in first["results"]] == ["U0", "U1"]
    assert first["previous"] is None and first["next"]
    cursor = first["next"].split("cursor=")[1].split("&")[0]
    assert "T" not in cursor and ":" not in cursor  # an id, not a time
    second = client.get(first["next"]).json()
    assert [r["user"]["display_name"] for r in second["results"]] == ["U2", "U3"]
    third = client.get(second["next"]).json()
    assert [r["user"]["display_name"] for r in third["results"]] == ["U4"] and third["next"] is None
    back = client.get(third["previous"]).json()
    assert [r["user"]["display_name"] for r in back["results"]] == ["U2", "U3"]


@pytest.mark.parametrize("params,status", [
    ({"page_size": "x"}, 400), ({"page_size": 0}, 400), ({"page_size": 101}, 400),
    ({"cursor": "garbage"}, 404), ({"cursor": "n.00000000-0000-0000-0000-000000000000"}, 404),
])
def test_bad_input_is_a_clear_4xx(me, params, status):
    response = client_for(me).get("/api/v1/crossings/", params)
    assert response.status_code == status
    assert response.json()


def test_detail_and_404s(me):
    other, stranger = make_user(), make_user()
    crossing = make_crossing(me, other)
    assert client_for(me).get(f"/api/v1/crossings/{crossing.pk}/").status_code == 200
    assert client_for(other).get(f"/api/v1/crossings/{crossing.pk}/").status_code == 200
    assert client_for(stranger).get(f"/api/v1/crossings/{crossing.pk}/").status_code == 404
    assert client_for(me).get("/api/v1/crossings/not-a-uuid/").status_code == 404
    assert client_for(me).get("/api/v1/crossings/").status_code == 200


def test_unauthenticated_is_401(api):
    assert api.get("/api/v1/crossings/").status_code == 401


def test_block_hides_an_existing_crossing_at_once_both_ways(me, django_capture_on_commit_callbacks):
    other = make_user()
    crossing = make_crossing(me, other)
    assert len(_feed(client_for(me))["results"]) == 1  # cached now
    with django_capture_on_commit_callbacks(execute=True):
        account_services.block_user(blocker_id=other.pk, blocked_id=me.pk)
    assert _feed(client_for(me))["results"] == []
    assert _feed(client_for(other))["results"] == []
    assert client_for(me).get(f"/api/v1/crossings/{crossing.pk}/").status_code == 404
    assert not selectors.have_crossed(me.pk, other.pk)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.unblock_user(blocker_id=other.pk, blocked_id=me.pk)
    assert len(_feed(client_for(me))["results"]) == 1


def test_shadow_banned_user_sees_own_crossings_but_nobody_sees_them(me, django_capture_on_commit_callbacks):
    banned = make_user()
    make_crossing(me, banned)
    assert len(_feed(client_for(me))["results"]) == 1
    with django_capture_on_commit_callbacks(execute=True):
        account_services.set_shadow_ban([banned.pk], True)
    assert _feed(client_for(me))["results"] == []
    assert [r["user"]["id"] for r in _feed(client_for(banned))["results"]] == [str(me.pk)]
    assert not selectors.have_crossed(me.pk, banned.pk)


def test_deactivated_user_disappears(me, django_capture_on_commit_callbacks):
    gone = make_user()
    make_crossing(me, gone)
    _feed(client_for(me))
    with django_capture_on_commit_callbacks(execute=True):
        account_services.deactivate_user(gone.pk)
    assert _feed(client_for(me))["results"] == []


def test_crossing_makes_profile_visible(me):
    other, stranger = make_user(), make_user()
    make_crossing(me, other)
    assert client_for(me).get(f"/api/v1/users/{other.pk}/").status_code == 200
    assert client_for(me).get(f"/api/v1/users/{stranger.pk}/").status_code == 404
    assert selectors.have_crossed(other.pk, me.pk)


def test_a_crossing_never_shows_a_blocked_banned_or_deactivated_profile(me, django_capture_on_commit_callbacks):
    """The crossing rule asks only about the crossing: blocks (either way), shadow bans and
    deactivation are checked before it and win over it."""
    blocker, blocked, banned, gone = make_user(), make_user(), make_user(), make_user()
    for other in (blocker, blocked, banned, gone):
        make_crossing(me, other)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.block_user(blocker_id=blocker.pk, blocked_id=me.pk)
        account_services.block_user(blocker_id=me.pk, blocked_id=blocked.pk)
        account_services.set_shadow_ban([banned.pk], True)
        account_services.deactivate_user(gone.pk)
    client = client_for(me)
    for other in (blocker, blocked, banned, gone):
        assert client.get(f"/api/v1/users/{other.pk}/").status_code == 404
    assert selectors.crossed_rule(me.pk, blocker.pk)  # the rule alone: yes, they crossed
    assert not selectors.crossed_rule(me.pk, me.pk)
    assert not selectors.crossed_rule(me.pk, make_user().pk)


def test_first_page_is_cached_and_invalidated_on_change(me):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    other = make_user()
    make_crossing(me, other)
    client = client_for(me)
    _feed(client)
    with CaptureQueriesContext(connection) as queries:
        _feed(client)
    assert not [q for q in queries.captured_queries if "crossings" in q["sql"]]
    make_crossing(me, make_user())  # bumps both users' versions, as the detector does
    assert len(_feed(client)["results"]) == 2


def test_a_crossed_profile_is_read_in_one_round_trip_besides_the_response_cache(me, round_trips):
    """GET users/{id}/ of a crossed person, the response not stored yet: the target's profile, the
    viewer's hidden set and crossed ids are read together (accounts.visibility.profile_reads),
    not one round trip each; the response cache's lookup and store are the other two."""
    first, second = make_user(display_name="First"), make_user(display_name="Second")
    make_crossing(me, first)
    make_crossing(me, second)
    client = client_for(me)
    assert len(_feed(client)["results"]) == 2  # caches both profiles and the viewer's hidden set
    assert client.get(f"/api/v1/users/{first.pk}/").status_code == 200  # caches the viewer's crossed ids
    round_trips.clear()
    response = client.get(f"/api/v1/users/{second.pk}/")
    assert response.status_code == 200 and response.json()["display_name"] == "Second"
    assert len(round_trips) == 3
    round_trips.clear()
    assert client.get(f"/api/v1/users/{second.pk}/").json()["display_name"] == "Second"
    assert len(round_trips) == 1  # stored: the lookup answers


def test_the_first_page_compiled_once_shows_what_the_model_rows_show(me, django_capture_on_commit_callbacks):
    """``first_page`` (the page a cache miss reads) runs SQL compiled once for users who hide
    no one, and the ORM's query for those who do: both give what ``crossing_row`` makes of
    the visible crossings, whichever side of each pair the viewer is on, city or no city."""
    from locations.models import City

    def by_models(user, size):
        page = list(selectors.visible_crossings(user.pk).order_by("-last_crossed_at", "-id")[: size + 1])
        return {"rows": [selectors.crossing_row(c, user.pk) for c in page[:size]], "next": len(page) > size}

    now = timezone.now()
    others = [make_user() for _ in range(5)]
    city = City.objects.create(slug="testville", name="Testville", lat=52.5, lng=13.4, radius_km=30)
    for i, other in enumerate(others):
        crossing = make_crossing(me, other, at=now - timedelta(minutes=i), times=i + 1)
        if i % 2:
            type(crossing).objects.filter(pk=crossing.pk).update(city=city)
    banned = others[4]
    with django_capture_on_commit_callbacks(execute=True):
        account_services.set_shadow_ban([banned.pk], True)
    for size in (2, 10):
        page = selectors.first_page(me.pk, size)
        assert page == by_models(me, size)
    assert [row["place"]["city"] for row in selectors.first_page(me.pk, 10)["rows"]] == [
        None, "Testville", None, "Testville"]
    assert selectors.first_page(me.pk, 2)["next"] is True
    # The others are the high side of their pairs with me (ids grow with time): the other side.
    assert sorted([me.pk, others[1].pk])[1] == others[1].pk
    assert selectors.first_page(others[1].pk, 10) == by_models(others[1], 10) != {"rows": [], "next": False}
    with django_capture_on_commit_callbacks(execute=True):
        account_services.block_user(blocker_id=me.pk, blocked_id=others[0].pk)
    hidden_page = selectors.first_page(me.pk, 10)  # the ORM's query: NOT IN the hidden set
    assert hidden_page == by_models(me, 10)
    assert [row["user_id"] for row in hidden_page["rows"]] == [str(o.pk) for o in others[1:4]]
