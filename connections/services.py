"""Connection requests, their answers, removal, and chat: every write of the app.

One row per pair; every change bumps both users' caches after commit.
State machine: docs/subsystems/connections.md.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, router, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import User
from connections import signals
from connections.models import Connection, ConnectionStatus, Message
from connections.selectors import CONN_NS, UNREAD_NS, cached_chat, cached_sender_chat
from connections.signals import connection_removed
from core.api.rest import Conflict
from core.cache import keys as cachekeys
from core.ids import as_uuid
from crossings import selectors as crossing_selectors


def _pair(a, b) -> tuple[uuid.UUID, uuid.UUID]:
    a, b = uuid.UUID(str(a)), uuid.UUID(str(b))
    return (a, b) if a < b else (b, a)


def _event(signal, conn: Connection) -> None:
    """Announce a request or an acceptance once committed (for the WebSocket layer)."""
    requester = conn.requester_id
    recipient = conn.other(requester)
    transaction.on_commit(lambda: signal.send(sender=Connection, connection_id=conn.pk, requester_id=requester,
                                              recipient_id=recipient))


def _invalidate(*user_ids, unread: bool = False) -> None:
    pairs = [(CONN_NS, uid) for uid in user_ids]
    if unread:
        pairs += [(UNREAD_NS, uid) for uid in user_ids]
    cachekeys.bump_on_commit(pairs)


def _have_crossed(a, b) -> bool:
    return crossing_selectors.have_crossed(a, b)


DEACTIVATED_SENDER = "This account is deactivated: it cannot send messages or connection requests."


def _delivered(sender_id) -> bool:
    """Whether what ``sender_id`` sends reaches anyone (docs/security.md, contact rules).

    A deactivated (or erased) account is refused with a 403; a shadow-banned one is told
    its request or message went out, but nothing is stored or delivered (False).  From the
    profile cache's flags, which every moderation change invalidates.
    """
    active, shadow_banned = account_selectors.profile_flags([sender_id]).get(
        uuid.UUID(str(sender_id)), (False, False))
    if not active:
        raise PermissionDenied(DEACTIVATED_SENDER)
    return not shadow_banned


def _target_or_404(requester_id, target_id) -> uuid.UUID:
    try:
        target = uuid.UUID(str(target_id))
    except (TypeError, ValueError, AttributeError):
        raise ValidationError({"user_id": ["Must be a user id."]})
    if str(target) == str(requester_id):
        raise ValidationError({"user_id": ["You cannot connect with yourself."]})
    if account_selectors.is_blocked_between(requester_id, target):
        raise Http404
    if not User.objects.filter(pk=target, is_active=True, is_shadow_banned=False).exists():
        raise Http404
    return target


@transaction.atomic
def request_connection(*, requester_id, target_id) -> tuple[Connection, bool]:
    """Ask ``target`` to connect.  Returns ``(connection, created)``.

    A deactivated requester gets a 403; a shadow-banned one the answer of a new request,
    but nothing is stored or sent.  Safe under two simultaneous requests from both sides: the row is inserted with
    ``INSERT ... ON CONFLICT DO NOTHING`` and then locked; the second request waits for the
    first to commit and, finding the other side's pending request, accepts it.
    """
    delivered = _delivered(requester_id)
    target = _target_or_404(requester_id, target_id)
    low, high = _pair(requester_id, target)
    now = timezone.now()
    existing = Connection.objects.filter(user_low_id=low, user_high_id=high).first()
    if existing is None and not _have_crossed(requester_id, target):
        raise Http404  # not someone you crossed: as if they did not exist
    fresh = Connection(user_low_id=low, user_high_id=high, requester_id=requester_id,
                       status=ConnectionStatus.PENDING, created_at=now, updated_at=now)
    if not delivered:  # shadow-banned: the answer of a new request, and nothing stored
        if existing is not None and existing.status == ConnectionStatus.ACCEPTED:
            raise Conflict("You are already connected.")
        return fresh, True
    if existing is None:
        Connection.objects.bulk_create([fresh], ignore_conflicts=True)
    conn = Connection.objects.select_for_update().get(user_low_id=low, user_high_id=high)
    if conn.pk == fresh.pk:
        _invalidate(low, high)
        _event(signals.connection_requested, conn)
        return conn, True
    return _request_existing(conn, requester_id, now), False


def _request_existing(conn: Connection, requester_id, now) -> Connection:
    mine = str(conn.requester_id) == str(requester_id)
    if conn.status == ConnectionStatus.ACCEPTED:
        raise Conflict("You are already connected.")
    if conn.status == ConnectionStatus.PENDING:
        if mine:
            return conn  # asking twice is harmless
        return _accept(conn, now)  # they asked me first: a mutual request accepts
    # declined
    if mine:
        raise Conflict("This request was declined.")
    conn.requester_id = requester_id
    conn.status = ConnectionStatus.PENDING
    conn.updated_at = now
    conn.responded_at = None
    conn.save(update_fields=["requester", "status", "updated_at", "responded_at"])
    _invalidate(conn.user_low_id, conn.user_high_id)
    _event(signals.connection_requested, conn)
    return conn


def _accept(conn: Connection, now) -> Connection:
    conn.status = ConnectionStatus.ACCEPTED
    conn.updated_at = conn.responded_at = now
    conn.save(update_fields=["status", "updated_at", "responded_at"])
    _invalidate(conn.user_low_id, conn.user_high_id)
    _event(signals.connection_accepted, conn)
    return conn


def _locked_member_connection(user_id, connection_id) -> Connection:
    try:
        cid = uuid.UUID(str(connection_id))
    except (TypeError, ValueError, AttributeError):
        raise Http404
    conn = Connection.objects.select_for_update().filter(pk=cid).first()
    if conn is None or not conn.is_member(user_id):
        raise Http404
    if account_selectors.is_blocked_between(conn.user_low_id, conn.user_high_id):
        raise Http404
    return conn


def _locked_pending_request_to(user_id, connection_id, refusal: str) -> Connection:
    """A pending request addressed to ``user_id``, locked; 409 if not pending, 403 (with
    ``refusal``) if ``user_id`` is the one who asked."""
    conn = _locked_member_connection(user_id, connection_id)
    if conn.status != ConnectionStatus.PENDING:
        raise Conflict(f"The request is {conn.status}, not pending.")
    if str(conn.requester_id) == str(user_id):
        raise PermissionDenied(refusal)
    return conn


@transaction.atomic
def accept_connection(*, user_id, connection_id) -> Connection:
    """The requested side accepts a pending request."""
    conn = _locked_pending_request_to(user_id, connection_id, "Only the requested user can accept.")
    return _accept(conn, timezone.now())


@transaction.atomic
def decline_connection(*, user_id, connection_id) -> Connection:
    """The requested side declines a pending request; the requester cannot ask again."""
    conn = _locked_pending_request_to(
        user_id, connection_id, "Only the requested user can decline; cancel your own request instead."
    )
    conn.status = ConnectionStatus.DECLINED
    conn.updated_at = conn.responded_at = timezone.now()
    conn.save(update_fields=["status", "updated_at", "responded_at"])
    _invalidate(conn.user_low_id, conn.user_high_id)
    return conn


@transaction.atomic
def remove_connection(*, user_id, connection_id) -> None:
    """Cancel one's own pending request, or end an accepted connection (either side).

    Removing a connection deletes its chat as well: messages are kept only while both
    people are connected.
    """
    conn = _locked_member_connection(user_id, connection_id)
    if conn.status == ConnectionStatus.PENDING and str(conn.requester_id) != str(user_id):
        raise PermissionDenied("Decline the request instead.")
    if conn.status == ConnectionStatus.DECLINED:
        raise Conflict("The request was declined.")
    _delete(conn)


def _delete(conn: Connection) -> None:
    was_accepted = conn.status == ConnectionStatus.ACCEPTED
    low, high = conn.user_low_id, conn.user_high_id
    conn.delete()
    if was_accepted:
        connection_removed.send(sender=Connection, user_a_id=low, user_b_id=high)
    _invalidate(low, high, unread=True)


def remove_pair(a_id, b_id) -> None:
    """Delete whatever links two users (a block: nothing must remain either way)."""
    low, high = _pair(a_id, b_id)
    with transaction.atomic():
        conn = Connection.objects.select_for_update().filter(user_low_id=low, user_high_id=high).first()
        if conn is not None:
            _delete(conn)
        else:
            _invalidate(low, high)


# ------------------------------------------------------------------------------ chat


def _chat_connection(user_id, connection_id, *, with_unread: bool = False) -> tuple[Connection, dict[str, int]]:
    """The accepted connection to chat in (and, ``with_unread``, the user's unread counts);
    404 if absent or not yours, 403 if not accepted.

    From the cached connection index and hidden set when they say so (no query, one round
    trip with the counts); otherwise the database decides, and says why not.
    """
    cid = as_uuid(connection_id)
    if cid is None:
        raise Http404
    known, unread = cached_chat(user_id, cid, with_unread=with_unread)
    if known is not None:
        return known, unread
    return _chat_in_database(user_id, cid), unread


def _chat_in_database(user_id, cid: uuid.UUID) -> Connection:
    """``_chat_connection`` when the cache did not say yes: the database says why not."""
    conn = Connection.objects.filter(pk=cid).first()
    if conn is None or not conn.is_member(user_id):
        raise Http404
    if account_selectors.is_blocked_between(conn.user_low_id, conn.user_high_id):
        raise Http404
    if conn.status != ConnectionStatus.ACCEPTED:
        raise PermissionDenied("You can chat only with accepted connections.")
    return conn


def _sender_chat(user_id, connection_id) -> tuple[Connection, bool]:
    """``send_message``'s checks, in the order ``_delivered`` and ``_chat_connection`` make them
    (403 for a deactivated sender first), from one cache round trip: the sender's flags are
    read in the batch of the chat's connection index and hidden set.  ``(connection,
    delivered)``."""
    cid = as_uuid(connection_id)
    if cid is None:
        _delivered(user_id)
        raise Http404
    uid = uuid.UUID(str(user_id))
    (active, shadow_banned), known = cached_sender_chat(uid, cid)
    if not active:
        raise PermissionDenied(DEACTIVATED_SENDER)
    return (known if known is not None else _chat_in_database(uid, cid)), not shadow_banned


def chat_connection(*, user_id, connection_id, with_unread: bool = False) -> tuple[Connection, dict[str, int]]:
    return _chat_connection(user_id, connection_id, with_unread=with_unread)


def _clean_body(body) -> str:
    if not isinstance(body, str):
        raise ValidationError({"body": ["Must be text."]})
    body = body.strip()
    if not body:
        raise ValidationError({"body": ["A message cannot be empty."]})
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(body) > limit:
        raise ValidationError({"body": [f"At most {limit} characters."]})
    if "\x00" in body:
        raise ValidationError({"body": ["Null characters are not allowed."]})
    return body


_STORE_MESSAGE = (
    f"INSERT INTO {Message._meta.db_table} (id, connection_id, sender_id, body, erased, created_at) "
    f"SELECT %s, id, %s, %s, false, %s FROM {Connection._meta.db_table} WHERE id = %s AND status = %s "
    "FOR NO KEY UPDATE"
)


def send_message(*, user_id, connection_id, body) -> Message:
    """Post a message; refused (and stored nowhere) unless both are still connected.  A
    deactivated sender gets a 403; a shadow-banned one a message that is never stored."""
    body = _clean_body(body)
    with transaction.atomic():  # a read of the database the cache sends us to goes to the primary
        conn, delivered = _sender_chat(user_id, connection_id)
        if not delivered:  # shadow-banned: the answer of a sent message, and nothing stored
            return Message(connection_id=conn.pk, sender_id=user_id, body=body)
        message = Message(connection_id=conn.pk, sender_id=user_id, body=body)
        # One statement locks the connection's row (no key update: a concurrent removal
        # waits, or we see it gone) and inserts the message if it is still accepted.  Routed
        # as the ORM's write would be (the router remembers the write: read-your-writes).
        with connections[router.db_for_write(Message, instance=message)].cursor() as cursor:
            cursor.execute(_STORE_MESSAGE, [message.pk, uuid.UUID(str(user_id)), body, message.created_at, conn.pk,
                                            ConnectionStatus.ACCEPTED.value])
            if cursor.rowcount != 1:
                raise Http404
        recipient = conn.other(user_id)
        cachekeys.bump_on_commit([(UNREAD_NS, recipient)])
        # In this transaction, with the text as stored: the WebSocket layer logs its events
        # here (in a savepoint; they are published after commit). The row lock is held, so
        # a removal waits for this commit and then redacts them with the chat.
        signals.message_stored.send(sender=Message, message_id=message.pk, connection_id=conn.pk,
                                    sender_id=user_id, recipient_id=recipient, body=message.body,
                                    created_at=message.created_at)
        if signals.message_sent.has_listeners(Message):  # none in the project now: no callback at commit
            transaction.on_commit(lambda: signals.message_sent.send(
                sender=Message, message_id=message.pk, connection_id=conn.pk, sender_id=user_id,
                recipient_id=recipient))
    return message


def _mark_read_sql(field: str) -> str:
    column = next(f.column for f in Connection._meta.concrete_fields if f.name == field)
    return (f"UPDATE {Connection._meta.db_table} SET {column} = %s "
            f"WHERE id = %s AND ({column} IS NULL OR {column} < %s)")


# What ``Connection.objects.filter(pk=, Q(<field>__isnull=True) | Q(<field>__lt=until)).update(<field>=until)``
# compiles to, written once: compiling that UPDATE was 0.12 of its 0.19 ms on every read that marks a chat read.
_MARK_READ = {field: _mark_read_sql(field) for field in ("low_last_read_at", "high_last_read_at")}


def mark_read(*, user_id, connection: Connection, until=None) -> bool:
    """Move ``user_id``'s read marker of ``connection`` forward (never back)."""
    until = until or timezone.now()
    field = "low_last_read_at" if str(connection.user_low_id) == str(user_id) else "high_last_read_at"
    # Routed as the queryset's update would be (the router remembers the write: read-your-writes).
    with connections[router.db_for_write(Connection)].cursor() as cursor:
        cursor.execute(_MARK_READ[field], [until, connection.pk, until])
        updated = cursor.rowcount
    if updated:
        cachekeys.bump_on_commit([(UNREAD_NS, user_id)])
    return bool(updated)


def mark_read_up_to(*, user_id, connection_id, up_to) -> tuple[Message, bool]:
    """A read receipt: ``user_id`` has read the chat up to message ``up_to`` (sent by either
    side).  Moves the read marker there (never back); when it moved, the other person (and
    the reader's other devices) hear ``message.read`` once committed.  A shadow-banned
    reader's receipt moves the marker and is never announced."""
    conn, _unread = _chat_connection(user_id, connection_id)
    message = Message.objects.filter(pk=up_to, connection_id=conn.pk).only("id", "created_at").first()
    if message is None:
        raise ValidationError({"up_to": ["Not a message of this chat."]})
    with transaction.atomic():
        moved = mark_read(user_id=user_id, connection=conn, until=message.created_at)
        if moved and _delivered(user_id):
            other = conn.other(user_id)
            transaction.on_commit(lambda: signals.messages_read.send(
                sender=Message, connection_id=conn.pk, reader_id=user_id, sender_id=other,
                up_to=message.pk, read_at=message.created_at))
    return message, moved


def erase_messages_of(user_id) -> int:
    """Blank the text of every message ``user_id`` sent (their account is being erased).

    Their connections are locked first, in the erasure's transaction (connections' receiver
    runs before realtime's, which deletes the user's event counter): a message being sent to
    them, which holds its connection's lock and then takes both counters, finishes first, and
    the erasure never waits for a counter while holding what such a send waits for.
    """
    others: set[object] = set()
    with transaction.atomic():
        for low, high in Connection.objects.select_for_update().filter(
                Q(user_low_id=user_id) | Q(user_high_id=user_id)).values_list("user_low_id", "user_high_id"):
            others.update((low, high))
        count = Message.objects.filter(sender_id=user_id).update(body="", erased=True)
    _invalidate(user_id, *others, unread=True)
    return count

