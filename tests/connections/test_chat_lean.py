"""GET connections/{id}/messages/ on the lean path (``MessageListView.lean_get``): the same answers
as DRF's path, byte for byte (status, headers, body) and the same read marker afterwards, over
pages, cursors both ways, empty chats and every refusal; one rate count and one revocation
check per request; DRF is skipped only for a page it would answer with a 200.
"""

from __future__ import annotations

import base64
import gzip
from datetime import timedelta
from urllib.parse import urlencode

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from connections.api.views import MessageListView
from connections.models import Connection, Message
from connections.selectors import CONN_NS, UNREAD_NS
from core.api.throttling import UserRateThrottle
from core.cache import breaker as redis_breaker
from core.cache import keys as cachekeys
from core.cache.client import redis_client
from tests.conftest import client_for, drf_initial_calls
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db


def url(conn_id, **query) -> str:
    return f"/api/v1/connections/{conn_id}/messages/" + (f"?{urlencode(query)}" if query else "")


@pytest.fixture
def chat():
    """Ann and Ben, 25 messages (three to a timestamp: cursors must walk through equal times),
    Ben's the unread ones for Ann; and an empty chat of Ann's with Cy."""
    a, b, c = make_user(display_name="Ann"), make_user(display_name="Ben"), make_user(display_name="Cy")
    conn, empty = make_connection(a, b), make_connection(c, a)
    start = timezone.now() - timedelta(hours=1)
    Message.objects.bulk_create([
        Message(connection=conn, sender=(a, b)[i % 2], body=f"m{i} \u00e9\U0001F600",
                created_at=start + timedelta(seconds=i // 3)) for i in range(25)])
    return conn, empty, a, b, client_for(a), client_for(b)


def _state(*conns) -> list:
    return list(Connection.objects.filter(pk__in=[c.pk for c in conns]).order_by("pk")
                .values_list("low_last_read_at", "high_last_read_at"))


def _restore(conns, state, users) -> None:
    """Read markers as they were, and every cache of the users cold again."""
    for conn, (low, high) in zip(sorted(conns, key=lambda c: c.pk), state, strict=True):
        Connection.objects.filter(pk=conn.pk).update(low_last_read_at=low, high_last_read_at=high)
    cachekeys.bump_many([(ns, u.pk) for u in users for ns in (CONN_NS, UNREAD_NS)])


def _answer(response) -> tuple:
    """Status, body and headers but the request id; a gzipped body unzipped, without its length
    (Django's gzip pads each one with a random file name against BREACH: no two are alike)."""
    body, skip = response.content, {"X-Request-ID"}
    if response.get("Content-Encoding") == "gzip":
        body, skip = gzip.decompress(body), {"X-Request-ID", "Content-Length"}
    return response.status_code, body, {name: value for name, value in response.items() if name not in skip}


def _bad_position_cursor() -> str:
    return base64.b64encode(b"p=not-a-time").decode()


# name -> function(chat) returning (client, path, extra request arguments)
PAGES = {
    "first page (marks read)": lambda ch: (ch[4], url(ch[0].pk), {}),
    "the other side's first page": lambda ch: (ch[5], url(ch[0].pk), {}),
    "page_size 3": lambda ch: (ch[4], url(ch[0].pk, page_size=3), {}),
    "page_size 100": lambda ch: (ch[4], url(ch[0].pk, page_size=100), {}),
    "page_size 25": lambda ch: (ch[4], url(ch[0].pk, page_size=25), {}),
    "empty chat": lambda ch: (ch[4], url(ch[1].pk), {}),
    "accept json": lambda ch: (ch[4], url(ch[0].pk), {"HTTP_ACCEPT": "application/json"}),
    "accept anything": lambda ch: (ch[4], url(ch[0].pk), {"HTTP_ACCEPT": "*/*"}),
    "gzip accepted": lambda ch: (ch[4], url(ch[0].pk, page_size=100), {"HTTP_ACCEPT_ENCODING": "gzip"}),
    # DRF's answers, which the lean path leaves to DRF:
    "accept html": lambda ch: (ch[4], url(ch[0].pk), {"HTTP_ACCEPT": "text/html"}),
    "accept empty": lambda ch: (ch[4], url(ch[0].pk), {"HTTP_ACCEPT": ""}),
    "accept with quality": lambda ch: (ch[4], url(ch[0].pk), {"HTTP_ACCEPT": "application/json;q=0.9, */*;q=0.1"}),
    "format json": lambda ch: (ch[4], url(ch[0].pk, format="json"), {}),
    "an unknown parameter": lambda ch: (ch[4], url(ch[0].pk, sort="old"), {}),
    "page_size 0": lambda ch: (ch[4], url(ch[0].pk, page_size=0), {}),
    "page_size 101": lambda ch: (ch[4], url(ch[0].pk, page_size=101), {}),
    "page_size text": lambda ch: (ch[4], url(ch[0].pk, page_size="ten"), {}),
    "a garbage cursor": lambda ch: (ch[4], url(ch[0].pk, cursor="zzz"), {}),
    "a cursor with a bad time": lambda ch: (ch[4], url(ch[0].pk, cursor=_bad_position_cursor()), {}),
    "a stranger": lambda ch: (client_for(make_user()), url(ch[0].pk), {}),
    "a stranger with connections": lambda ch: (_with_connections(client_for(make_user())), url(ch[0].pk), {}),
    "someone else's chat": lambda ch: (ch[5], url(ch[1].pk), {}),
    "an unknown connection": lambda ch: (ch[4], url("01234567-89ab-7def-8123-456789abcdef"), {}),
    "a pending connection": lambda ch: (ch[4], url(make_connection(make_user(), ch[2], status="pending").pk), {}),
    "a declined connection": lambda ch: (ch[4], url(make_connection(make_user(), ch[2], status="declined").pk),
                                         {}),
    "no token": lambda ch: (APIClient(), url(ch[0].pk), {}),
    "basic auth": lambda ch: (APIClient(), url(ch[0].pk), {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}),
    "bad token": lambda ch: (APIClient(), url(ch[0].pk), {"HTTP_AUTHORIZATION": "Bearer not.a.token"}),
    "three words": lambda ch: (APIClient(), url(ch[0].pk), {"HTTP_AUTHORIZATION": "Bearer a b"}),
    "a second page while unread (not marked read)": lambda ch: _second_page(ch),
}


def _second_page(ch):
    """The link to the second page of three, with the chat unread again (as before the read)."""
    conn, _empty, a, b, ca, _cb = ch
    link = ca.get(url(conn.pk, page_size=3)).json()["next"]
    Connection.objects.filter(pk=conn.pk).update(low_last_read_at=None, high_last_read_at=None)
    cachekeys.bump_many([(ns, u.pk) for u in (a, b) for ns in (CONN_NS, UNREAD_NS)])
    return ca, link, {}


def _with_connections(client):
    make_connection(make_user(), client.user)
    return client


def _get(client, path, extra, lean, monkeypatch):
    # APIClient.credentials() would override an Authorization header given here: header cases
    # use a client without credentials.
    monkeypatch.setattr(MessageListView, "lean_get", lean)
    return _answer(client.get(path, **extra))


@pytest.mark.parametrize("case", list(PAGES))
def test_a_page_is_answered_as_drf_answers_it(case, chat, monkeypatch):
    """Each path twice on the same state (cold caches, then warm after the first read moved
    the marker); the read markers afterwards too."""
    conn, empty, a, b, _ca, _cb = chat
    client, path, extra = PAGES[case](chat)
    before = _state(conn, empty)
    answers = {}
    for lean in (False, True):
        _restore([conn, empty], before, [a, b])
        answers[lean] = (_get(client, path, extra, lean, monkeypatch), _get(client, path, extra, lean, monkeypatch),
                         _state(conn, empty))
    assert answers[True] == answers[False]
    assert answers[True][0][0] in (200, 400, 401, 403, 404, 406)


def test_cursors_both_ways_are_answered_as_drf_answers_them(chat, monkeypatch):
    """Every page forward with page_size 4 (through equal times), then every page back from the
    last one, by the links each path gives; the same bytes on both paths."""
    conn, empty, a, b, ca, _cb = chat
    before = _state(conn, empty)

    def walk(lean):
        _restore([conn, empty], before, [a, b])
        pages, link = [], url(conn.pk, page_size=4)
        while link:
            answer = _get(ca, link, {}, lean, monkeypatch)
            pages.append(answer)
            link = _link(answer, "next")
        link = _link(pages[-1], "previous")
        while link:
            answer = _get(ca, link, {}, lean, monkeypatch)
            pages.append(answer)
            link = _link(answer, "previous")
        return pages

    drf, lean = walk(False), walk(True)
    assert lean == drf
    assert len(drf) == 7 + 6 and all(status == 200 for status, _body, _headers in drf)


def _link(answer, which):
    return orjson.loads(answer[1])[which]


def _blocked(chat):
    _conn, _empty, a, b, _ca, _cb = chat
    account_services.block_user(blocker_id=b.pk, blocked_id=a.pk)


def _removed(chat):
    conn, _empty, a, _b, _ca, _cb = chat
    from connections import services

    services.remove_connection(user_id=a.pk, connection_id=conn.pk)


def _logged_out(chat):
    account_services.revoke_all_sessions(chat[2].pk)


def _deactivated(chat):
    account_services.deactivate_user(chat[2].pk)


@pytest.mark.parametrize("change", [_blocked, _removed, _logged_out, _deactivated])
def test_refusals_after_a_change_are_drfs(change, monkeypatch, django_capture_on_commit_callbacks):
    """A chat that was readable, then blocked, removed, logged out or deactivated: each path on
    a chat of its own in the same state (the refusals carry no ids), after a read that warmed
    every cache."""
    answers = {}
    for lean in (False, True):
        a, b = make_user(display_name="Ann"), make_user(display_name="Ben")
        conn = make_connection(a, b)
        ca = client_for(a)
        assert _get(ca, url(conn.pk), {}, lean, monkeypatch)[0] == 200  # every cache warm
        with django_capture_on_commit_callbacks(execute=True):  # bumps and markers after commit
            change((conn, None, a, b, ca, None))
        answers[lean] = _get(ca, url(conn.pk), {}, lean, monkeypatch)
    assert answers[True] == answers[False]
    assert answers[True][0] in (401, 404)


def test_a_well_formed_read_skips_drf(chat, monkeypatch):
    conn, empty, _a, _b, ca, _cb = chat
    calls = drf_initial_calls(monkeypatch, MessageListView)
    first = ca.get(url(conn.pk, page_size=5))
    assert first.status_code == 200 and len(first.json()["results"]) == 5
    assert ca.get(first.json()["next"]).status_code == 200
    assert ca.get(url(empty.pk)).json() == {"next": None, "previous": None, "results": []}
    assert calls == []
    assert ca.get(url(conn.pk, page_size=0)).status_code == 400
    assert ca.get(url(make_connection(make_user(), ca.user, status="pending").pk)).status_code == 403
    assert calls == ["GET", "GET"]  # refusals are DRF's


def test_reading_the_first_page_marks_it_read_on_the_lean_path(chat):
    conn, _empty, a, _b, ca, _cb = chat
    newest = Message.objects.filter(connection=conn).order_by("-created_at", "-id").first()
    assert ca.get(url(conn.pk, page_size=3)).status_code == 200
    conn.refresh_from_db()
    marker = conn.low_last_read_at if conn.user_low_id == a.pk else conn.high_last_read_at
    assert marker == newest.created_at
    unread = {item["id"]: item["unread_count"] for item in ca.get("/api/v1/connections/").json()["results"]}
    assert unread[str(conn.pk)] == 0


def test_one_rate_count_per_read_and_drfs_429(chat, low_rates):
    low_rates(user="3/hour")
    conn, _empty, a, _b, ca, _cb = chat
    for _ in range(3):
        assert ca.get(url(conn.pk)).status_code == 200
    refused = ca.get(url(conn.pk))
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) >= 1
    key, _ttl = UserRateThrottle().counter(str(a.pk))
    assert int(redis_client().get(key)) == 4  # the lean path's count was handed to DRF's throttle


def test_a_warm_read_costs_two_redis_round_trips_and_one_query(chat, round_trips, django_assert_num_queries):
    conn, _empty, _a, _b, ca, _cb = chat
    ca.get(url(conn.pk))  # marks it read, which changes the unread counts
    ca.get(url(conn.pk))  # ...loaded again here: every cache is warm now
    round_trips.clear()
    with django_assert_num_queries(1):  # the page
        assert ca.get(url(conn.pk)).status_code == 200
    assert len(round_trips) == 2  # the token check with the rate count; the chat with the unread counts


def test_with_the_breaker_open_drf_answers_from_the_database(chat):
    conn, _empty, _a, _b, ca, _cb = chat
    try:
        redis_breaker.trip(ConnectionError("test"), "test")
        response = ca.get(url(conn.pk, page_size=2))
        assert response.status_code == 200 and len(response.json()["results"]) == 2
    finally:
        redis_breaker.reset()
