"""Reads about connections that other apps (stories, crossings, accounts' visibility) may call.

Cached under versioned keys (namespace ``conn`` per user), bumped by ``connections.services``.
Design: docs/subsystems/read-caches.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, router
from django.db.models import Count, F, Q

from accounts import selectors as account_selectors
from connections.models import Connection, ConnectionStatus, Message
from core.cache import keys as cachekeys
from core.db import router as db_router
from core.db.lookup import Compiled, compile_query, fetch_rows
from core.ids import as_uuid

CONN_NS = "conn"  # a user's connection index and list pages
UNREAD_NS = "unread"  # a user's unread counts per conversation


def _load_index(user_id) -> dict[str, tuple[str, str, str]]:
    """``{other_id: (connection_id, status, "incoming"|"outgoing"|"accepted")}``, declined left out."""
    with db_router.use_primary():
        rows = Connection.objects.filter(
            Q(user_low_id=user_id) | Q(user_high_id=user_id), status__in=[ConnectionStatus.PENDING,
                                                                           ConnectionStatus.ACCEPTED]
        ).values_list("id", "user_low_id", "user_high_id", "requester_id", "status")
        index = {}
        for conn_id, low, high, requester, status in rows:
            other = high if str(low) == str(user_id) else low
            if status == ConnectionStatus.ACCEPTED:
                kind = "accepted"
            else:
                kind = "outgoing" if str(requester) == str(user_id) else "incoming"
            index[str(other)] = (str(conn_id), status, kind)
        return index


def connection_index(user_id) -> dict[str, tuple[str, str, str]]:
    uid = as_uuid(user_id)
    if uid is None:
        return {}
    return cachekeys.get_versioned(CONN_NS, uid, lambda: _load_index(uid), settings.CONNECTIONS_CACHE_S, suffix="idx")


def accepted_connection_ids(user_id) -> set[uuid.UUID]:
    """Users connected with ``user_id`` (cached 5 min, invalidated on every change)."""
    return {uuid.UUID(other) for other, (_c, status, _k) in connection_index(user_id).items()
            if status == ConnectionStatus.ACCEPTED}


def are_connected(a_id, b_id) -> bool:
    entry = connection_index(a_id).get(str(b_id))
    return entry is not None and entry[1] == ConnectionStatus.ACCEPTED


def is_related(viewer_id, target_id) -> bool:
    """Connected, or a pending request either way: the other's profile is then visible."""
    return str(target_id) in connection_index(viewer_id)


def connections_for(user_id, kind: str):
    """Queryset of ``user_id``'s connections of one kind: accepted, incoming or outgoing."""
    mine = Q(user_low_id=user_id) | Q(user_high_id=user_id)
    qs = Connection.objects.filter(mine)
    if kind == "accepted":
        return qs.filter(status=ConnectionStatus.ACCEPTED)
    qs = qs.filter(status=ConnectionStatus.PENDING)
    if kind == "incoming":
        return qs.exclude(requester_id=user_id)
    return qs.filter(requester_id=user_id)


def cached_chat(user_id, connection_id, *, with_unread: bool = False) -> tuple[Connection | None, dict[str, int]]:
    """From the cache, in one round trip: the connection to chat in and the user's unread counts.

    The connection is returned (with its id, users and status; other fields load on use) when
    the user's connection index says it is theirs and accepted and their hidden set does not
    hold the other user; otherwise None, and the caller asks the database, which also tells
    "not yours" (404) from "not accepted" (403).  Unread counts only ``with_unread``.
    """
    uid, cid = as_uuid(user_id), as_uuid(connection_id)
    if uid is None or cid is None:
        return None, {}
    unread_key = (UNREAD_NS, str(uid), "")
    batch = _chat_batch(uid, {unread_key: lambda: load_unread(uid)} if with_unread else {})
    return _chat_from(batch, uid, cid), batch.hits.get(unread_key, {})


def cached_sender_chat(user_id: uuid.UUID, connection_id: uuid.UUID) -> tuple[tuple[bool, bool], Connection | None]:
    """What sending a message checks, in the same round trip: the sender's ``(is_active,
    is_shadow_banned)`` (accounts' profile cache) and ``cached_chat``'s connection (or None)."""
    flags_key = account_selectors.profile_key(user_id)
    batch = _chat_batch(user_id, {flags_key: None})
    return account_selectors.flags_from(batch, user_id), _chat_from(batch, user_id, connection_id)


def _chat_batch(uid: uuid.UUID, extra: dict[tuple[str, str, str], Callable[[], object] | None]) -> cachekeys.Batch:
    """One read of the user's connection index, hidden set and ``extra`` entries; on a miss the
    index and each extra entry with a loader are loaded and filled together (one more trip)."""
    index_key = (CONN_NS, str(uid), "idx")
    batch = cachekeys.read_entries([index_key, account_selectors.hidden_key(uid), *extra])
    fresh: dict[tuple[str, str, str], object] = {}
    if index_key not in batch.hits:
        fresh[index_key] = _load_index(uid)
    for key, loader in extra.items():
        if loader is not None and key not in batch.hits:
            fresh[key] = loader()
    batch.fill(fresh, settings.CONNECTIONS_CACHE_S)
    return batch


def _chat_from(batch: cachekeys.Batch, uid: uuid.UUID, cid: uuid.UUID) -> Connection | None:
    for other, (conn_id, status, _kind) in batch.hits[(CONN_NS, str(uid), "idx")].items():
        if conn_id == str(cid):
            other_id = uuid.UUID(other)
            if status == ConnectionStatus.ACCEPTED and other_id not in account_selectors.hidden_from(batch, uid):
                low, high = sorted((uid, other_id))
                return Connection.from_db(DEFAULT_DB_ALIAS, ["id", "user_low_id", "user_high_id", "status"],
                                          [cid, low, high, status])
            break
    return None


def unread_queryset(user_id, using: str = DEFAULT_DB_ALIAS):
    """``(connection_id, n)`` of the messages ``user_id`` has not read, per accepted conversation."""
    as_low = Q(connection__user_low_id=user_id) & (
        Q(connection__low_last_read_at__isnull=True) | Q(created_at__gt=F("connection__low_last_read_at")))
    as_high = Q(connection__user_high_id=user_id) & (
        Q(connection__high_last_read_at__isnull=True) | Q(created_at__gt=F("connection__high_last_read_at")))
    return (Message.objects.using(using).filter(connection__status=ConnectionStatus.ACCEPTED)
            .filter(as_low | as_high).exclude(sender_id=user_id).exclude(sender__isnull=True)
            .values("connection_id").annotate(n=Count("id")).values_list("connection_id", "n"))


_USER_PLACEHOLDER = uuid.UUID(int=0x0DD)
_compiled_unread: dict[str, Compiled] = {}


def load_unread(user_id) -> dict[str, int]:
    """Unread messages per accepted conversation of ``user_id``: one aggregate query, its SQL
    compiled by the ORM once per alias (``unread_queryset``; compiling it was 0.63 of its
    0.80 ms, docs/benchmarks/performance.md "Chat")."""
    with db_router.use_primary():
        alias = router.db_for_read(Message) or DEFAULT_DB_ALIAS
    compiled = _compiled_unread.get(alias)
    if compiled is None:
        placeholders = [ConnectionStatus.ACCEPTED, *[_USER_PLACEHOLDER] * 3]
        compiled = _compiled_unread[alias] = compile_query(unread_queryset(_USER_PLACEHOLDER, alias), alias,
                                                           placeholders)
    uid = as_uuid(user_id)
    rows = fetch_rows(compiled, alias, [ConnectionStatus.ACCEPTED.value, uid, uid, uid])
    return {str(cid): n for cid, n in rows}


def _keyset_after(qs, anchor_id, size: int, time_field: str) -> tuple[list, bool] | None:
    """Up to ``size`` rows of ``qs`` after the row ``anchor_id`` (newest first on ``time_field``, id),
    and whether more follow; None when the anchor is not in ``qs``."""
    if anchor_id is not None:
        anchor = qs.filter(pk=anchor_id).values(time_field, "id").first()
        if anchor is None:
            return None
        qs = qs.filter(Q(**{f"{time_field}__lt": anchor[time_field]})
                       | Q(**{time_field: anchor[time_field], "id__lt": anchor["id"]}))
    rows = list(qs.order_by(f"-{time_field}", "-id")[: size + 1])
    return rows[:size], len(rows) > size


def connections_keyset(user_id, kind: str, after_id: uuid.UUID | None, size: int) -> tuple[list, bool] | None:
    """A page of ``connections_for(user_id, kind)``, newest update first, after the connection
    ``after_id`` (from the primary: pages are cached under the user's ``conn`` version).
    ``(connections, has_next)``, or None when ``after_id`` is not one of them."""
    with db_router.use_primary():
        return _keyset_after(connections_for(user_id, kind), after_id, size, "updated_at")


def messages_keyset(connection_id, after_id: uuid.UUID | None, size: int) -> tuple[list, bool] | None:
    """A page of a conversation, newest first, after the message ``after_id``: ``(messages,
    has_next)``, or None when ``after_id`` is not in it.  Check membership first
    (``services.chat_connection``)."""
    qs = Message.objects.filter(connection_id=connection_id).only("id", "sender_id", "body", "created_at")
    return _keyset_after(qs, after_id, size, "created_at")


# ------------------------------------------------------------------ a chat page, compiled once

MESSAGE_FIELDS = ("id", "sender_id", "body", "created_at")
_CONNECTION_PLACEHOLDER = uuid.UUID(int=0xC4A7)
_TIME_PLACEHOLDER = datetime(2001, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
_compiled_pages: dict[tuple[str, tuple[str, ...], str], tuple[Compiled, str]] = {}


def _compiled_page(alias: str, ordering: tuple[str, ...], bound: str) -> tuple[Compiled, str]:
    """``Message.objects.filter(connection_id=?[, created_at__<bound>=?]).order_by(*ordering)
    .values(*MESSAGE_FIELDS)`` compiled once per alias, ordering and bound (``""``, ``"lt"`` or
    ``"gt"``) by the ORM itself (core.db.lookup), and its SQL with ``LIMIT %s OFFSET %s``."""
    key = (alias, ordering, bound)
    compiled = _compiled_pages.get(key)
    if compiled is None:
        qs = Message.objects.using(alias).filter(connection_id=_CONNECTION_PLACEHOLDER)
        placeholders: list = [_CONNECTION_PLACEHOLDER]
        if bound:
            qs = qs.filter(**{f"created_at__{bound}": _TIME_PLACEHOLDER})
            placeholders.append(_TIME_PLACEHOLDER)
        query = compile_query(qs.order_by(*ordering).values(*MESSAGE_FIELDS), alias, placeholders)
        compiled = _compiled_pages[key] = (query, f"{query.sql} LIMIT %s OFFSET %s")
    return compiled


class MessageRows:
    """A conversation's messages as dicts of ``MESSAGE_FIELDS``, for ``CursorPagination``.

    It answers what the paginator asks of a queryset (``order_by``, a ``created_at__lt`` /
    ``__gt`` filter, one slice) with SQL the ORM compiled once (``_compiled_page``): the same
    SELECT, values and routing (``router.db_for_read``) as the queryset, without compiling it
    and building model instances on every request.  Check membership first
    (``services.chat_connection``).
    """

    def __init__(self, connection_id, ordering: tuple[str, ...] = ("-created_at", "-id"), bound: str = "",
                 position=None):
        self.connection_id = connection_id
        self.ordering = ordering
        self.bound = bound
        self.position = position

    def order_by(self, *ordering: str) -> MessageRows:
        return MessageRows(self.connection_id, tuple(ordering), self.bound, self.position)

    def filter(self, **lookup) -> MessageRows:
        [(name, value)] = lookup.items()
        if self.bound or name not in ("created_at__lt", "created_at__gt"):
            raise TypeError(f"MessageRows cannot filter on {name}")
        # As the queryset's lookup would: a malformed time is Django's ValidationError (a 400).
        value = Message._meta.get_field("created_at").get_prep_value(value)
        return MessageRows(self.connection_id, self.ordering, name.rsplit("__", 1)[1], value)

    def __getitem__(self, window: slice) -> list[dict]:
        start, stop = window.start or 0, window.stop
        if window.step is not None or stop is None or stop < start:
            raise TypeError("MessageRows takes one bounded slice")
        alias = router.db_for_read(Message) or DEFAULT_DB_ALIAS
        query, sql = _compiled_page(alias, self.ordering, self.bound)
        params = [self.connection_id] + ([self.position] if self.bound else []) + [stop - start, start]
        return [dict(zip(query.attnames, row, strict=True)) for row in fetch_rows(query, alias, params, sql)]
