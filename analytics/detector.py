"""How far the crossing detector is behind: the age of the oldest ping it has not processed.

The crossings app owns the detector and its watermark; if it offers a selector for this
(``crossings.selectors.detector_lag_seconds``), that is used.  Otherwise the age is read
from its durable state: pings whose ``ingest_xid`` is at or above the watermark are not
processed yet, and none of them arrived before ``received_after`` (so the BRIN index on
``received_at`` keeps the scan to the recent blocks).
"""

from __future__ import annotations

from django.db import connections

LAG_SQL = """
SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(p.received_at)), 0)
FROM locations_ping p, crossings_detector_state s
WHERE s.id = 1
  AND p.received_at >= COALESCE(s.received_after, now() - interval '24 hours')
  AND p.ingest_xid >= s.xid_watermark::text::xid8
"""


def detector_lag_seconds(using: str = "default") -> float | None:
    try:
        from crossings import selectors
    except ImportError:
        return None
    own = getattr(selectors, "detector_lag_seconds", None)
    if own is not None:
        return own()
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM crossings_detector_state WHERE id = 1)")
        if not cursor.fetchone()[0]:
            # The detector never ran: every ping is waiting.
            cursor.execute("SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(received_at)), 0) FROM locations_ping "
                           "WHERE received_at >= now() - interval '24 hours'")
        else:
            cursor.execute(LAG_SQL)
        return max(float(cursor.fetchone()[0]), 0.0)
