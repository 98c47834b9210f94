"""What a raw SQL write pays for cachalot's invalidation: cachalot's own hook (every model's
table searched in the SQL) against core/cache/raw_writes.py (the whitelisted tables only).

    python -m bench.scenarios.raw_write_hook [--calls 20000]

Both lookups on the SQL of the chat's event insert, in one process, alternating batches;
microseconds per call, medians.  No database needed.  Figures: docs/subsystems/caching.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    import django

    django.setup()
    from cachalot.utils import filter_cachable
    from django.db import connection

    from core.cache import raw_writes

    sql = ("insert into realtime_event (user_id, seq, type, payload, peer_id, created_at) "
           "select u, n, t, p, r, c from unnest(%s, %s, %s, %s, %s, %s)")

    def cachalots() -> set:
        # cachalot.utils._get_tables_from_sql, as its cursor hook calls it
        tables = {t for t in connection.introspection.django_table_names() if t in sql}
        return filter_cachable(tables)

    runs: dict[str, list[float]] = {"cachalot": [], "whitelist": []}
    batch = max(1, args.calls // 20)
    for _ in range(20):
        for name, func in (("cachalot", cachalots), ("whitelist", lambda: raw_writes.written_cachable_tables(sql))):
            started = time.perf_counter()
            for _ in range(batch):
                func()
            runs[name].append((time.perf_counter() - started) / batch * 1e6)
    for name, values in runs.items():
        print(f"{name:10} {statistics.median(values):8.2f} µs per raw write (median of 20 batches)")
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
