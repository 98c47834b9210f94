"""Numbers from untrusted input, bounded: finite, ASCII JSON-number syntax when they come as
strings (no "٣", "1_0", " 1", "0x1", "nan"), within the field's range and representable in
its column (a ``real`` holds no subnormal: 5e-324 would be a database error, not a 400).
:func:`parse_number` serves hand-written validation; ``StrictFloatField`` serializers.
"""

from __future__ import annotations

import math
import re
import sys

from rest_framework import serializers

# JSON's number grammar, ASCII only, with bounded lengths (a million digits is not a number).
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,3})?", re.ASCII)
_INTEGER = re.compile(r"(?:0|[1-9][0-9]{0,17})", re.ASCII)
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.ASCII | re.IGNORECASE)
_FINITE = "Must be a finite number (not NaN or infinity)."
MAX_STRING = 48
# Smallest normal magnitude per column type: below it (and above 0) the value cannot be stored
# as given (float4 underflows, subnormals lose precision).
SMALLEST = {"float4": 1.1754943508222875e-38, "float8": sys.float_info.min}


class NumberInvalid(ValueError):
    """The message to show for the field."""


def parse_number(value, *, low: float, high: float, column: str = "float8") -> float:
    """``value`` (a JSON number or a string of one) as a float within [low, high], or raise
    :class:`NumberInvalid` with a message for the client."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise NumberInvalid("A number is required.")
    if isinstance(value, str):
        if len(value) > MAX_STRING or not _NUMBER.fullmatch(value):
            if _NOT_FINITE.fullmatch(value.strip()):
                raise NumberInvalid(_FINITE)
            raise NumberInvalid("A number is required (digits 0-9, an optional '.', '-' and exponent).")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise NumberInvalid("A number is required.") from None
    if not math.isfinite(number):
        raise NumberInvalid(_FINITE)
    if not low <= number <= high:
        raise NumberInvalid(f"Must be between {low:g} and {high:g}.")
    if number != 0.0 and abs(number) < SMALLEST[column]:
        raise NumberInvalid(f"Must be 0 or at least {SMALLEST[column]:.2g} in magnitude.")
    return number + 0.0  # -0.0 -> 0.0


def parse_integer(value: str, *, low: int, high: int) -> int:
    """A query-string integer: ASCII digits only, within [low, high]."""
    if not isinstance(value, str) or not _INTEGER.fullmatch(value):
        raise NumberInvalid("Must be an integer (digits 0-9).")
    number = int(value)
    if not low <= number <= high:
        raise NumberInvalid(f"Must be between {low} and {high}.")
    return number


class StrictFloatField(serializers.FloatField):
    """A FloatField that parses with :func:`parse_number` (``min_value``/``max_value`` required)."""

    def __init__(self, *, column: str = "float8", **kwargs):
        if kwargs.get("min_value") is None or kwargs.get("max_value") is None:
            raise TypeError("StrictFloatField needs min_value and max_value")
        self.column = column
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return parse_number(data, low=self.min_value, high=self.max_value, column=self.column)
        except NumberInvalid as exc:
            raise serializers.ValidationError(str(exc)) from None
