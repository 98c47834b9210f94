"""Whole responses of the cacheable reads, served in one Redis round trip.

``ResponseCacheMiddleware`` stores a view's response with the ``core.cache.keys`` versions it
was built from and serves it again only while all of them are unchanged; views opt in with
``response_cache = True`` and ``cacheable(request)`` and name the query parameters they read
in ``response_cache_params`` (the others are dropped first).  Design: docs/subsystems/caching.md.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import time
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, QueryDict
from django.middleware.gzip import GZipMiddleware
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.text import compress_string
from prometheus_client import Counter

from core.api.http import not_modified
from core.api.throttling import UserRateThrottle, count_lua, queue_hit
from core.cache import breaker as redis_breaker
from core.cache import keys as cachekeys

RESULTS = Counter("crossings_response_cache", "Cacheable reads by result (hit, miss, stored)", ["result"])
_HIT, _MISS, _STORED = RESULTS.labels("hit"), RESULTS.labels("miss"), RESULTS.labels("stored")

_ACCEPTS_GZIP = re.compile(r"\bgzip\b")  # GZipMiddleware's test of Accept-Encoding
_GZIP_MIN_BYTES = 200  # GZipMiddleware leaves shorter bodies alone

# Headers not replayed: set again by the outer middleware or the server for each response.
_SKIP_HEADERS = frozenset({"content-length", "set-cookie", "x-request-id"})

# KEYS[1]: the entry (a hash: d = "<key>\n<version>\n..." dependencies, b = body, m = meta);
# KEYS[2]: the rate-limit counter or "" for none; KEYS[3..]: guards (keys that must be absent,
# such as revocation markers; ARGV[2] = "1" when there are some); ARGV[1]: the counter's TTL.
# Returns {count or false, body, meta} on a hit, {count or false} otherwise, and
# {count or false, false, false, 1} when a guard is present.
_LOOKUP_SCRIPT = """
local n = false
if KEYS[2] ~= '' then
""" + count_lua("KEYS[2]", "ARGV[1]") + """end
if ARGV[2] == '1' and redis.call('EXISTS', unpack(KEYS, 3)) > 0 then return {n, false, false, 1} end
local e = redis.call('HMGET', KEYS[1], 'd', 'b', 'm')
if not e[1] then return {n} end
for k, v in string.gmatch(e[1], '([^\\n]+)\\n([^\\n]+)\\n') do
  if (redis.call('GET', k) or '0') ~= v then return {n} end
end
return {n, e[2], e[3]}
"""
_script = None


@dataclass
class _Pending:
    """A miss being served: what the middleware needs to store the response afterwards."""

    entry_key: str
    deps: cachekeys.Dependencies
    token: object
    cacheable: bool = False
    until: float | None = None


def cacheable(request, until: float | None = None) -> None:
    """Say that this response was built only from ``core.cache.keys`` reads (store it).

    ``until``: a Unix time after which the response is no longer right whatever happens
    (the first expiry of a story it shows).
    """
    pending = getattr(getattr(request, "_request", request), "_response_cache", None)
    if pending is None:
        return
    pending.cacheable = True
    if until is not None:
        pending.until = until if pending.until is None else min(pending.until, until)


def _authenticate(view_class, request):
    """The signed-in user, by the view's own authentication classes; None if there is none.

    A failure is left to the normal path, which answers it (401) as the view would.
    """
    for authenticator in view_class().get_authenticators():
        try:
            result = authenticator.authenticate(request)
        except Exception:
            return None
        if result is not None:
            return result[0]
    return None


def _accepts_json(request) -> bool:
    accept = request.META.get("HTTP_ACCEPT", "")
    return not accept or "json" in accept or "*/*" in accept


def known_query(request, names) -> str:
    """Keep only the query parameters the view reads (``response_cache_params``), one value
    each, in a fixed order; the request's query becomes exactly that, so the view sees what
    the entry's key says and junk parameters (``?x=1``, ``?x=2``...) map to one entry."""
    kept = QueryDict(mutable=True)
    for name in sorted(names):
        value = request.GET.get(name)
        if value is not None:
            kept[name] = value
    query = kept.urlencode()
    if query != request.META.get("QUERY_STRING", ""):
        kept._mutable = False
        request.GET = kept
        request.META["QUERY_STRING"] = query
    return query


def _entry_key(user, request, query: str) -> str:
    # Staff see more (any profile): the staff flag is part of what the answer depends on.
    url = f"{int(bool(user.is_staff))}{request.scheme}://{request.get_host()}{request.path}?{query}"
    digest = hashlib.blake2b(url.encode(), digest_size=16).hexdigest()
    return cache.make_key(f"rc:{user.pk}:{digest}")


def _rate_limit(view_class, user_id):
    """(counter key, TTL, scope key, limit) of the user's rate limit for this view, or None."""

    if not settings.RATE_LIMIT_ENABLED or UserRateThrottle not in getattr(view_class, "throttle_classes", ()):
        return None
    throttle = UserRateThrottle()
    if throttle.rate is None:
        return None
    key, ttl = throttle.counter(str(user_id))
    return key, ttl, (throttle.scope, str(user_id)), throttle.num_requests


class GuardPresent(Exception):
    """A guard key handed over by authentication exists: the normal path must answer."""


def _lookup(entry_key: str, rate_key: str | None, rate_ttl: int, guards: list[str]):
    """(count, body, meta) from Redis; body None on a miss; GuardPresent if a guard exists."""
    global _script
    client = cachekeys.client()  # bumps the epoch first after an outage: entries from before it die
    if cachekeys.is_cluster(client):
        return _lookup_cluster(client, entry_key, rate_key, rate_ttl, guards)
    if _script is None:
        _script = client.register_script(_LOOKUP_SCRIPT)
    keys = [entry_key, rate_key or "", *guards]
    raw = _script(keys=keys, args=[rate_ttl, "1" if guards else "0"], client=client)
    count = raw[0] if raw else None
    if len(raw) > 3:
        raise GuardPresent()
    if len(raw) < 3:
        return count, None, None
    return count, raw[1], raw[2]


def _lookup_cluster(client, entry_key, rate_key, rate_ttl, guards):
    pipe = client.pipeline(transaction=False)
    if rate_key:
        queue_hit(pipe, rate_key, rate_ttl)
    if guards:  # authentication's guards of one request share a slot (hash tag)
        pipe.exists(*guards)
    pipe.hmget(entry_key, ["d", "b", "m"])
    results = pipe.execute()
    count = results[0] if rate_key else None
    if guards and results[-2] > 0:
        raise GuardPresent()
    deps, body, meta = results[-1]
    if not deps:
        return count, None, None
    parts = deps.decode().split("\n")[:-1]
    keys, versions = parts[0::2], parts[1::2]
    current = client.mget_nonatomic(keys)
    for value, expected in zip(current, versions, strict=True):
        if (value.decode() if value is not None else "0") != expected:
            return count, None, None
    return count, body, meta


def _replay(request, body: bytes, info: dict) -> HttpResponse:
    headers = dict(info["h"])
    etag = headers.get("ETag")
    if etag is not None and not_modified(request, etag, headers.get("Last-Modified")):
        response = HttpResponse(status=304)
        for name in ("ETag", "Cache-Control", "Vary", "Last-Modified"):
            if name in headers:
                response[name] = headers[name]
        return response
    if info.get("gz"):
        if _ACCEPTS_GZIP.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
            # What GZipMiddleware would make of the plain body (it leaves encoded responses alone).
            response = HttpResponse(body, status=200)
            for name, value in headers.items():
                response[name] = value
            if etag is not None and etag.startswith('"'):
                response["ETag"] = "W/" + etag
            response["Content-Encoding"] = "gzip"
            patch_vary_headers(response, ("Accept-Encoding",))
            return response
        body = gzip.decompress(body)
    response = HttpResponse(body, status=200)
    for name, value in headers.items():
        response[name] = value
    return response


def _store(pending: _Pending, response) -> None:
    ttl: float = settings.RESPONSE_CACHE_S
    if pending.until is not None:
        ttl = min(ttl, pending.until - time.time())
    if ttl < 1:
        return
    headers = [(name, value) for name, value in response.items() if name.lower() not in _SKIP_HEADERS]
    body, compressed = response.content, False
    if len(body) >= _GZIP_MIN_BYTES:
        # Compressed once here rather than by GZipMiddleware on every hit (and less memory:
        # `python -m bench.claims.micro gzip` measured 80 % fewer bytes on the API's bodies).
        packed = compress_string(body, max_random_bytes=GZipMiddleware.max_random_bytes)
        if len(packed) < len(body):
            body, compressed = packed, True
    meta = orjson.dumps({"h": headers, "u": pending.until, "gz": compressed})
    deps = "".join(f"{key}\n{version}\n" for key, version in pending.deps.versions.items())
    try:
        pipe = cachekeys.client().pipeline(transaction=False)
        # Every field at once: two workers storing the same entry leave one whole answer.
        pipe.hset(pending.entry_key, mapping={"d": deps, "b": body, "m": meta})
        pipe.expire(pending.entry_key, int(ttl))
        pipe.execute()
        _STORED.inc()
    except Exception as exc:
        redis_breaker.trip(exc, "store response")


class ResponseCacheMiddleware:
    """Serve cacheable reads from stored responses (docs/subsystems/caching.md).

    Sits last among the middleware and looks up in ``process_view`` (it needs the view's
    class), so that everything outside it (security and clickjacking headers, gzip, request
    id, metrics by view and status) applies to stored responses as to fresh ones.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        pending = request.__dict__.pop("_response_cache", None)
        if pending is not None:
            cachekeys.stop_collecting(pending.token)
            if (pending.cacheable and pending.deps.complete and pending.deps.versions
                    and response.status_code == 200 and not response.streaming
                    and response.get("Content-Type", "").startswith("application/json")
                    and not response.cookies):
                _store(pending, response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "view_class", None)
        if request.method != "GET" or not getattr(view_class, "response_cache", False):
            return None
        if not settings.RESPONSE_CACHE_ENABLED or not _accepts_json(request) or not redis_breaker.available():
            return None
        # Authentication may hand us keys that must be absent (revocation markers) rather than
        # read them itself: they are checked in the lookup's round trip.
        request.deferred_guards = []
        try:
            user = _authenticate(view_class, request)
        finally:
            guards = request.__dict__.pop("deferred_guards")
        if user is None:  # the normal path answers (401, or whatever the view does without a user)
            return None
        user_id = user.pk
        entry_key = _entry_key(user, request, known_query(request, getattr(view_class, "response_cache_params", ())))
        rate = _rate_limit(view_class, user_id)
        try:
            count, body, meta = _lookup(entry_key, rate[0] if rate else None, rate[1] if rate else 0, guards)
        except GuardPresent:
            return None  # the normal path authenticates again and refuses
        except Exception as exc:
            redis_breaker.trip(exc, "response cache lookup")
            return None
        request.guards_passed = frozenset(guards)
        if rate is not None and count is not None:
            request.rate_counted = {rate[2]: int(count)}  # core.api.throttling uses it, not a second INCR
            if int(count) > rate[3]:
                return None  # the normal path answers 429
        info = orjson.loads(meta) if body is not None else None
        if info is not None and info.get("u") is not None and info["u"] <= timezone.now().timestamp():
            body = None  # past its content's end (a story expired): Redis's TTL is only approximate
        if body is not None:
            _HIT.inc()
            return _replay(request, body, info)
        _MISS.inc()
        deps, token = cachekeys.collect_dependencies()
        request._response_cache = _Pending(entry_key=entry_key, deps=deps, token=token)
        return None
