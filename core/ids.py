"""Time-ordered UUIDs (version 7, RFC 9562) for primary keys.

Random UUIDv4 keys scatter inserts over the whole B-tree; v7 keys grow with time, so
inserts touch the right edge of the index, as bigint keys do, while staying opaque.
"""

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 68 & 0xFFF) << 64  # 12 random bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def as_uuid(value) -> uuid.UUID | None:
    """``value`` (a UUID, its string, or anything else) as a UUID, or None if it is not one.

    Ids reach selectors from URLs, tokens and other apps; a malformed one means "no such
    object" (a 404), never an error.
    """
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
