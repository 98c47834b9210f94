"""Signals that let apps below ``accounts`` react to account events without accounts importing them.

Connect receivers in your AppConfig.ready().  Every signal is sent by ``accounts.services``
*inside* the transaction that makes the change, so a receiver's own writes commit or roll
back with it; a receiver that touches a cache or publishes an event should defer that with
``transaction.on_commit``.  Keyword arguments are ids (``uuid.UUID``), never model instances,
so receivers do not depend on accounts' models.

* ``user_blocked(blocker_id, blocked_id)``: ``blocker`` blocked ``blocked``; hide each from
  the other everywhere (crossings, connections, chat, stories).
* ``user_unblocked(blocker_id, blocked_id)``: the block was lifted.
* ``profile_changed(user_id)``: anything others may see or depend on changed: profile edits,
  ghost mode, deactivation, shadow ban, verification.  Drop cached copies of the profile.
* ``user_erasing(user_id)``: the account is about to be erased (the user row is deleted
  right after, in the same transaction).  Delete data that has no FK to the user (pings in
  partitions, cached feeds, media files).
"""

from __future__ import annotations

from django.dispatch import Signal

user_blocked = Signal()
user_unblocked = Signal()
profile_changed = Signal()
user_erasing = Signal()
