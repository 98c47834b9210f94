"""Validation of incoming pings, written by hand for speed (a DRF serializer per ping costs
more than the rest of the request) but with DRF's per-field error shape, e.g.
``{"pings": [{}, {"lat": ["Must be between -90 and 90."]}]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils.dateparse import parse_datetime

from core.api.numbers import NumberInvalid, parse_number

MAX_BATCH = 100
MAX_FUTURE = timedelta(minutes=5)
MAX_ACCURACY_M = 100_000.0
PING_FIELDS = frozenset({"lat", "lng", "recorded_at", "accuracy_m"})


@dataclass(frozen=True, slots=True)
class PingIn:
    recorded_at: datetime
    lat: float
    lng: float
    accuracy_m: float | None = None


class PingsInvalid(Exception):
    """Field-level errors, shaped like DRF's (``detail`` is the response body)."""

    def __init__(self, detail: dict):
        super().__init__(detail)
        self.detail = detail


def _number(value, name: str, low: float, high: float, column: str = "float8") -> tuple[float | None, str | None]:
    try:
        return parse_number(value, low=low, high=high, column=column), None
    except NumberInvalid as exc:
        return None, str(exc)


def _time(value, now: datetime) -> tuple[datetime | None, str | None]:
    if not isinstance(value, str):
        return None, "An ISO 8601 date-time with a time zone is required."
    try:
        parsed = parse_datetime(value.strip())
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        return None, "An ISO 8601 date-time with a time zone is required."
    if parsed.tzinfo is None:
        return None, "The date-time must include a time zone (e.g. Z or +02:00)."
    if parsed > now + MAX_FUTURE:
        return None, "Must not be more than 5 minutes in the future."
    oldest = now - timedelta(hours=settings.PING_RETENTION_HOURS)
    if parsed <= oldest:
        return None, f"Must be within the last {settings.PING_RETENTION_HOURS} hours."
    return parsed, None


def _clean_one(raw, now: datetime) -> tuple[PingIn | None, dict]:
    if not isinstance(raw, dict):
        return None, {"non_field_errors": ["Each ping must be an object."]}
    errors: dict[str, list[str]] = {}
    for name in sorted(set(raw) - PING_FIELDS):
        errors[name] = ["Unknown field."]
    for name in ("lat", "lng", "recorded_at"):
        if raw.get(name) is None:
            errors[name] = ["This field is required."]
    lat = lng = recorded_at = accuracy = None
    if "lat" not in errors:
        lat, error = _number(raw["lat"], "lat", -90.0, 90.0)
        if error:
            errors["lat"] = [error]
    if "lng" not in errors:
        lng, error = _number(raw["lng"], "lng", -180.0, 180.0)
        if error:
            errors["lng"] = [error]
    if "recorded_at" not in errors:
        recorded_at, error = _time(raw["recorded_at"], now)
        if error:
            errors["recorded_at"] = [error]
    if raw.get("accuracy_m") is not None:
        accuracy, error = _number(raw["accuracy_m"], "accuracy_m", 0.0, MAX_ACCURACY_M, "float4")
        if error:
            errors["accuracy_m"] = [error]
    if errors or recorded_at is None or lat is None or lng is None:
        return None, errors
    return PingIn(recorded_at, lat, lng, accuracy), {}


def clean_pings(raw, *, now: datetime) -> list[PingIn]:
    """Validate a list of raw pings (1 to MAX_BATCH, no two at the same instant) or raise."""
    if not isinstance(raw, list):
        raise PingsInvalid({"pings": ["A list of pings is required."]})
    if not raw:
        raise PingsInvalid({"pings": ["Send at least one ping."]})
    if len(raw) > MAX_BATCH:
        raise PingsInvalid({"pings": [f"Send at most {MAX_BATCH} pings per request (got {len(raw)})."]})
    cleaned: list[PingIn] = []
    errors: list[dict] = []
    seen: dict[datetime, int] = {}
    for index, item in enumerate(raw):
        ping, item_errors = _clean_one(item, now)
        if ping is not None:
            # One user cannot be in two places at the same instant: the same recorded_at
            # twice is a client bug (or a replay), and would make a speed undefined.
            first = seen.setdefault(ping.recorded_at, index)
            if first != index:
                item_errors = {"recorded_at": [f"Duplicate of ping {first} (same recorded_at)."]}
            cleaned.append(ping)
        errors.append(item_errors)
    if any(errors):
        raise PingsInvalid({"pings": errors})
    return cleaned
