"""The user row behind a token: the ORM's lookup against the same SQL compiled once (core/db/lookup.py).

    python -m bench.scenarios.orm_lookup [--rounds 10 --users 200]

In one process on the harness's bench database: alternating rounds of ``User.objects.filter(pk=)
.first()`` and ``RowById(User).get()`` over the same users; thread CPU time per lookup, median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.harness import servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ.setdefault("BENCH_INSTANCE", "harness")
    servers.start()
    servers.migrate()
    os.environ.update(servers.env())
    import django

    django.setup()
    from accounts.models import User
    from core.db.lookup import RowById

    ids = list(User.objects.values_list("pk", flat=True)[: args.users])
    if not ids:
        raise SystemExit("the bench database has no users: run `make bench-closed` (it seeds) first")
    compiled = RowById(User)

    def per_lookup(load) -> float:
        t0 = time.thread_time()
        for pk in ids:
            load(pk)
        return (time.thread_time() - t0) / len(ids) * 1000

    orm, fast = [], []
    for _ in range(args.rounds):
        orm.append(per_lookup(lambda pk: User.objects.filter(pk=pk).first()))
        fast.append(per_lookup(compiled.get))
    a, b = statistics.median(orm), statistics.median(fast)
    print(f"{len(ids)} users x {args.rounds} alternating rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"ORM filter(pk=).first(): {a:.3f} ms   RowById.get: {b:.3f} ms   ratio {b / a:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
