"""The expiry sweep's registry: each app registers one step for its own data.

``manage.py sweep_expired`` and the beat task run every registered sweeper in order, pings first.
Design and example: docs/subsystems/extension-points.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from locations import services

logger = logging.getLogger(__name__)
Sweeper = Callable[[datetime, bool, Callable[[str], None]], int]
_SWEEPERS: dict[str, Sweeper] = {}


def register_sweeper(name: str):
    """Decorator: register ``func(now, dry_run, progress) -> int`` under ``name`` (idempotent)."""

    def decorator(func: Sweeper) -> Sweeper:
        _SWEEPERS[name] = func
        return func

    return decorator


def sweepers() -> dict[str, Sweeper]:
    return dict(_SWEEPERS)


def run_sweepers(now: datetime | None = None, dry_run: bool = False, progress=None,
                 only: list[str] | None = None) -> dict[str, int]:
    """Run every registered sweeper (or those named in ``only``); return rows removed by each."""
    now = now or timezone.now()
    progress = progress or (lambda message: None)
    results, failed = {}, []
    for name, func in _SWEEPERS.items():
        if only and name not in only:
            continue
        try:
            results[name] = func(now, dry_run, progress)
        except Exception as exc:  # one app's failure must not keep the others' data alive
            logger.exception("sweeper %s failed", name)
            failed.append((name, exc))
    if failed:
        raise SweepFailed(failed, results)
    return results


class SweepFailed(Exception):
    """Some sweepers failed (the others ran); the task retries the whole sweep (idempotent)."""

    def __init__(self, failed, results):
        super().__init__(", ".join(f"{name}: {exc}" for name, exc in failed))
        self.failed, self.results = failed, results


@register_sweeper("pings")
def _sweep_pings(now, dry_run, progress) -> int:
    result = services.sweep_expired(now=now, dry_run=dry_run, progress=progress)
    return result.deleted_rows
