"""Signals that let higher apps react to account events without accounts importing them.

``user_blocked``, ``user_unblocked``, ``profile_changed``, ``user_erasing`` and ``session_revoked``, sent by
``accounts.services`` inside the transaction, with ids as keyword arguments.
Arguments and rules: docs/subsystems/extension-points.md.
"""

from __future__ import annotations

from django.dispatch import Signal

user_blocked = Signal()
user_unblocked = Signal()
profile_changed = Signal()
user_erasing = Signal()
session_revoked = Signal()
