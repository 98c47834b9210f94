"""Who is on a socket: the REST access token, from the Authorization header or the
``bearer.<token>`` subprotocol (never the query string), checked against a live session.

Close codes: docs/realtime.md.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import jwt

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.tokens import InvalidToken, decode_access_token
from core.db import router as db_router

PROTOCOL = "crossings.v1"
BEARER_PROTOCOL_PREFIX = "bearer."
CLOSE_AUTH = 4401  # no, bad or expired token; session revoked
CLOSE_ACCOUNT = 4403  # account deactivated or erased
CLOSE_SLOW = 4408  # more than WS_MAX_PENDING_EVENTS live events waiting to be sent: reconnect and resume
CLOSE_EVICTED = 4409  # the user opened more than WS_MAX_CONNECTIONS_PER_USER sockets: the oldest goes


class Refused(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass(frozen=True)
class Identity:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: float
    hidden: frozenset[str]  # users blocked either way: nothing about them is delivered


def token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            if text[:7].lower() == "bearer ":
                return text[7:].strip()
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(BEARER_PROTOCOL_PREFIX):
            return protocol[len(BEARER_PROTOCOL_PREFIX):]
    return None


def identify(token: str | None) -> Identity:
    """The token's user and session, or ``Refused`` (4401 token/session, 4403 account).  Sync: reads the database."""
    if not token:
        raise Refused(CLOSE_AUTH, "An access token is required.")
    if not isinstance(token, str) or len(token) > 4096:
        raise Refused(CLOSE_AUTH, "Access token is invalid.")
    try:
        claims = decode_access_token(token)
    except InvalidToken as exc:
        raise Refused(CLOSE_AUTH, str(exc)) from exc
    # Verified just above; only its expiry is read here.
    expires = int(jwt.decode(token, options={"verify_signature": False})["exp"])
    with db_router.use_primary():
        live = account_services.live_sessions(claims.user_id).filter(pk=claims.session_id).exists()
    if not live:
        raise Refused(CLOSE_AUTH, "The session has ended; log in again.")
    active, _shadow_banned = account_selectors.profile_flags([claims.user_id]).get(claims.user_id, (False, False))
    if not active:
        raise Refused(CLOSE_ACCOUNT, "Account deactivated.")
    hidden = frozenset(str(uid) for uid in account_selectors.hidden_user_ids(claims.user_id))
    return Identity(claims.user_id, claims.session_id, float(expires), hidden)
