"""Refreshing the statistics views.

Refreshes are serialised by a transaction-scoped advisory lock and run ``CONCURRENTLY``.
Design: docs/subsystems/analytics.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.db import connections, transaction

logger = logging.getLogger(__name__)

# Every statistics view, in refresh order.  Each has a unique index (CONCURRENTLY needs one).
STATS_VIEWS: tuple[str, ...] = ("user_stats_mv", "city_stats_mv", "activity_stats_mv")
# pg_advisory locks take a bigint; this one is "stat" in ASCII, unlikely to collide.
REFRESH_LOCK_KEY = 0x73746174
REFRESH_TIMEOUT = "240s"


@dataclass
class RefreshResult:
    refreshed: bool
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def skipped(self) -> bool:
        return not self.refreshed


def existing_stats_views(using: str = "default") -> list[str]:
    """The views of STATS_VIEWS that exist (a follow-up migration may not have run yet)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT matviewname FROM pg_matviews WHERE matviewname = ANY(%s)", [list(STATS_VIEWS)])
        present = {row[0] for row in cursor.fetchall()}
    return [name for name in STATS_VIEWS if name in present]


def refresh_stats(*, using: str = "default", views: list[str] | None = None) -> RefreshResult:
    """Refresh every statistics view concurrently, unless another refresh is running."""
    names = views if views is not None else existing_stats_views(using)
    unknown = set(names) - set(STATS_VIEWS)
    if unknown:
        raise ValueError(f"not a statistics view: {', '.join(sorted(unknown))}")
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [REFRESH_LOCK_KEY])
        if not cursor.fetchone()[0]:
            logger.info("statistics refresh skipped: another refresh is running")
            return RefreshResult(refreshed=False)
        cursor.execute(f"SET LOCAL statement_timeout = '{REFRESH_TIMEOUT}'")
        result = RefreshResult(refreshed=True)
        for name in names:
            started = time.perf_counter()
            cursor.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {name}")
            result.seconds[name] = round(time.perf_counter() - started, 3)
    logger.info("statistics refreshed", extra={"views": result.seconds})
    return result
