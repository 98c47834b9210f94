"""Builders for test data.  Each returns saved rows with sensible defaults."""

from __future__ import annotations

import itertools

from accounts.models import User

_phones = itertools.count(1)
DEFAULT_PASSWORD = "correct-horse-battery"


def next_phone() -> str:
    # +1 202 555 01xx..: valid North American numbers reserved for fiction, unique per call.
    n = next(_phones)
    return f"+1202{5550000 + n:07d}"


def make_user(**fields) -> User:
    password = fields.pop("password", DEFAULT_PASSWORD)
    fields.setdefault("display_name", f"User {next(_phones)}")
    phone = fields.pop("phone", None) or next_phone()
    return User.objects.create_user(phone, password, **fields)
