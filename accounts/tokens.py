"""Access tokens (short-lived JWTs checked without a database read) and rotating refresh tokens.

A refresh token is ``<session id>.<generation>.<random>.<mac>``; the database keeps only the
hash of the current one, and replaying an older one revokes the session.
Design: docs/subsystems/extension-points.md (tokens and sessions).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from django.conf import settings


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    is_staff: bool


class InvalidToken(Exception):
    pass


def issue_access_token(user, session_id) -> str:
    now = datetime.now(UTC)
    payload = {
        "sub": str(user.pk),
        "sid": str(session_id),
        "stf": bool(user.is_staff),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + settings.ACCESS_TOKEN_TTL).timestamp()),
    }
    return jwt.encode(payload, settings.JWT_SIGNING_KEY, algorithm=settings.JWT_ALGORITHM)


# Tokens already verified by this process: token -> (claims, exp).  A client sends the same
# access token with every request for its 5 minutes of life, and PyJWT's verification
# (parse, HMAC, claim checks) is the largest cost of authenticating.  An entry is only ever
# an exact token that passed verification under the same key; its expiry is still checked
# on every use.  Bounded: cleared when full (a few MB at most).
_VERIFIED: dict[tuple[str, str, str], tuple[AccessClaims, int]] = {}
_VERIFIED_MAX = 50_000


def decode_access_token(token: str) -> AccessClaims:
    memo_key = (settings.JWT_SIGNING_KEY, settings.JWT_ALGORITHM, token)
    known = _VERIFIED.get(memo_key)
    if known is not None:
        claims, expires = known
        if time.time() < expires:
            return claims
        # Kept (the memo is bounded anyway): a request may decode its token twice (the
        # response cache's lookup, then DRF), and both must give the same answer.
        raise InvalidToken("Access token has expired.")
    claims, expires = _verify_access_token(token)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[memo_key] = (claims, expires)
    return claims


def _verify_access_token(token: str) -> tuple[AccessClaims, int]:
    try:
        payload = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[settings.JWT_ALGORITHM],
            options={"require": ["exp", "sub", "sid", "typ"]},
        )
        if payload["typ"] != "access":
            raise InvalidToken("not an access token")
        claims = AccessClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["sid"]), bool(payload.get("stf")))
        return claims, int(payload["exp"])
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("Access token has expired.") from exc
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken("Access token is invalid.") from exc


def _mac(body: str) -> str:
    key = hashlib.sha256(("refresh:" + settings.JWT_SIGNING_KEY).encode()).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:32]


def make_refresh_token(session_id, generation: int) -> str:
    body = f"{session_id}.{generation}.{secrets.token_urlsafe(24)}"
    return f"{body}.{_mac(body)}"


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RefreshParts:
    session_id: uuid.UUID
    generation: int


def parse_refresh_token(token: str) -> RefreshParts:
    """Check the token's MAC and return its parts; raise InvalidToken when it was not ours."""
    if not isinstance(token, str) or len(token) > 200:
        raise InvalidToken("Refresh token is invalid.")
    parts = token.split(".")
    if len(parts) != 4:
        raise InvalidToken("Refresh token is invalid.")
    body, mac = ".".join(parts[:3]), parts[3]
    if not hmac.compare_digest(_mac(body).encode(), mac.encode("utf-8", "surrogatepass")):
        raise InvalidToken("Refresh token is invalid.")
    try:
        return RefreshParts(uuid.UUID(parts[0]), int(parts[1]))
    except ValueError as exc:
        raise InvalidToken("Refresh token is invalid.") from exc
