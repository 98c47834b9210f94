"""Registry of other kinds of report targets on ``POST reports/`` (beside ``user_id``).

Higher apps register ``handler(reporter_id, target_id, reason, details) -> dict`` under a
request field in their AppConfig.ready() (stories: ``story_id``), with the serializers that
document its request and response in the OpenAPI schema.
Design: docs/subsystems/extension-points.md.
"""

from __future__ import annotations

from collections.abc import Callable

ReportHandler = Callable[..., dict]
_handlers: dict[str, ReportHandler] = {}
_schemas: dict[str, tuple[type, type]] = {}


def register_report_target(field: str, handler: ReportHandler, *, request: type | None = None,
                           response: type | None = None) -> None:
    """``request``/``response``: serializers of the body and answer, for the schema only."""
    if field == "user_id":
        raise ValueError("user_id is handled by accounts itself")
    _handlers[field] = handler
    if request is not None and response is not None:
        _schemas[field] = (request, response)


def unregister_report_target(field: str) -> None:
    _handlers.pop(field, None)
    _schemas.pop(field, None)


def schemas() -> dict[str, tuple[type, type]]:
    """The (request, response) serializers of each registered target that has them."""
    return dict(_schemas)


def handlers() -> dict[str, ReportHandler]:
    return dict(_handlers)
