"""Authorization parity: for each kind of actor and object, REST and GraphQL agree on what
is visible (200 vs 401/403/404, or present vs absent in a list), blocks, shadow bans,
deactivation and ghost mode included.  A few expectations pin that both are also right."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from connections.models import Message
from tests.conftest import client_for
from tests.factories import make_connection, make_crossing, make_story, make_user
from tests.graphql.conftest import gql

pytestmark = pytest.mark.django_db

ACTORS = ("owner", "crossed", "connected", "stranger", "blocked", "blocked_by", "shadow_banned", "deactivated",
          "anonymous")
WITH_CROSSING = ("crossed", "connected", "blocked", "blocked_by", "shadow_banned", "deactivated")
WITH_CONNECTION = ("connected", "blocked", "blocked_by", "shadow_banned", "deactivated")


def _rest_visible(client, path) -> bool:
    status = client.get(f"/api/v1/{path}").status_code
    assert status in (200, 401, 403, 404), (path, status)
    return status == 200


def _rest_listed(client, path, item_id) -> bool:
    response = client.get(f"/api/v1/{path}")
    assert response.status_code in (200, 401), (path, response.status_code)
    return response.status_code == 200 and str(item_id) in {r["id"] for r in json.loads(response.content)["results"]}


def _gql_visible(client, field: str, arg: str, value) -> bool:
    _status, body = gql(client, f"query($v: ID!) {{ x: {field}({arg}: $v) {{ __typename }} }}", {"v": str(value)})
    data = (body.get("data") or {}).get("x")
    for error in body.get("errors") or []:
        assert error["extensions"]["code"] in ("UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND"), body
    return data is not None


def _gql_listed(client, item_id) -> bool:
    _status, body = gql(client, "{ connections(first: 100) { items { id } } }")
    page = (body.get("data") or {}).get("connections")
    return page is not None and str(item_id) in {item["id"] for item in page["items"]}


@pytest.fixture(params=[False, True], ids=["owner-visible", "owner-in-ghost-mode"])
def world(request, db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        users = {name: make_user(display_name=name) for name in ACTORS if name != "anonymous"}
        owner = users["owner"]
        crossings = {name: make_crossing(owner, users[name]) for name in WITH_CROSSING}
        connections = {name: make_connection(users[name], owner) for name in WITH_CONNECTION}
        for conn in connections.values():
            Message.objects.create(connection=conn, sender_id=owner.pk, body="hello")
        stories = {name: make_story(user, f"{name}'s", visibility="public") for name, user in users.items()}
        owner_friends_story = make_story(owner, "for connections", visibility="connections")
        clients = {name: client_for(user) for name, user in users.items()}  # tokens issued before the changes
        clients["anonymous"] = APIClient()
        account_services.block_user(blocker_id=owner.pk, blocked_id=users["blocked"].pk)
        account_services.block_user(blocker_id=users["blocked_by"].pk, blocked_id=owner.pk)
        account_services.set_shadow_ban([users["shadow_banned"].pk], True)
        account_services.deactivate_user(users["deactivated"].pk)
        if request.param:
            account_services.update_profile(owner.pk, ghost_mode=True)
    return {"users": users, "crossings": crossings, "connections": connections, "stories": stories,
            "owner_friends_story": owner_friends_story, "clients": clients}


def _objects(world, actor: str) -> dict[str, tuple]:
    """``{object: (REST check, GraphQL check)}`` as seen by ``actor`` (and, for the actor's own
    things, as seen by the owner)."""
    users, clients = world["users"], world["clients"]
    owner, me = users["owner"], clients[actor]
    owner_client = clients["owner"]
    fixed_crossing, fixed_conn = world["crossings"]["crossed"], world["connections"]["connected"]
    story, friends_story = world["stories"]["owner"], world["owner_friends_story"]
    checks = {
        "owner's profile": (lambda: _rest_visible(me, f"users/{owner.pk}/"),
                            lambda: _gql_visible(me, "user", "id", owner.pk)),
        "owner's public story": (lambda: _rest_visible(me, f"stories/{story.pk}/"),
                                 lambda: _gql_visible(me, "story", "id", story.pk)),
        "owner's connections story": (lambda: _rest_visible(me, f"stories/{friends_story.pk}/"),
                                      lambda: _gql_visible(me, "story", "id", friends_story.pk)),
        "crossing owner-crossed": (lambda: _rest_visible(me, f"crossings/{fixed_crossing.pk}/"),
                                   lambda: _gql_visible(me, "crossing", "id", fixed_crossing.pk)),
        "connection owner-connected": (lambda: _rest_listed(me, "connections/", fixed_conn.pk),
                                       lambda: _gql_listed(me, fixed_conn.pk)),
        "messages owner-connected": (lambda: _rest_visible(me, f"connections/{fixed_conn.pk}/messages/"),
                                     lambda: _gql_visible(me, "messages", "connectionId", fixed_conn.pk)),
    }
    if actor in users and actor != "owner":
        theirs, their_story = users[actor], world["stories"][actor]
        checks["their profile, to the owner"] = (
            lambda: _rest_visible(owner_client, f"users/{theirs.pk}/"),
            lambda: _gql_visible(owner_client, "user", "id", theirs.pk))
        checks["their public story, to the owner"] = (
            lambda: _rest_visible(owner_client, f"stories/{their_story.pk}/"),
            lambda: _gql_visible(owner_client, "story", "id", their_story.pk))
    if actor in world["crossings"]:
        crossing = world["crossings"][actor]
        for who, client in (("them", me), ("the owner", owner_client)):
            checks[f"our crossing, to {who}"] = (
                lambda client=client: _rest_visible(client, f"crossings/{crossing.pk}/"),
                lambda client=client: _gql_visible(client, "crossing", "id", crossing.pk))
    if actor in world["connections"]:
        conn = world["connections"][actor]
        for who, client in (("them", me), ("the owner", owner_client)):
            checks[f"our connection, to {who}"] = (
                lambda client=client: _rest_listed(client, "connections/", conn.pk),
                lambda client=client: _gql_listed(client, conn.pk))
            checks[f"our messages, to {who}"] = (
                lambda client=client: _rest_visible(client, f"connections/{conn.pk}/messages/"),
                lambda client=client: _gql_visible(client, "messages", "connectionId", conn.pk))
    return checks


# What must hold whatever the two APIs say (True: visible).
EXPECTED = {
    ("owner", "owner's connections story"): True,
    ("owner", "messages owner-connected"): True,
    ("crossed", "owner's profile"): True,
    ("crossed", "our crossing, to them"): True,
    ("crossed", "owner's connections story"): False,
    ("connected", "owner's connections story"): True,
    ("connected", "messages owner-connected"): True,
    ("stranger", "owner's profile"): False,
    ("stranger", "owner's public story"): True,
    ("stranger", "crossing owner-crossed"): False,
    ("stranger", "messages owner-connected"): False,
    ("blocked", "owner's profile"): False,
    ("blocked", "owner's public story"): False,
    ("blocked", "our crossing, to the owner"): False,
    ("blocked_by", "their profile, to the owner"): False,
    ("blocked_by", "our crossing, to them"): False,
    ("shadow_banned", "their profile, to the owner"): False,
    ("shadow_banned", "our crossing, to the owner"): False,
    ("shadow_banned", "our connection, to the owner"): False,
    ("deactivated", "their profile, to the owner"): False,
    ("deactivated", "our crossing, to the owner"): False,
    ("anonymous", "owner's public story"): False,
    ("anonymous", "connection owner-connected"): False,
}


@pytest.mark.parametrize("actor", ACTORS)
def test_rest_and_graphql_show_the_same_things(world, actor):
    seen = {name: (rest(), graphql()) for name, (rest, graphql) in _objects(world, actor).items()}
    differ = {name: pair for name, pair in seen.items() if pair[0] != pair[1]}
    assert differ == {}, f"{actor}: (REST, GraphQL) differ on {differ}"
    for (who, name), visible in EXPECTED.items():
        if who == actor:
            assert seen[name][0] is visible, (actor, name, seen[name])
