"""core.cache.response through the API: one round trip per cached read, never stale."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from accounts import services as account_services
from tests.conftest import client_for
from tests.factories import make_connection, make_crossing, make_story, make_user

pytestmark = pytest.mark.django_db

CROSSINGS = "/api/v1/crossings/"
CONNECTIONS = "/api/v1/connections/?status=accepted"
FEED = "/api/v1/stories/feed/"


@pytest.fixture
def neighbourhood():
    """A viewer who crossed three people, is connected with two of them, who posted stories."""
    viewer = make_user(display_name="Viewer")
    others = [make_user(display_name=f"Other {n}") for n in range(3)]
    for n, other in enumerate(others):
        make_crossing(viewer, other)
        if n < 2:
            make_connection(viewer, other)
            make_story(other, f"story {n}")
    return viewer, others


def _stored_entries() -> int:
    return len(list(cache.client.get_client().scan_iter(match=cache.make_key("rc:*"), count=1000)))


def _paths(others):
    return [CROSSINGS, CONNECTIONS, FEED, f"/api/v1/users/{others[0].pk}/"]


def test_a_repeated_read_is_one_round_trip_with_no_query(neighbourhood, round_trips, django_assert_num_queries):
    viewer, others = neighbourhood
    client = client_for(viewer)
    for path in _paths(others):
        first = client.get(path)
        assert first.status_code == 200, path
        round_trips.clear()
        with django_assert_num_queries(0):
            again = client.get(path)
        assert len(round_trips) == 1, path  # rate-limit count, entry and its versions: one script
        assert again.status_code == 200
        assert again.content == first.content
        def headers(response):
            return {name: value for name, value in response.items() if name != "X-Request-ID"}

        assert headers(again) == headers(first), path  # security headers, ETag, Vary... all the same
    assert _stored_entries() == 4


def test_conditional_request_answered_from_the_stored_entry(neighbourhood, django_assert_num_queries):
    viewer, _others = neighbourhood
    client = client_for(viewer)
    etag = client.get(CROSSINGS)["ETag"]
    assert etag
    with django_assert_num_queries(0):
        response = client.get(CROSSINGS, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response["ETag"] == etag
    assert "private" in response["Cache-Control"]
    assert client.get(CROSSINGS, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


def test_a_profile_edit_of_a_listed_user_shows_at_once(neighbourhood, django_capture_on_commit_callbacks):
    viewer, others = neighbourhood
    client = client_for(viewer)
    for path in _paths(others):
        client.get(path)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.update_profile(others[0].pk, display_name="Renamed")
    names = {user["display_name"] for user in
             (item["user"] for item in client.get(CROSSINGS).json()["results"])}
    assert "Renamed" in names and "Other 0" not in names
    assert "Renamed" in [item["user"]["display_name"] for item in client.get(CONNECTIONS).json()["results"]]
    assert "Renamed" in [group["author"]["display_name"] for group in client.get(FEED).json()["results"]]
    assert client.get(f"/api/v1/users/{others[0].pk}/").json()["display_name"] == "Renamed"


def test_a_block_hides_at_once_everywhere(neighbourhood, django_capture_on_commit_callbacks):
    viewer, others = neighbourhood
    client = client_for(viewer)
    for path in _paths(others):
        client.get(path)
    blocked = str(others[0].pk)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.block_user(blocker_id=others[0].pk, blocked_id=viewer.pk)  # blocked by them
    assert blocked not in [item["user"]["id"] for item in client.get(CROSSINGS).json()["results"]]
    assert blocked not in [item["user"]["id"] for item in client.get(CONNECTIONS).json()["results"]]
    assert blocked not in [group["author"]["id"] for group in client.get(FEED).json()["results"]]
    assert client.get(f"/api/v1/users/{blocked}/").status_code == 404


def test_own_writes_show_in_the_next_read(neighbourhood, django_capture_on_commit_callbacks):
    viewer, _others = neighbourhood
    client = client_for(viewer)
    assert len(client.get(FEED).json()["results"]) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/stories/", {"text": "mine"}, format="json").status_code == 201
    groups = client.get(FEED).json()["results"]
    assert groups[0]["author"]["id"] == str(viewer.pk) and groups[0]["stories"][0]["text"] == "mine"
    with django_capture_on_commit_callbacks(execute=True):
        conn_id = client.get(CONNECTIONS).json()["results"][0]["id"]
        assert client.delete(f"/api/v1/connections/{conn_id}/").status_code == 204
    assert conn_id not in [item["id"] for item in client.get(CONNECTIONS).json()["results"]]


def test_pages_read_from_the_database_are_not_stored(neighbourhood, django_assert_max_num_queries):
    viewer, _others = neighbourhood
    client = client_for(viewer)
    first = client.get(CROSSINGS + "?page_size=1").json()
    cursor_page = first["next"].split("?", 1)[1]
    for _ in range(2):
        response = client.get(f"{CROSSINGS}?{cursor_page}")
        assert response.status_code == 200
    assert _stored_entries() == 1  # the first page only
    # Refused and not-found answers are not stored either.
    stranger = make_user()
    assert client.get(f"/api/v1/users/{stranger.pk}/").status_code == 404
    assert _stored_entries() == 1


def test_each_request_counts_once_against_the_rate_limit(neighbourhood, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                          "user": "4/minute"}}
    viewer, _others = neighbourhood
    client = client_for(viewer)
    statuses = [client.get(CROSSINGS).status_code for _ in range(5)]  # a miss, then hits
    assert statuses == [200, 200, 200, 200, 429]
    response = client.get(CONNECTIONS)  # the same user's limit, whatever the endpoint
    assert response.status_code == 429
    assert response["Retry-After"]


def test_links_follow_the_host_asked_for(neighbourhood, settings):
    settings.ALLOWED_HOSTS = ["a.example.com", "b.example.com", "testserver"]
    viewer, _others = neighbourhood
    client = client_for(viewer)
    one = client.get(CROSSINGS + "?page_size=1", HTTP_HOST="a.example.com").json()["next"]
    two = client.get(CROSSINGS + "?page_size=1", HTTP_HOST="b.example.com").json()["next"]
    assert one.startswith("http://a.example.com/") and two.startswith("http://b.example.com/")


def test_switched_off_by_setting(neighbourhood, settings, django_assert_max_num_queries):
    settings.RESPONSE_CACHE_ENABLED = False
    viewer, _others = neighbourhood
    client = client_for(viewer)
    client.get(CROSSINGS)
    assert _stored_entries() == 0
    assert client.get(CROSSINGS).status_code == 200


def test_a_response_depends_on_every_version_it_read(neighbourhood):
    """The collector sees the versions of everything the crossings page used."""
    from core.cache import keys as cachekeys

    viewer, others = neighbourhood
    deps, token = cachekeys.collect_dependencies()
    try:
        from crossings import selectors

        rows, _next, _previous = selectors.crossings_page(viewer.pk, None, 20)
        selectors.with_profiles(viewer.pk, rows)
    finally:
        cachekeys.stop_collecting(token)
    assert deps.complete
    names = "\n".join(deps.versions)
    assert f"acc-hid:{viewer.pk}" in names
    for other in others:
        assert f"acc-prof:{other.pk}" in names
    assert "__epoch__" in names


def test_stored_compressed_and_served_as_gzip_middleware_would(neighbourhood):
    import gzip

    viewer, others = neighbourhood
    client = client_for(viewer)
    for path in _paths(others):
        plain = client.get(path).content
        for _ in range(2):  # the miss (compressed by GZipMiddleware), then a hit (stored compressed)
            response = client.get(path, HTTP_ACCEPT_ENCODING="gzip, deflate")
            if len(plain) >= 200:
                assert response["Content-Encoding"] == "gzip", path
                assert gzip.decompress(response.content) == plain
                assert response["ETag"].startswith('W/"')
            else:
                assert response.content == plain
            assert "Accept-Encoding" in response["Vary"]
        assert client.get(path).content == plain  # a client without gzip gets it plain from the entry
        etag = client.get(path, HTTP_ACCEPT_ENCODING="gzip")["ETag"]
        assert client.get(path, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=etag).status_code == 304
