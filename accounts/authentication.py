"""Bearer-token authentication for DRF: no database read, one Redis round trip shared with the rate limit.

``request.user`` is a lazy ``TokenUser`` (id from the token; the row loads on first use of
anything else, and for the staff flag of a staff token); the token's revocation markers are
checked with the request's rate-limit count (``accounts.revocation``).  Design:
docs/subsystems/extension-points.md (tokens and sessions), docs/security.md (revocation).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils.functional import LazyObject, empty
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts import revocation, selectors
from accounts.models import User
from accounts.services import mark_active
from accounts.tokens import InvalidToken, decode_access_token
from core.api.throttling import UserRateThrottle, count_lua, queue_hit
from core.cache import breaker as redis_breaker
from core.cache import keys as cachekeys
from core.cache.client import redis_client
from core.db import router as db_router
from core.db.lookup import RowById

logger = logging.getLogger(__name__)

SESSION_ENDED = "This session has ended; log in again."


# The user row behind a token, read on most authenticated requests: its SELECT compiled once.
_user_by_id = RowById(User)


class TokenUser(LazyObject):
    """A user known by its token; the row is loaded on first use of another attribute."""

    def __init__(self, claims):
        super().__init__()
        self.__dict__["_claims"] = claims

    def _setup(self):
        user = _user_by_id.get(self._claims.user_id)
        if user is None:  # perhaps a replica that has not replayed the sign-up yet
            with db_router.use_primary():
                user = _user_by_id.get(self._claims.user_id)
        if user is None:
            raise exceptions.AuthenticationFailed("User no longer exists.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User is deactivated.")
        self._wrapped = user

    @property
    def pk(self):
        return self._claims.user_id

    id = pk

    @property
    def session_id(self):
        return self._claims.session_id

    is_authenticated = True
    is_anonymous = False

    def __bool__(self):
        # LazyObject's __bool__ would load the row: DRF's IsAuthenticated does
        # ``bool(request.user and ...)`` on every request.
        return True

    @property
    def is_staff(self):
        # A token only ever narrows staff rights: a staff claim is confirmed by the row, so
        # that a demoted staff member loses staff access with their next request.
        if not self._claims.is_staff:
            return False
        if self._wrapped is empty:
            self._setup()
        return self._wrapped.is_staff

    def __eq__(self, other):
        return getattr(other, "pk", None) == self.pk

    def __hash__(self):
        return hash(self.pk)


def load_user(user):
    """The ``User`` row behind ``request.user`` (loading a TokenUser's row once)."""
    if isinstance(user, TokenUser):
        if user._wrapped is empty:
            user._setup()
        return user._wrapped
    return user


def load_user_for_cached_answer(user):
    """The row behind ``user`` for an answer cached under their profile version (REST and
    GraphQL ``me``): the version read first, then the row from the primary.  A write committed
    in between bumps the version after its commit, so a stale row is never kept under a current
    version (a lagging replica could give an old row under a new version)."""
    cachekeys.read_entries([selectors.profile_key(user.pk)])
    with db_router.use_primary():
        return load_user(user)


class AccessTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        try:
            parts = header.decode("ascii").split()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Authorization header must be ASCII.") from exc
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <access token>'.")
        try:
            claims = decode_access_token(parts[1])
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from exc
        check_not_revoked(request, claims)
        db_router.set_user(claims.user_id)

        mark_active(claims.user_id)  # hot counter in Redis, at most once a minute per user
        return TokenUser(claims), claims

    def authenticate_header(self, request):
        return self.keyword


# KEYS[1], KEYS[2]: the token's revocation markers (one slot); KEYS[3] (optional): the user's
# rate-limit counter, ARGV[1] its TTL.  Returns -1 when revoked, else the count (0 uncounted).
_CHECK_SCRIPT = """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return -1 end
local n = 0
if KEYS[3] then
""" + count_lua("KEYS[3]", "ARGV[1]") + """end
return n
"""
_check_script = None


def _rate_counter(request, user_id, view=None) -> tuple[str, int, tuple[str, str]] | None:
    """(counter key, TTL, scope key) of the view's per-user rate limit, when it has one that is
    not counted yet for this request; counting it here saves the throttle its own round trip."""
    if not settings.RATE_LIMIT_ENABLED:
        return None
    if view is None:
        view = (getattr(request, "parser_context", None) or {}).get("view")
    if view is None or UserRateThrottle not in getattr(view, "throttle_classes", ()):
        return None
    scope_key = (UserRateThrottle.scope, str(user_id))
    counted = getattr(request, "rate_counted", None)
    if counted and scope_key in counted:
        return None
    throttle = UserRateThrottle()
    if throttle.rate is None:
        return None
    key, ttl = throttle.counter(str(user_id))
    return key, ttl, scope_key


def check_not_revoked(request, claims, *, view=None) -> None:
    """Refuse (401) a token whose session or user was revoked; see ``accounts.revocation``.

    Once per request: the response cache's lookup may check the markers for us (it is handed
    them in ``request.deferred_guards`` and reports ``request.guards_passed``); otherwise one
    round trip checks them and counts the user's rate limit; with Redis away, the database.
    ``view``: whose rate limit to count, for a caller outside DRF (a DRF request names its view).
    """
    django_request = getattr(request, "_request", request)
    markers = revocation.token_markers(claims)
    if set(markers) <= getattr(django_request, "guards_passed", frozenset()):
        return
    deferred = getattr(django_request, "deferred_guards", None)
    if isinstance(deferred, list):  # core.cache.response checks them in its lookup
        deferred.extend(markers)
        return
    rate = _rate_counter(request, claims.user_id, view)
    if redis_breaker.available():
        try:
            result = _check_in_redis(markers, rate)
        except Exception as exc:
            redis_breaker.trip(exc, "revocation check")
            result = None
    else:
        result = None
    if result is None:
        if not revocation.token_live_in_database(claims):
            raise exceptions.AuthenticationFailed(SESSION_ENDED)
    elif result < 0:
        raise exceptions.AuthenticationFailed(SESSION_ENDED)
    elif rate is not None:
        counted = dict(getattr(django_request, "rate_counted", None) or {})
        counted[rate[2]] = result
        django_request.rate_counted = counted  # core.api.throttling uses it, not a second INCR
    django_request.guards_passed = frozenset(markers)


def lean_claims(request, view):
    """The claims of the live bearer token of a request answered outside DRF (a lean path:
    ``LocationsView``'s ping, ``MessageListView``'s chat page), within its user's rate limit for
    ``view``; None when DRF must answer (no or a malformed token, an ended session, over the
    limit, or a count Redis could not make, which DRF's throttle then makes).

    The side effects are the ones DRF does not repeat: the revocation check and the rate count
    are remembered on the request (``guards_passed``, ``rate_counted``).  On success the user's
    reads are routed and the user marked active, as ``AccessTokenAuthentication`` does.
    """
    header = request.META.get("HTTP_AUTHORIZATION")
    if type(header) is not str:
        return None
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != AccessTokenAuthentication.keyword.lower() or not parts[1].isascii():
        return None
    try:
        claims = decode_access_token(parts[1])
        check_not_revoked(request, claims, view=view)
    except (InvalidToken, exceptions.AuthenticationFailed):
        return None
    if settings.RATE_LIMIT_ENABLED:
        throttle = UserRateThrottle()
        if throttle.rate is not None:
            count = (getattr(request, "rate_counted", None) or {}).get((throttle.scope, str(claims.user_id)))
            if count is None or count > throttle.num_requests:
                return None  # not counted (Redis away: DRF's throttle counts) or over the limit (429)
    db_router.set_user(claims.user_id)
    mark_active(claims.user_id)
    return claims


def _check_in_redis(markers, rate) -> int:
    global _check_script
    client = redis_client()
    unsent = revocation.take_unsent()
    try:
        if unsent or cachekeys.is_cluster(client):
            pipe = client.pipeline(transaction=False)
            revocation.queue_unsent(pipe, unsent)
            pipe.exists(*markers)
            if rate is not None:
                queue_hit(pipe, rate[0], rate[1])
            results = pipe.execute()
            if results[len(unsent)] > 0:
                return -1
            return int(results[len(unsent) + 1]) if rate is not None else 0
    except Exception:
        revocation.requeue_unsent(unsent)
        raise
    if _check_script is None:
        _check_script = client.register_script(_CHECK_SCRIPT)
    keys = [*markers, rate[0]] if rate is not None else list(markers)
    return int(_check_script(keys=keys, args=[rate[1] if rate is not None else 0], client=client))


class AnonymousEndpointAuthentication(authentication.BaseAuthentication):
    """For sign-up/in endpoints: ignores any Authorization header (a stale token must not
    block logging in again) but still lets failures there answer 401 with a challenge."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return AccessTokenAuthentication.keyword


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.AccessTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
