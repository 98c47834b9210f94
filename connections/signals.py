"""Signals for apps below ``connections`` (stories keeps close friends among connections).

* ``connection_removed(user_a_id, user_b_id)``: an accepted connection ended (removed by one
  side, a block, or an erasure).  Sent inside the transaction that deletes it.

Events for the WebSocket layer (docs/api.md ``/ws/``), sent *after commit*, so that a receiver
may publish at once:

* ``connection_requested(connection_id, requester_id, recipient_id)``
* ``connection_accepted(connection_id, requester_id, recipient_id)``
* ``message_sent(message_id, connection_id, sender_id, recipient_id)``
"""

from __future__ import annotations

from django.dispatch import Signal

connection_removed = Signal()
connection_requested = Signal()
connection_accepted = Signal()
message_sent = Signal()
