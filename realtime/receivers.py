"""How the realtime layer turns the apps' signals into logged, published events and socket controls.

Wired in ``RealtimeConfig.ready``.  After-commit receivers never raise into the caller (the
write is already committed); in-transaction ones work in a savepoint.
Event list and payloads: docs/realtime.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.db import transaction

from accounts import selectors as account_selectors
from accounts.models import User
from connections import selectors as connection_selectors
from core.db import router as db_router
from crossings.models import Crossing
from realtime import bus, events
from realtime.auth import CLOSE_ACCOUNT, CLOSE_AUTH
from realtime.events import Entry, as_uuid
from stories import selectors as story_selectors

logger = logging.getLogger(__name__)

CROSSING_CHUNK = 5000


def _safely(what: str, func: Callable[[], object]) -> None:
    try:
        func()
    except Exception:
        logger.exception("realtime: could not handle %s", what)


def _in_savepoint(what: str, func: Callable[[], object]) -> None:
    """Inside the sender's transaction: a failure rolls back our part only, never the change."""
    try:
        with transaction.atomic(using="default"):
            func()
    except Exception:
        logger.exception("realtime: could not handle %s", what)


# ------------------------------------------------------------------ chat and connections


def on_message_stored(sender, message_id, connection_id, sender_id, recipient_id, body, created_at,
                      **kwargs) -> None:
    """In the message's transaction, from the text and time it was stored with (no read-back,
    no second transaction); published once it commits.  ``events.record``'s block is a
    savepoint here: a failure rolls back the events only, never the message.  The sender
    holds the connection's row lock, so a removal waits for the commit and redacts these."""
    payload = {"message_id": str(message_id), "connection_id": str(connection_id), "sender_id": str(sender_id),
               "body": body, "created_at": created_at.isoformat()}
    # The recipient, and the sender's other devices (the sending socket gets it too).
    entries = [Entry(recipient_id, "message.new", payload, sender_id),
               Entry(sender_id, "message.new", payload, recipient_id)]
    _safely("message_stored", lambda: events.record(entries))


def on_messages_read(sender, connection_id, reader_id, sender_id, up_to, read_at, **kwargs) -> None:
    """A read receipt: to the other person, and to the reader's other devices (unread badges)."""
    payload = {"connection_id": str(connection_id), "user_id": str(reader_id), "up_to": str(up_to),
               "read_at": read_at.isoformat()}
    _safely("messages_read", lambda: events.record([Entry(sender_id, "message.read", payload, reader_id),
                                                    Entry(reader_id, "message.read", payload, sender_id)]))


def on_connection_requested(sender, connection_id, requester_id, recipient_id, **kwargs) -> None:
    _safely("connection_requested", lambda: events.record([
        Entry(recipient_id, "connection.requested", {"connection_id": str(connection_id),
                                                     "user_id": str(requester_id)}, requester_id),
    ]))


def on_connection_accepted(sender, connection_id, requester_id, recipient_id, **kwargs) -> None:
    _safely("connection_accepted", lambda: events.record([
        Entry(requester_id, "connection.accepted", {"connection_id": str(connection_id),
                                                    "user_id": str(recipient_id)}, recipient_id),
        Entry(recipient_id, "connection.accepted", {"connection_id": str(connection_id),
                                                    "user_id": str(requester_id)}, requester_id),
    ]))


def on_connection_removed(sender, user_a_id, user_b_id, **kwargs) -> None:
    """Sent inside the transaction that deletes the connection: the chat goes, so do its copies."""
    def run():
        events.redact_between(user_a_id, user_b_id, types=("message.new", "message.read"))
        events.record([Entry(user_a_id, "connection.removed", {"user_id": str(user_b_id)}, user_b_id),
                       Entry(user_b_id, "connection.removed", {"user_id": str(user_a_id)}, user_a_id)])

    _in_savepoint("connection_removed", run)


# ---------------------------------------------------------------------- crossings, stories


def _visible(flags: dict, user_id) -> bool:
    active, shadow_banned = flags.get(as_uuid(user_id), (False, False))
    return active and not shadow_banned


def crossing_entries(crossing_ids: list) -> list[Entry]:
    """``crossing.new`` for both people of each crossing whose other side may be shown."""
    with db_router.use_primary():
        rows = list(Crossing.objects.filter(pk__in=crossing_ids).values_list(
            "id", "user_low_id", "user_high_id", "times"))
    flags = account_selectors.profile_flags({uid for _id, low, high, _t in rows for uid in (low, high)})
    entries = []
    for crossing_id, low, high, times in rows:
        for me, other in ((low, high), (high, low)):
            if _visible(flags, other) and _visible(flags, me):
                entries.append(Entry(me, "crossing.new", {"crossing_id": str(crossing_id), "user_id": str(other),
                                                          "times": times}, other))
    return entries


def on_crossing_recorded(sender, user_ids, crossing_ids, **kwargs) -> None:
    ids = list(crossing_ids)
    for start in range(0, len(ids), CROSSING_CHUNK):
        chunk = ids[start:start + CROSSING_CHUNK]
        _safely("crossing_recorded", lambda chunk=chunk: events.record(crossing_entries(chunk)))


def story_audience(author_id, visibility: str) -> set[uuid.UUID]:
    """Who hears of a new story: the author's connections (close friends among them, if so)."""
    if not _visible(account_selectors.profile_flags([author_id]), author_id):
        return set()
    audience = connection_selectors.accepted_connection_ids(author_id)
    if visibility == "close_friends":
        friends = {as_uuid(f) for f in story_selectors.close_friend_ids(author_id)}
        audience &= friends
    return audience


def on_story_created(sender, story_id, author_id, visibility, **kwargs) -> None:
    def run():
        payload = {"story_id": str(story_id), "author_id": str(author_id)}
        events.record([Entry(uid, "story.new", payload, author_id)
                       for uid in sorted(story_audience(author_id, visibility))])

    _safely("story_created", run)


# ----------------------------------------------------------------------- account events


def on_user_blocked(sender, blocker_id, blocked_id, **kwargs) -> None:
    """Nothing more about the other is delivered, live or replayed (but connection.removed)."""
    _in_savepoint("user_blocked", lambda: events.redact_between(blocker_id, blocked_id))
    transaction.on_commit(lambda: _safely("user_blocked", lambda: (
        bus.control([blocker_id], "block", peer=str(blocked_id)),
        bus.control([blocked_id], "block", peer=str(blocker_id)))))


def on_user_unblocked(sender, blocker_id, blocked_id, **kwargs) -> None:
    transaction.on_commit(lambda: _safely("user_unblocked", lambda: (
        bus.control([blocker_id], "unblock", peer=str(blocked_id)),
        bus.control([blocked_id], "unblock", peer=str(blocker_id)))))


def _close_if_inactive(user_id) -> None:
    with db_router.use_primary():  # the row itself, not a profile cache that may not be dropped yet
        active = User.objects.filter(pk=user_id, is_active=True).exists()
    if not active:
        bus.control([user_id], "close", code=CLOSE_ACCOUNT, reason="Account deactivated.")


def on_profile_changed(sender, user_id, **kwargs) -> None:
    """Deactivation (among other changes): the user's sockets close at once."""
    transaction.on_commit(lambda: _safely("profile_changed", lambda: _close_if_inactive(user_id)))


def on_user_erasing(sender, user_id, **kwargs) -> None:
    _in_savepoint("user_erasing", lambda: events.erase_user(user_id))
    transaction.on_commit(lambda: _safely("user_erasing", lambda: bus.control(
        [user_id], "close", code=CLOSE_ACCOUNT, reason="Account erased.")))


def on_session_revoked(sender, user_id, session_id=None, **kwargs) -> None:
    """One session (or, with ``session_id=None``, all of them) ended: its sockets close."""
    transaction.on_commit(lambda: _safely("session_revoked", lambda: bus.control(
        [user_id], "close", code=CLOSE_AUTH, reason="Session revoked.",
        session=str(session_id) if session_id else None)))
