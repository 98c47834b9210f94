"""The phone-number throttles of sign-in and verification (counted like every other limit, in core.api.throttling)."""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError

from accounts.models import normalize_phone
from core.api.throttling import RedisRateThrottle


def phone_key(raw) -> str | None:
    """A key for a phone number from untrusted input: E.164 when valid, else a digest of it."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return normalize_phone(raw)
    except ValidationError:
        # Still counted, so that garbage variants of a number are limited too.
        return "raw:" + hashlib.sha256(raw.strip()[:64].encode()).hexdigest()[:32]


class PhoneRateThrottle(RedisRateThrottle):
    """Login and verification attempts per phone number (from the JSON body), across all IPs.

    Reading ``request.data`` here parses the body: malformed or oversized bodies raise their
    own 4xx (ParseError, 413) exactly as the view would; a body without a phone is not
    counted here (the per-IP limit still applies).
    """

    scope = "auth_phone"

    def get_cache_key(self, request, view):
        data = request.data
        if not hasattr(data, "get"):
            return None
        return phone_key(data.get("phone"))


class PhoneCodeRateThrottle(PhoneRateThrottle):
    """Sign-up SMS per phone number from the body (the code or the notice: SMS bombing)."""

    scope = "code_phone"


class UserPhoneRateThrottle(RedisRateThrottle):
    """SMS codes per phone number of the signed-in user (stops SMS bombing and cost abuse)."""

    scope = "code_phone"

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return phone_key(user.phone)


class UserPhoneAttemptThrottle(UserPhoneRateThrottle):
    """Code verification attempts per phone number of the signed-in user."""

    scope = "auth_phone"
