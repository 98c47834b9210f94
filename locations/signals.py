"""Receivers: a user's pings go when the account is erased."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def _erase_pings(sender, user_id=None, user=None, **kwargs):
    from locations import services

    target = user_id if user_id is not None else getattr(user, "pk", None)
    if target is not None:
        services.delete_user_pings(target)


try:  # the accounts app publishes ``user_erasing`` once account erasure exists
    from accounts.signals import user_erasing
except ImportError:  # pragma: no cover - depends on the accounts engineer's progress
    user_erasing = None
else:
    user_erasing.connect(_erase_pings, dispatch_uid="locations.erase_pings")
