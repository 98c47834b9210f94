"""Registry of other kinds of report targets on ``POST reports/`` (beside ``user_id``).

Higher apps register ``handler(reporter_id, target_id, reason, details) -> dict`` under a
request field in their AppConfig.ready() (stories: ``story_id``).
Design: docs/subsystems/extension-points.md.
"""

from __future__ import annotations

from collections.abc import Callable

ReportHandler = Callable[..., dict]
_handlers: dict[str, ReportHandler] = {}


def register_report_target(field: str, handler: ReportHandler) -> None:
    if field == "user_id":
        raise ValueError("user_id is handled by accounts itself")
    _handlers[field] = handler


def unregister_report_target(field: str) -> None:
    _handlers.pop(field, None)


def handlers() -> dict[str, ReportHandler]:
    return dict(_handlers)
