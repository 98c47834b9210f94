"""How stories react to other apps' events (wired in ``StoriesConfig.ready``)."""

from __future__ import annotations

from stories import services


def report_story(reporter_id, target_id, reason, details="") -> dict:
    """``POST reports/ {story_id, reason}`` (accounts' endpoint, extended through report_targets)."""
    return services.report_story(reporter_id, target_id, reason, details)


def sweep(now, dry_run, progress) -> int:
    """The stories step of ``manage.py sweep_expired`` and of the beat sweep."""
    return services.sweep_expired(now=now, dry_run=dry_run, progress=progress)


def on_connection_removed(sender, user_a_id, user_b_id, **kwargs) -> None:
    services.drop_close_friends_between(user_a_id, user_b_id)


def on_user_blocked(sender, blocker_id, blocked_id, **kwargs) -> None:
    # Blocked users' stories are filtered at read time; their caches are bumped for good measure.
    services.drop_close_friends_between(blocker_id, blocked_id)


def on_user_erasing(sender, user_id, **kwargs) -> None:
    services.erase_author(user_id)
