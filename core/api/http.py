"""Conditional responses for cacheable reads (ETag, Last-Modified, Cache-Control, Vary, 304)
and the JSON 404 of ``/api/``.

Responses are per user, so ``private``; lists are ``no-cache`` (revalidated every time, a
cheap 304).  Design: docs/subsystems/caching.md.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.http import HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import http_date, parse_http_date_safe
from django.views import defaults

from core.api.rest import dumps

VARY = ("Authorization", "Accept-Encoding")


def etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(header: str, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def not_modified(request, etag: str, last_modified: datetime | str | None) -> bool:
    """True when the client's copy (If-None-Match, else If-Modified-Since) is current.

    ``last_modified``: a datetime, or the HTTP date of a ``Last-Modified`` header.
    """
    inm = request.META.get("HTTP_IF_NONE_MATCH")
    if inm is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
        return _matches(inm, etag)
    ims = request.META.get("HTTP_IF_MODIFIED_SINCE")
    if ims and last_modified is not None:
        since = parse_http_date_safe(ims)
        if isinstance(last_modified, str):
            modified = parse_http_date_safe(last_modified)
        else:
            modified = int(last_modified.timestamp())
        return since is not None and modified is not None and modified <= since
    return False


def conditional_json(request, data, *, max_age: int = 0, last_modified: datetime | None = None,
                     status: int = 200) -> HttpResponse:
    """A private JSON response with validators; 304 when the client's copy is current."""
    body = dumps(data)
    etag = etag_for(body)
    if status == 200 and not_modified(request, etag, last_modified):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, status=status, content_type="application/json")
    response["ETag"] = etag
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified.timestamp())
    if max_age:
        patch_cache_control(response, private=True, max_age=max_age)
    else:
        patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, VARY)
    return response


def not_found(request, exception=None) -> HttpResponse:
    """A URL no route matches (an id that is not a UUID, say): JSON under ``/api/``, as the
    contract promises, and Django's own page elsewhere (the admin)."""
    if request.path.startswith("/api/"):
        return HttpResponse(dumps({"detail": "Not found.", "code": "not_found"}), status=404,
                            content_type="application/json")
    return defaults.page_not_found(request, exception)
