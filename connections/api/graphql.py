"""GraphQL types and resolvers of connections: ``connections(status)`` with unread counts,
``messages(connectionId)``, and the writes (connect, accept, decline, send a message).

Pages and unread counts are read from the cache in one round trip under the same versioned
keys as GET connections/ (bumped by ``connections.services``); profiles and visibility come
from ``accounts.selectors.visible_profiles`` as in the REST view.  Design: docs/subsystems/graphql.md.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from django.conf import settings

from accounts import selectors as account_selectors
from accounts.api.graphql import PublicProfile, profile_out
from connections import selectors, services
from connections.api import serializers as s
from core.api import graphql as gql
from core.cache import keys as cachekeys

DEFAULT_PAGE_SIZE = 20


@strawberry.enum
class ConnectionKind(Enum):
    ACCEPTED = "accepted"
    INCOMING = "incoming"
    OUTGOING = "outgoing"


@strawberry.type
class Connection:
    id: strawberry.ID
    user: PublicProfile | None = strawberry.field(
        description="Always set in lists; null in a mutation's answer when the other user has just gone.")
    status: str = strawberry.field(description="pending, accepted or declined.")
    direction: str = strawberry.field(description="incoming or outgoing (who asked).")
    created_at: datetime
    updated_at: datetime
    responded_at: datetime | None
    unread_count: int = strawberry.field(description="Messages from the other user I have not read.")


@strawberry.type(description="One page, newest update first.")
class ConnectionPage:
    items: list[Connection]
    has_next: bool
    next_cursor: str | None = strawberry.field(description="Pass as `cursor` for the next page.")


@strawberry.type
class Message:
    id: strawberry.ID
    sender_id: strawberry.ID | None = strawberry.field(description="Null once the sender's account is erased.")
    body: str
    created_at: datetime


@strawberry.type(description="One page of a conversation, newest first.")
class MessagePage:
    items: list[Message]
    has_next: bool
    next_cursor: str | None = strawberry.field(description="Pass as `cursor` for older messages.")


def _connection_out(row: dict, profile: dict | None, unread: int) -> Connection:
    return Connection(id=row["id"], user=profile_out(profile) if profile else None, status=row["status"],
                      direction=row["direction"],
                      created_at=row["created_at"], updated_at=row["updated_at"],
                      responded_at=row["responded_at"], unread_count=unread)


def _message_out(message) -> Message:
    return Message(id=strawberry.ID(str(message.id)),
                   sender_id=strawberry.ID(str(message.sender_id)) if message.sender_id else None,
                   body=message.body, created_at=message.created_at)


def _load_page(me, kind: str, after, size: int) -> dict | None:
    page = selectors.connections_keyset(me, kind, after, size)
    if page is None:
        return None
    conns, has_next = page
    return {"rows": [s.connection_row(conn, me) for conn in conns], "next": has_next}


def _connections(info: strawberry.Info, status: ConnectionKind = ConnectionKind.ACCEPTED,
                 first: int | None = DEFAULT_PAGE_SIZE, cursor: str | None = None) -> ConnectionPage | None:
    me = gql.viewer_id(info)
    size = gql.page_size(first, DEFAULT_PAGE_SIZE)
    parsed = gql.parse_cursor(cursor, ("n",))
    after = parsed[1] if parsed else None
    kind = status.value
    # The page and the unread counts: one round trip to Redis when both are cached.
    page_key = (selectors.CONN_NS, str(me), f"gql:{kind}:{after or ''}:{size}")
    unread_key = (selectors.UNREAD_NS, str(me), "")
    batch = cachekeys.read_entries([page_key, unread_key] if kind == "accepted" else [page_key])
    fresh: dict = {}
    if page_key not in batch.hits:
        loaded = _load_page(me, kind, after, size)
        if loaded is None:
            raise gql.CodedError("Invalid cursor.", "NOT_FOUND")
        fresh[page_key] = loaded
    if kind == "accepted" and unread_key not in batch.hits:
        fresh[unread_key] = selectors.load_unread(me)
    batch.fill(fresh, settings.CONNECTIONS_CACHE_S)
    page, unread = batch.hits[page_key], batch.hits.get(unread_key, {})
    rows = page["rows"]
    profiles = {str(uid): p for uid, p in
                account_selectors.visible_profiles(me, [row["user_id"] for row in rows]).items()}
    items = [_connection_out(row, profiles[row["user_id"]], unread.get(row["id"], 0))
             for row in rows if row["user_id"] in profiles]  # blocked, deactivated, shadow-banned: not shown
    return ConnectionPage(items=items, has_next=page["next"],
                          next_cursor=f"n.{rows[-1]['id']}" if page["next"] and rows else None)


def _messages(info: strawberry.Info, connection_id: strawberry.ID, first: int | None = DEFAULT_PAGE_SIZE,
              cursor: str | None = None) -> MessagePage | None:
    me = gql.viewer_id(info)
    size = gql.page_size(first, DEFAULT_PAGE_SIZE)
    parsed = gql.parse_cursor(cursor, ("n",))
    conn, unread = services.chat_connection(user_id=me, connection_id=gql.parse_id(connection_id),
                                            with_unread=True)
    page = selectors.messages_keyset(conn.pk, parsed[1] if parsed else None, size)
    if page is None:
        raise gql.CodedError("Invalid cursor.", "NOT_FOUND")
    messages, has_next = page
    if messages and parsed is None and unread.get(str(conn.pk)):  # reading the first page marks it read
        services.mark_read(user_id=me, connection=conn, until=messages[0].created_at)
    return MessagePage(items=[_message_out(m) for m in messages], has_next=has_next,
                       next_cursor=f"n.{messages[-1].id}" if has_next and messages else None)


def _one(me, conn) -> Connection:
    row = s.connection_row(conn, me)
    return _connection_out(row, account_selectors.get_public_profile(row["user_id"]), 0)


@strawberry.type
class ConnectionsQuery:
    connections: ConnectionPage | None = strawberry.field(
        resolver=_connections, description="My connections (accepted) or requests (incoming, outgoing), "
                                           "newest first, with unread counts (GET connections/).")
    messages: MessagePage | None = strawberry.field(
        resolver=_messages, description="A conversation, newest first; reading the first page marks it read "
                                        "(GET connections/{id}/messages/).")


@strawberry.type
class ConnectionsMutation:
    @strawberry.mutation(description="Ask someone you crossed to connect; toward someone who asked you, it "
                                     "accepts theirs (POST connections/).")
    def connect(self, info: strawberry.Info, user_id: strawberry.ID) -> Connection:
        me = gql.viewer_id(info)
        serializer = s.ConnectionRequestIn(data={"user_id": str(user_id)})
        serializer.is_valid(raise_exception=True)
        conn, _created = services.request_connection(requester_id=me, target_id=serializer.validated_data["user_id"])
        return _one(me, conn)

    @strawberry.mutation(description="Accept a request made to me (POST connections/{id}/accept/).")
    def accept_connection(self, info: strawberry.Info, connection_id: strawberry.ID) -> Connection:
        me = gql.viewer_id(info)
        return _one(me, services.accept_connection(user_id=me, connection_id=gql.parse_id(connection_id)))

    @strawberry.mutation(description="Decline a request made to me (POST connections/{id}/decline/).")
    def decline_connection(self, info: strawberry.Info, connection_id: strawberry.ID) -> Connection:
        me = gql.viewer_id(info)
        return _one(me, services.decline_connection(user_id=me, connection_id=gql.parse_id(connection_id)))

    @strawberry.mutation(description="Send a message to an accepted connection "
                                     "(POST connections/{id}/messages/).")
    def send_message(self, info: strawberry.Info, connection_id: strawberry.ID, body: str) -> Message:
        me = gql.viewer_id(info)
        serializer = s.MessageIn(data={"body": body})
        serializer.is_valid(raise_exception=True)
        message = services.send_message(user_id=me, connection_id=gql.parse_id(connection_id),
                                        body=serializer.validated_data["body"])
        return _message_out(message)
