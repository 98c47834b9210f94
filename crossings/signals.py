"""Events other apps (WebSockets, notifications) may listen to.

``crossing_recorded(user_ids, crossing_ids)`` is sent *after commit* by the detector, once
per batch, with the users whose crossings were created or changed and those crossings' ids.
"""

from __future__ import annotations

from django.dispatch import Signal

crossing_recorded = Signal()
