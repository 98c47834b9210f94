"""Other kinds of reports on ``POST reports/``, registered by apps below accounts.

The endpoint belongs to accounts (reports about users); the stories app adds reports
about stories without accounts importing it, in its AppConfig.ready()::

    from accounts.report_targets import register_report_target

    register_report_target("story_id", report_story)

``handler(reporter_id, target_id, reason, details) -> dict`` validates the target (raising
``Http404`` when it is absent or not visible to the reporter), records the report and
returns the response body.  Exactly one target field is accepted per request.
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
