"""Bearer-token authentication for DRF, with no database or cache read to authenticate.

``request.user`` is a lazy ``TokenUser`` (id and staff flag from the token; the row loads on
first use of anything else); authentication also marks the user active for ``last_active_at``.
Design: docs/subsystems/extension-points.md (tokens and sessions).
"""

from __future__ import annotations

from django.utils.functional import LazyObject, empty
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.models import User
from accounts.services import mark_active
from accounts.tokens import InvalidToken, decode_access_token
from core.db import router as db_router


class TokenUser(LazyObject):
    """A user known by its token; the row is loaded on first use of another attribute."""

    def __init__(self, claims):
        super().__init__()
        self.__dict__["_claims"] = claims

    def _setup(self):
        user = User.objects.filter(pk=self._claims.user_id).first()
        if user is None:  # perhaps a replica that has not replayed the sign-up yet
            with db_router.use_primary():
                user = User.objects.filter(pk=self._claims.user_id).first()
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
        return self._claims.is_staff if self._wrapped is empty else self._wrapped.is_staff

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
        db_router.set_user(claims.user_id)

        mark_active(claims.user_id)  # hot counter in Redis, at most once a minute per user
        return TokenUser(claims), claims

    def authenticate_header(self, request):
        return self.keyword


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
