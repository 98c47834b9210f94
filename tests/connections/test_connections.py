"""Connection requests: every transition, its permission, caching and conditional GETs."""

from __future__ import annotations

import pytest

from connections.models import Connection
from tests.conftest import client_for
from tests.factories import make_crossing, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/connections/"


@pytest.fixture
def pair():
    a, b = make_user(display_name="Ann"), make_user(display_name="Ben")
    make_crossing(a, b)
    return a, b, client_for(a), client_for(b)


def _request(client, user):
    return client.post(URL, {"user_id": str(user.pk)}, format="json")


def test_request_needs_a_crossing_and_is_idempotent(pair):
    _a, b, ca, _cb = pair
    stranger = make_user()
    assert _request(ca, stranger).status_code == 404
    first = _request(ca, b)
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["status"] == "pending" and body["direction"] == "outgoing"
    assert body["user"]["id"] == str(b.pk) and "phone" not in body["user"]
    again = _request(ca, b)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert Connection.objects.count() == 1


def test_bad_input_is_a_clear_400(pair):
    a, b, ca, _cb = pair
    assert ca.post(URL, {"user_id": "nope"}, format="json").status_code == 400
    assert ca.post(URL, {"user_id": str(a.pk)}, format="json").status_code == 400
    assert ca.post(URL, {"user_id": str(b.pk), "extra": 1}, format="json").status_code == 400
    assert ca.get(URL + "?status=weird").status_code == 400
    assert ca.post(URL + "not-a-uuid/accept/").status_code == 404


def test_accept_only_by_the_requested_side(pair):
    _a, b, ca, cb = pair
    conn_id = _request(ca, b).json()["id"]
    assert ca.post(f"{URL}{conn_id}/accept/").status_code == 403
    third = client_for(make_user())
    assert third.post(f"{URL}{conn_id}/accept/").status_code == 404
    response = cb.post(f"{URL}{conn_id}/accept/")
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert cb.post(f"{URL}{conn_id}/accept/").status_code == 409
    assert cb.post(f"{URL}{conn_id}/decline/").status_code == 409
    assert _request(ca, b).status_code == 409  # already connected


def test_decline_then_only_the_decliner_may_ask(pair):
    a, b, ca, cb = pair
    conn_id = _request(ca, b).json()["id"]
    assert ca.post(f"{URL}{conn_id}/decline/").status_code == 403
    assert cb.post(f"{URL}{conn_id}/decline/").json()["status"] == "declined"
    assert _request(ca, b).status_code == 409
    assert ca.delete(f"{URL}{conn_id}/").status_code == 409
    again = _request(cb, a)
    assert again.status_code == 200
    assert again.json()["status"] == "pending" and again.json()["direction"] == "outgoing"
    assert ca.post(f"{URL}{conn_id}/accept/").json()["status"] == "accepted"


def test_mutual_request_accepts(pair):
    a, b, ca, cb = pair
    _request(ca, b)
    response = _request(cb, a)
    assert response.status_code == 200 and response.json()["status"] == "accepted"


def test_request_back_toward_a_requester_needs_no_crossing():
    a, b = make_user(), make_user()
    make_crossing(a, b)
    ca, cb = client_for(a), client_for(b)
    _request(ca, b)
    from crossings.models import Crossing

    Crossing.objects.all().delete()
    assert _request(cb, a).json()["status"] == "accepted"


def test_cancel_and_remove(pair):
    _a, b, ca, cb = pair
    conn_id = _request(ca, b).json()["id"]
    assert cb.delete(f"{URL}{conn_id}/").status_code == 403  # the requested side declines instead
    assert ca.delete(f"{URL}{conn_id}/").status_code == 204
    assert not Connection.objects.exists()
    conn_id = _request(ca, b).json()["id"]
    cb.post(f"{URL}{conn_id}/accept/")
    assert client_for(make_user()).delete(f"{URL}{conn_id}/").status_code == 404
    assert cb.delete(f"{URL}{conn_id}/").status_code == 204
    assert ca.delete(f"{URL}{conn_id}/").status_code == 404


def _ids(client, status):
    response = client.get(f"{URL}?status={status}")
    assert response.status_code == 200, response.content
    assert "private" in response["Cache-Control"] and "public" not in response["Cache-Control"]
    return [item["user"]["id"] for item in response.json()["results"]]


def test_lists_by_status_are_fresh_for_both_sides(pair):
    a, b, ca, cb = pair
    assert _ids(cb, "incoming") == [] and _ids(ca, "outgoing") == []  # both cached now
    conn_id = _request(ca, b).json()["id"]
    assert _ids(cb, "incoming") == [str(a.pk)]
    assert _ids(ca, "outgoing") == [str(b.pk)]
    assert _ids(ca, "accepted") == [] and _ids(cb, "accepted") == []
    cb.post(f"{URL}{conn_id}/accept/")
    assert _ids(cb, "incoming") == [] and _ids(ca, "outgoing") == []
    assert _ids(ca, "accepted") == [str(b.pk)] and _ids(cb, "accepted") == [str(a.pk)]
    ca.delete(f"{URL}{conn_id}/")
    assert _ids(ca, "accepted") == [] and _ids(cb, "accepted") == []


def test_profile_edit_shows_at_once_in_a_cached_list(pair, django_capture_on_commit_callbacks):
    from accounts import services as account_services

    a, b, ca, cb = pair
    _request(ca, b)
    assert cb.get(f"{URL}?status=incoming").json()["results"][0]["user"]["display_name"] == "Ann"
    with django_capture_on_commit_callbacks(execute=True):
        account_services.update_profile(a.pk, display_name="Anna")
    assert cb.get(f"{URL}?status=incoming").json()["results"][0]["user"]["display_name"] == "Anna"


def test_list_is_cursor_paginated_newest_first():
    me = make_user()
    others = [make_user() for _ in range(5)]
    for other in others:
        make_crossing(me, other)
    client = client_for(me)
    for other in others:
        _request(client, other)
    first = client.get(f"{URL}?status=outgoing&page_size=3").json()
    assert [i["user"]["id"] for i in first["results"]] == [str(o.pk) for o in others[::-1][:3]]
    second = client.get(first["next"]).json()
    assert [i["user"]["id"] for i in second["results"]] == [str(o.pk) for o in others[::-1][3:]]
    assert second["next"] is None


def test_conditional_get_returns_304(pair):
    _a, b, ca, cb = pair
    _request(ca, b)
    first = cb.get(f"{URL}?status=incoming")
    etag = first["ETag"]
    assert "Authorization" in first["Vary"]
    again = cb.get(f"{URL}?status=incoming", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    ca.delete(f"{URL}{first.json()['results'][0]['id']}/")
    changed = cb.get(f"{URL}?status=incoming", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_block_removes_the_connection_at_once(pair, django_capture_on_commit_callbacks):
    from accounts import services as account_services

    a, b, ca, cb = pair
    conn_id = _request(ca, b).json()["id"]
    cb.post(f"{URL}{conn_id}/accept/")
    assert _ids(ca, "accepted") == [str(b.pk)]
    with django_capture_on_commit_callbacks(execute=True):
        account_services.block_user(blocker_id=b.pk, blocked_id=a.pk)
    assert not Connection.objects.exists()
    assert _ids(ca, "accepted") == [] and _ids(cb, "accepted") == []
    assert _request(ca, b).status_code == 404
    assert ca.get(f"/api/v1/users/{b.pk}/").status_code == 404


def test_connections_see_each_others_profile_without_a_crossing(pair):
    from crossings.models import Crossing

    a, b, ca, cb = pair
    conn_id = _request(ca, b).json()["id"]
    Crossing.objects.all().delete()
    from crossings import cache as cx_cache

    cx_cache.bump_users([a.pk, b.pk])
    assert cb.get(f"/api/v1/users/{a.pk}/").status_code == 200  # a pending request shows the asker
    cb.post(f"{URL}{conn_id}/accept/")
    assert ca.get(f"/api/v1/users/{b.pk}/").status_code == 200
    ca.delete(f"{URL}{conn_id}/")
    assert ca.get(f"/api/v1/users/{b.pk}/").status_code == 404
