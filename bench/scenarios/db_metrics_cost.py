"""What the database metrics cost per request: the project's engine, django-prometheus's, Django's.

    python -m bench.scenarios.db_metrics_cost [--batches 20 --batch 300]

One process on the harness's bench database, four aliases of the same database: ``default``
with the project's engine (core.db.backend: django-prometheus's metrics, one cursor class per
alias), ``prometheus`` with django-prometheus's engine (django_prometheus.db.backends.postgresql,
the engine before; it builds a cursor class on every connect) and ``stock`` with Django's own
(no metrics), each with its own psycopg pool; and ``persistent``, the project's engine with a
connection the worker keeps instead of the pool (``DB_POOL=0 DB_CONN_MAX_AGE=600``).  A
"request" is what Django does around a view that touches the database: request_started, one to
four statements through a cursor (the connection taken from the pool for the first),
request_finished (the connection given back).
Batches rotate between the aliases, so a noisy machine slows each alike; the figure is thread
CPU time per request, median over the batches.  How it compares: docs/benchmarks/README.md;
figures: docs/benchmarks/performance.md ("The database engine").
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

from bench.harness.in_process import django_on_bench

ENGINES = {
    "core.db.backend": "default",
    "django-prometheus": "prometheus",
    "Django (no metrics)": "stock",
    "core.db.backend, no pool": "persistent",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args(argv)
    django_on_bench()
    from django.core.signals import request_finished, request_started
    from django.db import connections

    # Through a cursor, not the ORM: cachalot wraps ORM reads on the aliases it knew at start-up.
    for alias, engine in (("prometheus", "django_prometheus.db.backends.postgresql"),
                          ("stock", "django.db.backends.postgresql")):
        connections.settings[alias] = {**copy.deepcopy(connections.settings["default"]), "ENGINE": engine}
    # A persistent connection kept by the worker instead of the pool (DB_POOL=0 DB_CONN_MAX_AGE=600).
    persistent = copy.deepcopy(connections.settings["default"])
    persistent["OPTIONS"].pop("pool", None)
    connections.settings["persistent"] = {**persistent, "CONN_MAX_AGE": 600}

    def batch(alias: str, statements: int) -> float:
        t0 = time.thread_time()
        for _ in range(args.batch):
            request_started.send(sender=None)
            with connections[alias].cursor() as cursor:
                for n in range(statements):
                    cursor.execute("SELECT %s", [n])
            request_finished.send(sender=None)
        return (time.thread_time() - t0) / args.batch * 1e6

    print(f"{args.batches} rotating batches of {args.batch} requests; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    print("| statements a request | " + " | ".join(ENGINES) + " | ours / django-prometheus |\n| --- |"
          + " ---: |" * (len(ENGINES) + 1))
    names = list(ENGINES)
    for statements in (1, 2, 4):
        times: dict[str, list[float]] = {name: [] for name in ENGINES}
        for round_ in range(args.batches + 1):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                us = batch(ENGINES[name], statements)
                if round_:  # the first round warms up (the pools open, statements prepared)
                    times[name].append(us)
        medians = {name: statistics.median(values) for name, values in times.items()}
        cells = " | ".join(f"{us:.1f} µs" for us in medians.values())
        print(f"| {statements} | {cells} | {medians['core.db.backend'] / medians['django-prometheus']:.2f} |",
              flush=True)
    print(f"load average after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
