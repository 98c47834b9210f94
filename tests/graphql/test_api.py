"""The GraphQL endpoint: the home screen, each query and mutation against its REST twin,
pagination, errors with stable codes, limits, persisted queries, the weighted rate limit."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys

import pytest
from graphql import parse
from strawberry.extensions import QueryDepthLimiter

from accounts import services as account_services
from accounts.models import Block
from config import graphql as gql_config
from connections.models import Connection, Message
from stories.models import Story
from tests.conftest import client_for
from tests.factories import make_connection, make_crossing, make_story, make_user
from tests.graphql.conftest import HOME, codes, gql

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    me, bob, carol = make_user(display_name="Me"), make_user(display_name="Bob"), make_user(display_name="Carol")
    return me, bob, carol


def _rest(client, path, **params):
    response = client.get(f"/api/v1/{path}", params)
    return response.status_code, (json.loads(response.content) if response.content else None)


def test_the_home_screen_in_one_request_matches_rest(people):
    me, bob, carol = people
    make_crossing(me, bob)
    make_crossing(me, carol)
    conn = make_connection(me, bob)
    Message.objects.create(connection=conn, sender_id=bob.pk, body="hey")
    make_story(bob, "bob's story")
    make_story(me, "mine")
    client = client_for(me)

    status, body = gql(client, HOME)
    assert status == 200 and "errors" not in body
    data = body["data"]
    assert data["me"]["id"] == str(me.pk) and data["me"]["displayName"] == "Me"

    _s, crossings = _rest(client, "crossings/")
    assert [c["id"] for c in data["crossings"]["items"]] == [c["id"] for c in crossings["results"]]
    assert [c["user"]["id"] for c in data["crossings"]["items"]] == [c["user"]["id"] for c in crossings["results"]]

    _s, connections = _rest(client, "connections/")
    assert [(c["id"], c["unreadCount"]) for c in data["connections"]["items"]] == \
        [(c["id"], c["unread_count"]) for c in connections["results"]] == [(str(conn.pk), 1)]

    _s, feed = _rest(client, "stories/feed/")
    assert [(g["author"]["id"], [s["id"] for s in g["stories"]]) for g in data["feed"]] == \
        [(g["author"]["id"], [s["id"] for s in g["stories"]]) for g in feed["results"]]
    assert data["feed"][0]["author"]["id"] == str(me.pk)  # one's own stories first, as in REST


def test_crossings_pages_have_the_same_order_and_cursors_as_rest(people):
    me = people[0]
    others = [make_user(display_name=f"P{i}") for i in range(7)]
    for other in others:
        make_crossing(me, other)
    client = client_for(me)
    query = ("query($c: String) { crossings(first: 3, cursor: $c) { items { id } hasNext hasPrevious "
             "nextCursor previousCursor } }")
    seen_gql, seen_rest, cursor = [], [], None
    rest_url = "/api/v1/crossings/?page_size=3"
    while True:
        _st, body = gql(client, query, {"c": cursor})
        page = body["data"]["crossings"]
        rest = json.loads(client.get(rest_url).content)
        assert [i["id"] for i in page["items"]] == [r["id"] for r in rest["results"]]
        seen_gql += [i["id"] for i in page["items"]]
        seen_rest += [r["id"] for r in rest["results"]]
        if not page["hasNext"]:
            assert rest["next"] is None
            break
        assert f"cursor={page['nextCursor']}" in rest["next"]
        cursor, rest_url = page["nextCursor"], rest["next"]
    assert len(seen_gql) == 7 and seen_gql == seen_rest
    # Back from the last page with its previous cursor: the page before it, as REST gives.
    _st, body = gql(client, query, {"c": f"p.{seen_gql[6]}"})
    assert [i["id"] for i in body["data"]["crossings"]["items"]] == seen_gql[3:6]
    _st, body = gql(client, query, {"c": "x.nonsense"})
    assert codes(body) == ["NOT_FOUND"] and body["data"]["crossings"] is None


def test_connections_by_status_and_their_pages(people):
    me, bob, carol = people
    dave = make_user(display_name="Dave")
    accepted = [make_connection(me, other) for other in (bob, carol)]
    incoming = make_connection(dave, me, status="pending")
    client = client_for(me)
    query = "query($s: ConnectionKind!, $c: String) { connections(status: $s, first: 1, cursor: $c) " \
            "{ items { id status direction user { id } } hasNext nextCursor } }"
    _st, body = gql(client, query, {"s": "ACCEPTED"})
    first = body["data"]["connections"]
    assert first["hasNext"] and len(first["items"]) == 1
    _st, body = gql(client, query, {"s": "ACCEPTED", "c": first["nextCursor"]})
    second = body["data"]["connections"]
    assert not second["hasNext"]
    assert {first["items"][0]["id"], second["items"][0]["id"]} == {str(c.pk) for c in accepted}
    _st, body = gql(client, query, {"s": "INCOMING"})
    assert [(i["id"], i["direction"], i["user"]["id"]) for i in body["data"]["connections"]["items"]] == \
        [(str(incoming.pk), "incoming", str(dave.pk))]
    _st, body = gql(client, query, {"s": "OUTGOING"})
    assert body["data"]["connections"]["items"] == []


def test_messages_page_and_reading_marks_them_read(people):
    me, bob, _carol = people
    conn = make_connection(me, bob)
    for i in range(5):
        Message.objects.create(connection=conn, sender_id=bob.pk, body=f"m{i}")
    client = client_for(me)
    home = "{ connections { items { unreadCount } } }"
    assert gql(client, home)[1]["data"]["connections"]["items"][0]["unreadCount"] == 5
    query = "query($id: ID!, $c: String) { messages(connectionId: $id, first: 3, cursor: $c) " \
            "{ items { body senderId } hasNext nextCursor } }"
    _st, body = gql(client, query, {"id": str(conn.pk)})
    page = body["data"]["messages"]
    assert [m["body"] for m in page["items"]] == ["m4", "m3", "m2"] and page["hasNext"]
    _st, body = gql(client, query, {"id": str(conn.pk), "c": page["nextCursor"]})
    assert [m["body"] for m in body["data"]["messages"]["items"]] == ["m1", "m0"]
    assert gql(client, home)[1]["data"]["connections"]["items"][0]["unreadCount"] == 0
    _s, rest = _rest(client, f"connections/{conn.pk}/messages/")
    assert [m["body"] for m in rest["results"]] == ["m4", "m3", "m2", "m1", "m0"]


def test_user_story_crossing_and_nearby(people):
    me, bob, carol = people
    crossing = make_crossing(me, bob)
    story = make_story(bob, "public", visibility="public", lat=52.52, lng=13.405)
    client = client_for(me)
    _st, body = gql(client, "query($u: ID!, $c: ID!, $s: ID!) { user(id: $u) { id displayName } "
                            "crossing(id: $c) { id user { id } } story(id: $s) { id author { id } } }",
                    {"u": str(bob.pk), "c": str(crossing.pk), "s": str(story.pk)})
    assert body["data"] == {"user": {"id": str(bob.pk), "displayName": "Bob"},
                            "crossing": {"id": str(crossing.pk), "user": {"id": str(bob.pk)}},
                            "story": {"id": str(story.pk), "author": {"id": str(bob.pk)}}}
    _st, body = gql(client, "{ nearbyStories(lat: 52.52, lng: 13.405) { radiusKm count "
                            "results { id distanceKm author { id } } } }")
    nearby = body["data"]["nearbyStories"]
    _s, rest = _rest(client, "stories/nearby/", lat=52.52, lng=13.405)
    assert [r["id"] for r in nearby["results"]] == [r["id"] for r in rest["results"]] == [str(story.pk)]
    assert nearby["results"][0]["distanceKm"] == rest["results"][0]["distance_km"]
    _st, body = gql(client, "{ nearbyStories(lat: 91, lng: 0) { count } }")
    assert codes(body) == ["BAD_USER_INPUT"] and "lat" in body["errors"][0]["extensions"]["details"]
    # Carol never crossed me: her profile is not found (as GET users/{id}/ answers 404).
    _st, body = gql(client, "query($u: ID!) { user(id: $u) { id } }", {"u": str(carol.pk)})
    assert codes(body) == ["NOT_FOUND"] and body["data"] == {"user": None}
    assert client.get(f"/api/v1/users/{carol.pk}/").status_code == 404


def test_mutations_go_through_the_same_services(people, django_capture_on_commit_callbacks):
    me, bob, carol = people
    make_crossing(me, bob)
    make_crossing(me, carol)
    client, bob_client = client_for(me), client_for(bob)
    connect = "mutation($u: ID!) { connect(userId: $u) { id status direction user { id } } }"
    _st, body = gql(client, connect, {"u": str(bob.pk)})
    conn = body["data"]["connect"]
    assert conn["status"] == "pending" and conn["direction"] == "outgoing" and conn["user"]["id"] == str(bob.pk)
    # Only the requested side may accept: the requester gets FORBIDDEN, as REST's 403.
    accept = "mutation($c: ID!) { acceptConnection(connectionId: $c) { status } }"
    assert codes(gql(client, accept, {"c": conn["id"]})[1]) == ["FORBIDDEN"]
    # Chatting before acceptance is forbidden.
    send = "mutation($c: ID!, $b: String!) { sendMessage(connectionId: $c, body: $b) { id body senderId } }"
    assert codes(gql(client, send, {"c": conn["id"], "b": "hi"})[1]) == ["FORBIDDEN"]
    assert gql(bob_client, accept, {"c": conn["id"]})[1]["data"]["acceptConnection"]["status"] == "accepted"
    assert codes(gql(bob_client, accept, {"c": conn["id"]})[1]) == ["CONFLICT"]
    _st, body = gql(client, send, {"c": conn["id"], "b": "  hello  "})
    assert body["data"]["sendMessage"]["body"] == "hello" and body["data"]["sendMessage"]["senderId"] == str(me.pk)
    assert codes(gql(client, send, {"c": conn["id"], "b": "   "})[1]) == ["BAD_USER_INPUT"]
    assert codes(gql(client, send, {"c": conn["id"], "b": "x" * 2001})[1]) == ["BAD_USER_INPUT"]
    # Carol asks, I decline.
    _st, body = gql(client_for(carol), connect, {"u": str(me.pk)})
    decline = "mutation($c: ID!) { declineConnection(connectionId: $c) { status } }"
    assert gql(client, decline, {"c": body["data"]["connect"]["id"]})[1]["data"]["declineConnection"] == \
        {"status": "declined"}
    # A text story, then a block that hides it.
    post = "mutation($t: String!) { postStory(text: $t, visibility: PUBLIC) { id kind text visibility } }"
    _st, body = gql(bob_client, post, {"t": "from bob"})
    story = body["data"]["postStory"]
    assert story["kind"] == "text" and story["visibility"] == "public"
    assert Story.objects.filter(pk=story["id"], author_id=bob.pk).exists()
    assert codes(gql(bob_client, post, {"t": ""})[1]) == ["BAD_USER_INPUT"]
    block = "mutation($u: ID!) { block(userId: $u) { blockedUserId created } }"
    with django_capture_on_commit_callbacks(execute=True):
        _st, body = gql(client, block, {"u": str(bob.pk)})
    assert body["data"]["block"] == {"blockedUserId": str(bob.pk), "created": True}
    assert Block.objects.filter(blocker=me, blocked=bob).exists()
    assert not Connection.objects.filter(pk=conn["id"]).exists()
    assert codes(gql(client, "query($s: ID!) { story(id: $s) { id } }", {"s": story["id"]})[1]) == ["NOT_FOUND"]
    assert codes(gql(client, block, {"u": str(me.pk)})[1]) == ["BAD_USER_INPUT"]


def test_authentication_is_the_rest_bearer_token(api, people):
    status, body = gql(api, "{ me { id } }")
    assert status == 200 and codes(body) == ["UNAUTHENTICATED"] and body["data"] == {"me": None}
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    status, body = gql(api, "{ me { id } }")
    assert status == 401 and codes(body) == ["UNAUTHENTICATED"]
    assert api.get("/api/v1/me/").status_code == 401


def test_a_failing_field_leaves_the_others_and_unexpected_errors_are_masked(people, monkeypatch, caplog):
    me = people[0]
    client = client_for(me)
    _st, body = gql(client, "query($id: ID!) { me { id } story(id: $id) { id } }", {"id": "not-a-uuid"})
    assert body["data"] == {"me": {"id": str(me.pk)}, "story": None}
    assert codes(body) == ["NOT_FOUND"] and body["errors"][0]["path"] == ["story"]

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/app.py line 3")

    monkeypatch.setattr("stories.selectors.feed", boom)
    with caplog.at_level(logging.ERROR, logger="config.graphql"):
        status, body = gql(client, "{ me { id } feed { author { id } } }")
    assert status == 200 and body["data"] == {"me": {"id": str(me.pk)}, "feed": None}
    assert body["errors"] == [{"message": "Unexpected error.", "locations": [{"line": 1, "column": 13}],
                               "path": ["feed"], "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]
    assert "secret internals" not in json.dumps(body)
    assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_bad_documents_are_clear_4xx_or_coded_errors(people):
    client = client_for(people[0])
    _st, body = gql(client, "{ nope }")
    assert codes(body) == ["BAD_USER_INPUT"] and "nope" in body["errors"][0]["message"]
    _st, body = gql(client, "{ me { id ")
    assert codes(body) == ["BAD_USER_INPUT"]
    _st, body = gql(client, "query($f: Int) { crossings(first: $f) { hasNext } }", {"f": "many"})
    assert codes(body) == ["BAD_USER_INPUT"]
    response = client.post("/graphql/", data="{not json", content_type="application/json")
    assert response.status_code == 400 and json.loads(response.content)["errors"][0]["extensions"]["code"]
    response = client.post("/graphql/", data=json.dumps({"query": "{ me { id } }"}), content_type="text/plain")
    assert response.status_code == 400
    response = client.get("/graphql/", {"query": "mutation { block(userId: \"x\") { created } }"})
    assert response.status_code == 400 and json.loads(response.content)["errors"]
    response = client.get("/graphql/", {"query": "{ me { id } }"})  # queries may use GET
    assert response.status_code == 200 and json.loads(response.content)["data"]["me"]["id"] == str(people[0].pk)


def test_page_sizes_depth_aliases_and_tokens_are_bounded(people, settings):
    client = client_for(people[0])
    for first in (0, 101, 10_000):
        _st, body = gql(client, f"{{ crossings(first: {first}) {{ hasNext }} }}")
        assert codes(body) == ["BAD_USER_INPUT"], first
    assert "errors" not in gql(client, "{ crossings(first: 100) { hasNext } }")[1]
    # Depth: fragments cannot nest objects deeper than the schema, so cycle through one.
    deep = "{ feed { author { id } stories { author { id } } } }"
    assert "errors" not in gql(client, deep)[1]
    fragment = "fragment F on Query { me { id } } " + "query { ...F " + " ".join(
        f"a{i}: me {{ id }}" for i in range(settings.GRAPHQL_MAX_ALIASES + 1)) + " }"
    _st, body = gql(client, fragment)
    assert codes(body) == ["BAD_USER_INPUT"] and "aliases" in body["errors"][0]["message"]
    many_tokens = "{ " + " ".join(["me { id }"] * (settings.GRAPHQL_MAX_TOKENS // 3)) + " }"
    _st, body = gql(client, many_tokens)
    assert codes(body) == ["BAD_USER_INPUT"] and "token" in body["errors"][0]["message"].lower()


def test_query_depth_is_limited():
    # The schema is shallow (at most 4 levels), so the limiter is checked with a lowered limit.
    shallow = gql_config.Schema(query=gql_config.Query, mutation=gql_config.Mutation,
                                extensions=[lambda: QueryDepthLimiter(max_depth=2)])
    result = shallow.execute_sync("{ feed { stories { author { id } } } }")
    assert result.errors and "exceeds maximum operation depth" in result.errors[0].message


def test_persisted_queries_by_hash_and_the_allow_list(people, settings):
    me = people[0]
    client = client_for(me)
    digest = hashlib.sha256(HOME.encode()).hexdigest()
    status, body = gql(client, extensions={"persistedQuery": {"version": 1, "sha256Hash": digest}})
    assert status == 200 and body["data"]["me"]["id"] == str(me.pk)
    status, body = gql(client, extensions={"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}})
    assert status == 400 and codes(body) == ["PERSISTED_QUERY_NOT_FOUND"]
    status, body = gql(client, "{ me { id } }", extensions={"persistedQuery": {"sha256Hash": digest}})
    assert status == 400 and codes(body) == ["BAD_USER_INPUT"]
    settings.GRAPHQL_PERSISTED_ONLY = True
    status, body = gql(client, "{ me { id } }")
    assert status == 400 and codes(body) == ["FORBIDDEN"]
    status, body = gql(client, HOME)  # the text of a persisted document is accepted too
    assert status == 200 and body["data"]["me"]["id"] == str(me.pk)
    response = client.get("/graphql/", {"query": "{ me { id } }"})  # by GET as well
    assert response.status_code == 400 and codes(json.loads(response.content)) == ["FORBIDDEN"]
    status, body = _get_persisted(client, "home.graphql")
    assert status == 200 and body["data"]["me"]["id"] == str(me.pk)


def test_production_turns_on_persisted_only_and_off_the_ide_and_introspection():
    env = {**os.environ, "SECRET_KEY": "x" * 50, "DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db",
           "REDIS_URL": "redis://127.0.0.1:1/0", "DJANGO_SETTINGS_MODULE": "config.settings.prod"}
    for name in ("GRAPHQL_PERSISTED_ONLY", "GRAPHQL_IDE", "GRAPHQL_INTROSPECTION"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", "from django.conf import settings as s; "
                          "print(s.GRAPHQL_PERSISTED_ONLY, s.GRAPHQL_IDE, s.GRAPHQL_INTROSPECTION)"],
                         env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_introspection_and_graphiql_follow_the_settings(people, settings):
    client = client_for(people[0])
    assert gql(client, "{ __schema { queryType { name } } }")[1]["data"]["__schema"]["queryType"]["name"] == "Query"
    assert client.get("/graphql/", HTTP_ACCEPT="text/html").status_code == 200
    settings.GRAPHQL_INTROSPECTION = False
    settings.GRAPHQL_IDE = False
    _st, body = gql(client, "{ __schema { queryType { name } } }")
    assert set(codes(body)) == {"BAD_USER_INPUT"} and not body.get("data")
    assert "introspection" in body["errors"][0]["message"].lower()
    assert gql(client, "{ me { __typename id } }")[1]["data"]["me"]["__typename"] == "Me"
    assert client.get("/graphql/", HTTP_ACCEPT="text/html").status_code == 404
    # A persisted GET runs, whatever the client accepts, with or without the IDE.
    for ide in (False, True):
        settings.GRAPHQL_IDE = ide
        for accept in ("*/*", "text/html", ""):
            status, body = _get_persisted(client, "home.graphql", accept=accept)
            assert status == 200 and body["data"]["me"]["id"] == str(people[0].pk), (ide, accept)


def test_rate_limit_counts_root_fields_on_the_rest_counter(people, low_rates):
    me = people[0]
    low_rates(user="6/hour")
    client = client_for(me)
    assert client.get("/api/v1/me/").status_code == 200  # 1
    _st, body = gql(client, "{ me { id } crossings { hasNext } feed { author { id } } }")  # 1 + 3 = 4
    assert "errors" not in body
    _st, body = gql(client, "{ ...F } fragment F on Query { me { id } crossings { hasNext } }")  # 4 + 2 = 6
    assert "errors" not in body
    status, body = gql(client, "{ me { id } }")  # 7 > 6
    assert status == 429 and codes(body) == ["RATE_LIMITED"] and body["data"] is None
    assert client.get("/api/v1/me/").status_code == 429  # the same counter as REST


def test_root_field_weight():
    assert gql_config.root_field_count(parse("{ me { id } feed { author { id } } }"), None) == 2
    assert gql_config.root_field_count(parse("query A { me { id } } query B { a: me { id } b: me { id } "
                                             "__typename }"), "B") == 2
    assert gql_config.root_field_count(parse("{ ... on Query { me { id } } ...F } "
                                             "fragment F on Query { feed { author { id } } }"), None) == 2
    assert gql_config.root_field_count(parse("{ __typename }"), None) == 1


def _get_persisted(client, name: str, variables: dict | None = None, accept: str = "*/*"):
    digest = hashlib.sha256((gql_config.PERSISTED_DIR / name).read_text().encode()).hexdigest()
    params = {"extensions": json.dumps({"persistedQuery": {"version": 1, "sha256Hash": digest}})}
    if variables is not None:
        params["variables"] = json.dumps(variables)
    response = client.get("/graphql/", params, HTTP_ACCEPT=accept)  # curl's and most HTTP clients' default
    return response.status_code, json.loads(response.content)


def test_a_persisted_home_get_is_served_from_the_response_cache_until_a_version_moves(
        people, django_capture_on_commit_callbacks, django_assert_num_queries):
    me, bob, _carol = people
    make_crossing(me, bob)
    make_connection(me, bob)
    make_story(bob, "first")
    client = client_for(me)
    status, first = _get_persisted(client, "home.graphql")
    assert status == 200 and "errors" not in first
    with django_assert_num_queries(0):  # the stored answer, replayed
        status, again = _get_persisted(client, "home.graphql")
    assert again == first
    with django_capture_on_commit_callbacks(execute=True):
        make_story(bob, "second")
    _status, body = _get_persisted(client, "home.graphql")
    assert [s["text"] for s in body["data"]["feed"][0]["stories"]] == ["second", "first"]
    with django_capture_on_commit_callbacks(execute=True):
        account_services.update_profile(me.pk, display_name="Renamed")
    _status, body = _get_persisted(client, "home.graphql")
    assert body["data"]["me"]["displayName"] == "Renamed"
    # Other variables are another entry; POSTs and other documents are never stored.
    _status, body = _get_persisted(client, "home.graphql", {"crossings": 1})
    assert len(body["data"]["crossings"]["items"]) == 1
    with django_assert_num_queries(1):
        gql(client, HOME)


def test_a_replayed_answer_counts_once_against_the_rate_limit(people, low_rates):
    client = client_for(people[0])
    low_rates(user="6/hour")
    assert _get_persisted(client, "home.graphql")[0] == 200  # 4 root fields: 4
    assert _get_persisted(client, "home.graphql")[0] == 200  # replayed: 5
    assert _get_persisted(client, "home.graphql")[0] == 200  # 6
    status, body = _get_persisted(client, "home.graphql")  # 7 > 6
    assert status == 429 and codes(body) == ["RATE_LIMITED"]
