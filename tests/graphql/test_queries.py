"""No N+1: the home-screen query costs a fixed number of SQL queries whatever the page sizes
and however many crossings, connections and stories there are (cold cache and warm)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connections
from django.test.utils import CaptureQueriesContext

from tests.conftest import client_for
from tests.factories import make_connection, make_crossing, make_story, make_user
from tests.graphql.conftest import HOME, gql

pytestmark = pytest.mark.django_db

# Cold: me (the account row), the hidden set (blocks), the crossings page, their profiles, the
# connections page, the unread counts, the connection index (feed), the feed authors' profiles
# not yet cached, their stories, their close friends.  Pinned: a change is deliberate.
COLD_QUERIES = 10
WARM_QUERIES = 1  # me: the account row (as GET me/)


def _count(client, variables) -> tuple[int, dict]:
    # Only the primary is open to this test (a read sent to the replica alias would fail it), so
    # these are all the queries of the request.
    with CaptureQueriesContext(connections["default"]) as captured:
        _status, body = gql(client, HOME, variables)
    assert "errors" not in body, body
    return len(captured.captured_queries), body["data"]


def _world(n: int):
    me = make_user(display_name="Me")
    for i in range(n):
        other = make_user(display_name=f"Other {i}")
        make_crossing(me, other)
        make_connection(other, me)
        make_story(other, f"story {i}")
        make_story(other, f"second story {i}")
    make_story(me, "mine")
    return client_for(me)


@pytest.mark.parametrize("n, page", [(2, 2), (2, 20), (12, 5), (12, 50)])
def test_home_screen_queries_do_not_grow_with_the_data_or_the_page(n, page):
    client = _world(n)
    cache.delete_pattern("*", itersize=1000)  # cold: every cached read loads from the database
    cold, data = _count(client, {"crossings": page, "connections": page})
    assert len(data["crossings"]["items"]) == min(n, page) and len(data["connections"]["items"]) == min(n, page)
    assert len(data["feed"]) == n + 1
    warm, _data = _count(client, {"crossings": page, "connections": page})
    assert (cold, warm) == (COLD_QUERIES, WARM_QUERIES)
