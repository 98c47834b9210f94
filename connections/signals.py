"""Signals of the connections app for higher apps and the WebSocket layer.

``connection_removed`` and ``message_stored`` are sent inside the transaction;
``connection_requested``, ``connection_accepted``, ``message_sent`` and ``messages_read`` after commit.
Arguments: docs/subsystems/extension-points.md.
"""

from __future__ import annotations

from django.dispatch import Signal

connection_removed = Signal()
connection_requested = Signal()
connection_accepted = Signal()
message_stored = Signal()
message_sent = Signal()
messages_read = Signal()
