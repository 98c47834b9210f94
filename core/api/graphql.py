"""GraphQL helpers shared by the apps' ``api/graphql.py`` modules: who is asking, page sizes,
ids, and the stable ``extensions.code`` of an error (the same exceptions as REST map to it).

Apps raise what their services raise (Http404, PermissionDenied, ValidationError...);
``error_code`` names them for the client.  Design: docs/subsystems/graphql.md.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf

from core.api.rest import Conflict

MAX_PAGE_SIZE = 100  # as the REST lists' page_size


class CodedError(Exception):
    """An error with its ``extensions.code`` (and optional details) for the client."""

    def __init__(self, message: str, code: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.details = details


def _drf_details(detail) -> dict | list | str:
    if isinstance(detail, dict):
        return {key: _drf_details(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_drf_details(value) for value in detail]
    return str(detail)


def describe(exc: BaseException) -> tuple[str, str, dict | list | str | None] | None:
    """``(code, message, details)`` for an expected error, None for an unexpected one (masked)."""
    if isinstance(exc, CodedError):
        return exc.code, str(exc), exc.details
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return "UNAUTHENTICATED", str(exc.detail), None
    if isinstance(exc, (Http404, drf.NotFound)):
        return "NOT_FOUND", "Not found.", None
    if isinstance(exc, (DjangoPermissionDenied, drf.PermissionDenied)):
        message = str(exc) if isinstance(exc, DjangoPermissionDenied) else str(exc.detail)
        return "FORBIDDEN", message or "You may not do this.", None
    if isinstance(exc, drf.ValidationError):
        return "BAD_USER_INPUT", "Invalid input.", _drf_details(exc.detail)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return "BAD_USER_INPUT", "Invalid input.", details
    if isinstance(exc, Conflict):
        return "CONFLICT", str(exc.detail), None
    if isinstance(exc, drf.Throttled):
        return "RATE_LIMITED", "Too many requests.", None
    if isinstance(exc, drf.APIException) and 400 <= exc.status_code < 500:
        return "BAD_USER_INPUT", str(exc.detail), None
    return None


def viewer_id(info) -> uuid.UUID:
    """The signed-in user's id (no query: the token's claim); UNAUTHENTICATED without one."""
    user = getattr(info.context.request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        raise CodedError("Authentication required: send 'Authorization: Bearer <access token>'.",
                         "UNAUTHENTICATED")
    return user.pk


def viewer(info):
    """The signed-in ``request.user`` (a lazy TokenUser); UNAUTHENTICATED without one."""
    viewer_id(info)
    return info.context.request.user


def page_size(first: int | None, default: int = 20) -> int:
    if first is None:
        return default
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise CodedError(f"first must be between 1 and {MAX_PAGE_SIZE}.", "BAD_USER_INPUT",
                         {"first": [f"Must be between 1 and {MAX_PAGE_SIZE}."]})
    return first


def parse_id(value) -> uuid.UUID:
    """An id argument; one that is not a UUID names nothing (NOT_FOUND, as a REST path does)."""
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise CodedError("Not found.", "NOT_FOUND") from None


def parse_cursor(raw: str | None, directions: tuple[str, ...] = ("n", "p")) -> tuple[str, uuid.UUID] | None:
    """``<direction>.<id>`` cursors (the crossings REST format); a malformed one is NOT_FOUND."""
    if raw is None:
        return None
    direction, _, value = raw.partition(".")
    try:
        if direction not in directions:
            raise ValueError(direction)
        return direction, uuid.UUID(value)
    except ValueError:
        raise CodedError("Invalid cursor.", "NOT_FOUND") from None
