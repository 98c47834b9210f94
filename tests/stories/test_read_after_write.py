"""Staleness cannot be observed through the API after a write by the same user, nor a block.

These run with real commits (``transaction=True``): bumps after commit, read-your-writes
routing and the mirrored replica alias behave as in production.  Each step warms the caches
with a read, writes through the API, and reads again at once.
"""

from __future__ import annotations

import pytest

from tests.conftest import client_for
from tests.factories import make_connection, make_crossing, make_user

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

C = "/api/v1/connections/"
S = "/api/v1/stories/"


def _people(client, status):
    return [i["user"]["display_name"] for i in client.get(f"{C}?status={status}").json()["results"]]


def _feed(client):
    return [s["text"] for g in client.get(S + "feed/").json()["results"] for s in g["stories"]]


def test_every_cached_read_is_fresh_after_ones_own_write():
    ann, ben = make_user(display_name="Ann"), make_user(display_name="Ben")
    make_crossing(ann, ben)
    a, b = client_for(ann), client_for(ben)

    assert _people(a, "outgoing") == [] and _people(b, "incoming") == []
    conn = a.post(C, {"user_id": str(ben.pk)}, format="json").json()["id"]
    assert _people(a, "outgoing") == ["Ben"] and _people(b, "incoming") == ["Ann"]

    assert _people(b, "accepted") == []
    b.post(f"{C}{conn}/accept/")
    assert _people(b, "accepted") == ["Ann"] and _people(a, "accepted") == ["Ben"]

    assert _feed(b) == []
    story = a.post(S, {"text": "s1", "visibility": "connections", "lat": 52.5, "lng": 13.4}, format="json")
    assert _feed(a) == ["s1"] and _feed(b) == ["s1"]
    assert a.get(S + "nearby/?lat=52.5&lng=13.4").json()["count"] == 0  # not public

    public = a.post(S, {"text": "p1", "visibility": "public", "lat": 52.5, "lng": 13.4}, format="json").json()
    assert [i["text"] for i in a.get(S + "nearby/?lat=52.5&lng=13.4").json()["results"]] == ["p1"]
    a.delete(f"{S}{public['id']}/")
    assert a.get(S + "nearby/?lat=52.5&lng=13.4").json()["count"] == 0
    assert a.get(f"{S}{public['id']}/").status_code == 404

    close = a.post(S, {"text": "cf", "visibility": "close_friends"}, format="json").json()
    assert "cf" not in _feed(b) and a.get(S + "close-friends/").json()["results"] == []
    a.post(S + "close-friends/", {"user_id": str(ben.pk)}, format="json")
    assert [p["display_name"] for p in a.get(S + "close-friends/").json()["results"]] == ["Ben"]
    assert "cf" in _feed(b) and b.get(f"{S}{close['id']}/").status_code == 200
    a.delete(f"{S}close-friends/{ben.pk}/")
    assert "cf" not in _feed(b) and b.get(f"{S}{close['id']}/").status_code == 404

    assert [i["unread_count"] for i in b.get(C).json()["results"]] == [0]
    a.post(f"{C}{conn}/messages/", {"body": "hi"}, format="json")
    assert [i["unread_count"] for i in b.get(C).json()["results"]] == [1]
    assert [m["body"] for m in b.get(f"{C}{conn}/messages/").json()["results"]] == ["hi"]
    assert [i["unread_count"] for i in b.get(C).json()["results"]] == [0]

    a.patch("/api/v1/me/", {"display_name": "Anna"}, format="json")
    assert _people(b, "accepted") == ["Anna"]
    assert [g["author"]["display_name"] for g in b.get(S + "feed/").json()["results"]] == ["Anna"]

    a.delete(f"{S}{story.json()['id']}/")
    assert "s1" not in _feed(b)
    b.delete(f"{C}{conn}/")
    assert _people(a, "accepted") == [] and _people(b, "accepted") == [] and _feed(b) == []


def test_a_block_is_visible_at_once_everywhere():
    ann, ben = make_user(display_name="Ann"), make_user(display_name="Ben")
    conn = make_connection(ann, ben)
    a, b = client_for(ann), client_for(ben)
    story = a.post(S, {"text": "x", "visibility": "public", "lat": 48.85, "lng": 2.35}, format="json").json()
    b.post(f"{C}{conn.pk}/messages/", {"body": "hello"}, format="json")
    # Warm every cache on both sides.
    assert _people(b, "accepted") == ["Ann"] and _feed(b) == ["x"]
    assert b.get(S + "nearby/?lat=48.85&lng=2.35").json()["count"] == 1
    assert b.get(f"/api/v1/users/{ann.pk}/").status_code == 200

    assert a.post("/api/v1/blocks/", {"user_id": str(ben.pk)}, format="json").status_code in (200, 201)

    assert _people(b, "accepted") == [] and _people(a, "accepted") == []
    assert _feed(b) == [] and b.get(S + "nearby/?lat=48.85&lng=2.35").json()["count"] == 0
    assert b.get(f"{S}{story['id']}/").status_code == 404
    assert b.get(f"/api/v1/users/{ann.pk}/").status_code == 404
    assert b.post(f"{C}{conn.pk}/messages/", {"body": "still there?"}, format="json").status_code == 404
    assert b.post(C, {"user_id": str(ann.pk)}, format="json").status_code == 404
