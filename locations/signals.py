"""Receivers: a user's pings go when the account is erased (pings have no FK to cascade)."""

from __future__ import annotations

from accounts import signals as account_signals


def _erase_pings(sender, user_id, **kwargs):
    from locations import services

    services.delete_user_pings(user_id)


account_signals.user_erasing.connect(_erase_pings, dispatch_uid="locations.erase_pings")
