"""GET users/{id}/ first reads with the crossing visibility rule as it was (``have_crossed``:
the block and profile checks again, a UUID per crossed id) and as it is (``crossed_rule``);
with ``--what prefetch``, with the view's cached reads one round trip each (as before) and
prefetched in one (``accounts.visibility.profile_reads``).

    python -m bench.scenarios.profile_rule [--what rule|prefetch] [--batches 10 --batch 200]

In one process on the harness's seeded database (bench/harness/in_process.py): viewers with
crossings read the profiles of people they crossed, each pair once (a first read: the response
cache misses), the two rules swapped in between alternating batches; thread CPU per request,
medians.  Pairs are drawn at random per run; a pair read in a run stays cached for
RESPONSE_CACHE_S (300 s), so space repeated runs.  Figures: docs/benchmarks/performance.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import uuid

from bench.harness.in_process import alternate, django_on_bench, thread_ms, wsgi_environ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--what", choices=["rule", "prefetch"], default="rule")
    args = parser.parse_args(argv)
    django_on_bench()
    from django.core.handlers.wsgi import WSGIHandler

    from accounts import selectors as account_selectors
    from accounts import services, visibility
    from accounts.models import User
    from connections import receivers as connection_receivers
    from core.ids import as_uuid
    from crossings import cache as cx_cache
    from crossings import selectors
    from crossings.models import Crossing

    crossed: dict = {}
    for low, high in Crossing.objects.values_list("user_low_id", "user_high_id")[:50_000]:
        crossed.setdefault(low, []).append(high)
    viewers = [v for v, others in crossed.items() if len(others) >= 5][:args.viewers]
    if not viewers:
        raise SystemExit("the bench database has no crossings: run `make bench-closed` (it seeds) first")
    users = User.objects.in_bulk(viewers)
    tokens = {v: services.open_session(users[v], user_agent="bench profile rule", ip="127.0.0.1")[1]
              for v in viewers}
    pairs = [(v, t) for v in viewers for t in crossed[v]]
    random.shuffle(pairs)
    needed = (args.batches + 1) * 2 * args.batch
    if len(pairs) < needed:
        raise SystemExit(f"{len(pairs)} viewer-profile pairs, {needed} needed: lower --batches or --batch")
    handler = WSGIHandler()
    fresh = iter(pairs)

    def before(viewer_id, target_id) -> bool:
        """The rule as it was: ``have_crossed`` of then (a UUID per cached id, then the viewer's
        hidden set and the target's profile read again)."""
        a, b = as_uuid(viewer_id), as_uuid(target_id)
        if a is None or b is None or a == b:
            return False
        ids = cx_cache.cached(a, "ids", lambda: [str(value) for value in selectors.crossed_ids_from_db(a)])
        if b not in {uuid.UUID(value) for value in ids}:
            return False
        return b in account_selectors.visible_profiles(a, [b])

    current = [selectors.crossed_rule]

    def use(rule) -> None:
        """The crossing rule swapped, first in the registry as in production (the connection rule after it)."""
        visibility.unregister_profile_visibility(current[0])
        visibility.unregister_profile_visibility(connection_receivers.connected_or_requested)
        visibility.register_profile_visibility(rule)
        visibility.register_profile_visibility(connection_receivers.connected_or_requested)
        current[0] = rule

    def batch(rule) -> float:
        use(rule)
        environs = []
        for _ in range(args.batch):
            viewer, target = next(fresh)
            environs.append(wsgi_environ("GET", f"/api/v1/users/{target}/", tokens[viewer]))
        return thread_ms(handler, environs)

    if args.what == "prefetch":
        import contextlib

        from accounts.api import views as account_views

        prefetching = account_views.profile_reads

        def reads(prefetch: bool) -> float:
            account_views.profile_reads = prefetching if prefetch else (lambda viewer, target: contextlib.nullcontext())
            return batch(selectors.crossed_rule)

        old, new = alternate(lambda: reads(False), lambda: reads(True), args.batches)
        account_views.profile_reads = prefetching
        what = "a round trip per cached read", "prefetched in one"
    else:
        old, new = alternate(lambda: batch(before), lambda: batch(selectors.crossed_rule), args.batches)
        what = "the rule as it was", "now"
    use(selectors.crossed_rule)
    print(f"{len(viewers)} viewers, {len(pairs)} pairs; {args.batches} alternating batches of {args.batch} "
          f"first reads each")
    print(f"GET users/{{id}}/ first read: {what[0]} {old:.3f} ms, {what[1]} {new:.3f} ms, ratio {new / old:.3f}; "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
