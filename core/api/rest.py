"""REST framework plumbing shared by every app: fast JSON, pagination, errors, strict input."""

from __future__ import annotations

import logging
from decimal import Decimal

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.functional import Promise
from rest_framework import exceptions, serializers, status
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


class NewestFirstCursorPagination(CursorPagination):
    """Cursor pagination, newest first (docs/api.md).  Views set ``ordering`` when not ``-created_at``."""

    ordering: str | tuple[str, ...] = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        """``page_size`` in ASCII digits, 1 to ``max_page_size`` (a 400 otherwise, never ignored)."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            return parse_integer(raw, low=1, high=self.max_page_size)
        except NumberInvalid as exc:
            raise exceptions.ValidationError({self.page_size_query_param: [str(exc)]}) from None

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError) as exc:  # a cursor that decodes but does not fit
            raise exceptions.NotFound("Invalid cursor.") from exc


def exception_handler(exc, context):
    """DRF's handler, plus Django's own request errors mapped to clear 4xx JSON responses."""
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
    # Imported here: rest_framework.views reads these settings, which name this module.

    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    return response


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
