"""Events other apps (WebSockets, notifications) may listen to.

``crossing_recorded(user_ids, crossing_ids)`` is sent *after commit* by the detector, once
per batch, with the users whose crossings were created or changed and those crossings' ids
(both as lists of UUID strings: a batch can carry hundreds of thousands of them).
"""

from __future__ import annotations

from django.dispatch import Signal

crossing_recorded = Signal()
