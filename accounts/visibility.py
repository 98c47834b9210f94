"""Who may see whose profile: ``can_view_profile`` and the registry of rules that widen it.

Blocks, deactivation and shadow bans are checked first and always win; higher apps
(crossings, connections) register rules in their AppConfig.ready().
Design: docs/subsystems/extension-points.md.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator

from accounts import selectors
from core.cache import keys as cachekeys
from core.ids import as_uuid

logger = logging.getLogger(__name__)

VisibilityRule = Callable[[object, object], bool]
RuleEntries = Callable[[uuid.UUID, uuid.UUID], list[tuple[str, str, str]]]
_rules: list[VisibilityRule] = []
_rule_entries: dict[VisibilityRule, RuleEntries] = {}


def register_profile_visibility(fn: VisibilityRule, entries: RuleEntries | None = None) -> VisibilityRule:
    """Add ``fn(viewer_id, target_id) -> bool``; registering the same function twice is a no-op.

    ``entries(viewer_id, target_id)``: the ``core.cache.keys`` entries the rule reads, so that
    ``profile_reads`` reads them in the same round trip as the checks' own.
    """
    if fn not in _rules:
        _rules.append(fn)
    if entries is not None:
        _rule_entries[fn] = entries
    return fn


def unregister_profile_visibility(fn: VisibilityRule) -> None:
    """Remove a rule (for tests)."""
    if fn in _rules:
        _rules.remove(fn)
    _rule_entries.pop(fn, None)


@contextlib.contextmanager
def profile_reads(viewer, target_id) -> Iterator[None]:
    """Around ``can_view_profile(viewer, target_id)`` and the target's profile read: their cached
    reads (the target's profile, the viewer's hidden set, what the rules declared) in one round
    trip (``core.cache.keys.prefetch``) instead of one each."""
    target = as_uuid(target_id)
    viewer_id = as_uuid(getattr(viewer, "pk", None)) if viewer is not None else None
    if target is None or viewer_id is None:
        yield
        return
    entries = [selectors.profile_key(target), selectors.hidden_key(viewer_id)]
    for rule in list(_rules):
        declared = _rule_entries.get(rule)
        if declared is not None:
            entries.extend(declared(viewer_id, target))
    with cachekeys.prefetch(entries):
        yield


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
