"""The two reads added to connections.selectors for GraphQL's pages: keyset order with ties
on time broken by id, and an anchor outside the set answering None."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from connections import selectors
from connections.models import Connection, Message
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db


def test_messages_keyset_walks_newest_first_through_equal_times():
    a, b = make_user(), make_user()
    conn = make_connection(a, b)
    now = timezone.now()
    made = [Message.objects.create(connection=conn, sender_id=a.pk, body=str(i), created_at=now) for i in range(5)]
    expected = sorted(made, key=lambda m: m.id, reverse=True)  # same instant: newest id first
    seen, after = [], None
    while True:
        page, more = selectors.messages_keyset(conn.pk, after, 2)
        seen += page
        if not more:
            break
        after = page[-1].id
    assert [m.id for m in seen] == [m.id for m in expected]
    assert selectors.messages_keyset(conn.pk, uuid.uuid4(), 2) is None
    other = make_connection(make_user(), make_user())
    assert selectors.messages_keyset(other.pk, made[0].id, 2) is None  # an anchor of another chat


def test_connections_keyset_by_kind():
    me = make_user()
    accepted = [make_connection(make_user(), me) for _ in range(3)]
    pending = make_connection(make_user(), me, status="pending")
    Connection.objects.filter(pk__in=[c.pk for c in accepted]).update(updated_at=timezone.now())
    page, more = selectors.connections_keyset(me.pk, "accepted", None, 2)
    rest, more_after = selectors.connections_keyset(me.pk, "accepted", page[-1].pk, 2)
    assert more and not more_after
    assert sorted(c.pk for c in page + rest) == sorted(c.pk for c in accepted)
    assert [c.pk for c in selectors.connections_keyset(me.pk, "incoming", None, 5)[0]] == [pending.pk]
    assert selectors.connections_keyset(me.pk, "accepted", pending.pk, 2) is None
