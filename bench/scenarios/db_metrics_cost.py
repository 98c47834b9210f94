"""What django-prometheus's instrumented database engine costs per query, side by side.

    python -m bench.scenarios.db_metrics_cost [--queries 2000] [--repeat 7]

How it compares the two engines: docs/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    import django

    django.setup()
    from django.db import connections

    connections.settings["stock"] = {**connections.settings["default"], "ENGINE": "django.db.backends.postgresql"}

    # Through a cursor, not the ORM: cachalot wraps ORM reads on the aliases it knew at start-up
    # (``default``), not on ``stock``, and would be billed to the metrics.
    def raw(alias):
        def run():
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        return run

    for name, make in (("cursor SELECT 1", raw),):
        best = {"default": float("inf"), "stock": float("inf")}
        for alias in best:
            for _ in range(200):
                make(alias)()
        for _ in range(args.repeat):
            for alias in best:
                fn = make(alias)
                start = time.process_time()
                for _ in range(args.queries):
                    fn()
                best[alias] = min(best[alias], (time.process_time() - start) / args.queries * 1e6)
        print(f"{name}: instrumented {best['default']:.1f} µs, stock {best['stock']:.1f} µs, "
              f"metrics {best['default'] - best['stock']:.1f} µs per query")


if __name__ == "__main__":
    main()
