"""Signals of the stories app for higher layers (the WebSocket layer in ``realtime``).

``story_created(story_id, author_id, visibility)`` is sent *after commit* once a story is
posted (ids as ``uuid.UUID``, visibility as its string value).
Arguments: docs/subsystems/extension-points.md.
"""

from __future__ import annotations

from django.dispatch import Signal

story_created = Signal()
