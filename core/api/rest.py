"""REST framework plumbing shared by every app: fast JSON, pagination, errors, strict input.

Every 4xx answer has one body shape, ``{"detail": str, "code": str, "fields"?: {name: [str]}}``
(docs/api.md, "Errors"); the OpenAPI schema documents it as ``Error`` (core/api/schema.py).
"""

from __future__ import annotations

import logging
from decimal import Decimal

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.functional import Promise
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from core.api.numbers import NumberInvalid, parse_integer

logger = logging.getLogger(__name__)

_ORJSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(obj):
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, Promise):  # lazy translation strings
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy values
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(data) -> bytes:
    return orjson.dumps(data, default=_default, option=_ORJSON_OPTIONS)


class OrjsonRenderer(BaseRenderer):
    """JSON rendering with orjson."""

    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return dumps(data)


_PLAIN_ACCEPT = frozenset({"*/*", "application/json"})  # an empty header is DRF's 406


def accepts_plain_json(meta) -> bool:
    """No ``Accept`` header, or exactly ``*/*`` or ``application/json``: a request whose answer
    is JSON without DRF's negotiation (JsonFirstNegotiation, the lean paths outside DRF)."""
    return meta.get("HTTP_ACCEPT", "*/*").strip() in _PLAIN_ACCEPT


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, answered at once for what API clients send.

    No ``Accept`` header, ``*/*`` or ``application/json``, no format suffix or ``?format=``,
    and a first renderer that renders ``application/json``: DRF's own negotiation picks that
    renderer with the media type ``application/json`` after parsing the header and ranking
    every renderer against it (about a tenth of a bare DRF view's CPU).  Anything else (other
    types, quality values, several types) goes through DRF's unchanged, 406 included.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        override = self.settings.URL_FORMAT_OVERRIDE
        if (format_suffix is None and renderers and renderers[0].media_type == "application/json"
                and accepts_plain_json(request.META)
                and (not override or override not in request.META.get("QUERY_STRING", ""))):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)


class OrjsonParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        # DRF hands us the HttpRequest itself as the stream, and HttpRequest.read() does not
        # apply DATA_UPLOAD_MAX_MEMORY_SIZE (only .body does): read one byte past the limit.

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            raw = (stream.read(limit + 1) if limit is not None else stream.read()) if stream is not None else b""
        except RequestDataTooBig as exc:
            raise PayloadTooLarge() from exc
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge()
        if not raw:
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(f"Malformed JSON: {exc}") from exc


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict with the current state."
    default_code = "conflict"


MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
PAGE_SIZE_HELP = f"Results per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); anything else is a 400."


def parse_page_size(request, default: int = DEFAULT_PAGE_SIZE) -> int:
    """The ``page_size`` query parameter: absent means ``default``; 1 to 100, else a 400."""
    raw = request.query_params.get("page_size")
    if raw is None:
        return default
    try:
        return parse_integer(raw, low=1, high=MAX_PAGE_SIZE)  # ASCII digits only (not "1_0", not other scripts)
    except NumberInvalid:
        raise exceptions.ValidationError({"page_size": [f"Must be an integer between 1 and {MAX_PAGE_SIZE}."]})


class NewestFirstCursorPagination(CursorPagination):
    """Cursor pagination, newest first (docs/api.md).  Views set ``ordering`` when not ``-created_at``."""

    ordering: str | tuple[str, ...] = "-created_at"
    page_size_query_param = "page_size"
    page_size_query_description = PAGE_SIZE_HELP
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        return parse_page_size(request, self.page_size or DEFAULT_PAGE_SIZE)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError) as exc:  # a cursor that decodes but does not fit
            raise exceptions.NotFound("Invalid cursor.") from exc

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = page_size_schema()
        return parameters


def page_size_schema() -> dict:
    """The OpenAPI schema of ``page_size`` (every list documents it alike)."""
    return {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}


def exception_handler(exc, context):
    """DRF's handler, plus Django's own request errors mapped to clear 4xx JSON responses, with
    every body in the one error shape (``error_body``)."""
    # Imported here: rest_framework.views reads DEFAULT_RENDERER_CLASSES when it is imported,
    # which names OrjsonRenderer in this module (a real cycle).
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ValidationError({"detail": "Too many fields."})
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, Http404):  # as DRF's handler does, but here so that error_body sees them
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException):
        response.data = error_body(exc)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    return response


def error_body(exc: exceptions.APIException) -> dict:
    """``{"detail": str, "code": str}``, plus ``fields`` ({name: [messages]}) for invalid input.

    Nested field errors are flattened into dotted names (``pings[0].lat``); ``detail`` and
    ``non_field_errors`` go into the message, which also names the first problem of each field.
    """
    raw = exc.detail
    if isinstance(raw, (dict, list)):
        fields = _flatten(raw)
        messages = fields.pop("detail", []) + fields.pop("non_field_errors", [])
        messages += [f"{name}: {errors[0]}" for name, errors in fields.items() if errors]
        body: dict = {"detail": " ".join(messages) or str(exc.default_detail), "code": _code(raw, exc)}
        if fields:
            body["fields"] = fields
        return body
    return {"detail": str(raw), "code": _code(raw, exc)}


def _code(raw, exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    code = getattr(raw, "code", None)
    return str(code or exc.default_code)


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            # A nested object's own errors are named by its path (``pings[1]``).
            path = prefix if prefix and key in ("detail", "non_field_errors") else (
                f"{prefix}.{key}" if prefix else str(key))
            for name, errors in _flatten(value, path).items():
                out.setdefault(name, []).extend(errors)
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "detail": [str(item) for item in detail]} if detail else {}
        out = {}
        for index, item in enumerate(detail):
            for name, errors in _flatten(item, f"{prefix}[{index}]").items():
                out.setdefault(name, []).extend(errors)
        return out
    return {prefix or "detail": [str(detail)]}


class StrictFieldsMixin:
    """A serializer that refuses fields it does not know, so that typos do not pass silently."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in sorted(unknown)}
                )
        return super().to_internal_value(data)
