"""How connections react to account events (wired in ``ConnectionsConfig.ready``)."""

from __future__ import annotations

from connections import selectors, services


def connected_or_requested(viewer_id, target_id) -> bool:
    """Profile visibility: connections, and both sides of a pending request, see each other."""
    return selectors.is_related(viewer_id, target_id)


def on_user_blocked(sender, blocker_id, blocked_id, **kwargs) -> None:
    """A block removes the connection (or request) at once; chat goes with it."""
    services.remove_pair(blocker_id, blocked_id)


def on_user_erasing(sender, user_id, **kwargs) -> None:
    """Blank the erased user's messages before their rows go (connections cascade with the user)."""
    services.erase_messages_of(user_id)
