"""Receivers of account events, connected in ``LocationsConfig.ready()``: a user's pings go
when the account is erased (pings have no foreign key to cascade)."""

from __future__ import annotations

from locations import services


def on_user_erasing(sender, user_id, **kwargs):
    services.delete_user_pings(user_id)
