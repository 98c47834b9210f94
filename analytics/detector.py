"""How far the crossing detector is behind: the age of the oldest unprocessed ping.

The crossings app owns the detector and its watermark; this asks its selector when it has
one, so that analytics never reads crossings' tables directly.
"""

from __future__ import annotations


def detector_lag_seconds() -> float | None:
    try:
        from crossings import selectors
    except ImportError:
        return None
    lag = getattr(selectors, "detector_lag_seconds", None)
    return None if lag is None else lag()
