"""Signals for apps below ``connections`` (stories keeps close friends among connections).

* ``connection_removed(user_a_id, user_b_id)``: an accepted connection ended (removed by one
  side, a block, or an erasure).  Sent inside the transaction that deletes it.
"""

from __future__ import annotations

from django.dispatch import Signal

connection_removed = Signal()
