"""Receivers of account events: drop cached crossings reads of the users concerned, after commit."""

from __future__ import annotations

from django.db import transaction

from accounts import signals as account_signals
from crossings import cache as cx_cache


def _bump_after_commit(user_ids) -> None:
    ids = [uid for uid in user_ids if uid is not None]
    transaction.on_commit(lambda: cx_cache.bump_users(ids))


def _block_changed(sender, blocker_id=None, blocked_id=None, **kwargs):
    _bump_after_commit([blocker_id, blocked_id])


def _profile_changed(sender, user_id=None, **kwargs):
    """A profile or flag (deactivation, shadow ban) changed: the user's and their peers' pages."""
    from crossings.selectors import crossed_ids_from_db

    if user_id is None:
        return
    _bump_after_commit([user_id, *crossed_ids_from_db(user_id)])


account_signals.user_blocked.connect(_block_changed, dispatch_uid="crossings.block")
account_signals.user_unblocked.connect(_block_changed, dispatch_uid="crossings.unblock")
account_signals.profile_changed.connect(_profile_changed, dispatch_uid="crossings.profile")
account_signals.user_erasing.connect(_profile_changed, dispatch_uid="crossings.erasing")
