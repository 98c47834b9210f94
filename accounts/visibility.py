"""Who may see whose profile: ``can_view_profile`` and the registry of rules that widen it.

Blocks, deactivation and shadow bans are checked first and always win; higher apps
(crossings, connections) register rules in their AppConfig.ready().
Design: docs/subsystems/extension-points.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from accounts import selectors
from core.ids import as_uuid

logger = logging.getLogger(__name__)

VisibilityRule = Callable[[object, object], bool]
_rules: list[VisibilityRule] = []


def register_profile_visibility(fn: VisibilityRule) -> VisibilityRule:
    """Add ``fn(viewer_id, target_id) -> bool``; registering the same function twice is a no-op."""
    if fn not in _rules:
        _rules.append(fn)
    return fn


def unregister_profile_visibility(fn: VisibilityRule) -> None:
    """Remove a rule (for tests)."""
    if fn in _rules:
        _rules.remove(fn)


def can_view_profile(viewer, target_id) -> bool:
    """May ``viewer`` (a user, a TokenUser, or None) see the profile of ``target_id``?"""
    target = as_uuid(target_id)
    viewer_id = as_uuid(getattr(viewer, "pk", None)) if viewer is not None else None
    if target is None or viewer_id is None:
        return False
    is_active, is_shadow_banned = selectors.profile_flags([target]).get(target, (False, False))
    if not is_active:
        return False
    if viewer_id == target:
        return True
    if selectors.is_blocked_between(viewer_id, target):
        return False
    if getattr(viewer, "is_staff", False):
        return True
    if is_shadow_banned:
        return False
    return any(rule(viewer_id, target) for rule in list(_rules))
