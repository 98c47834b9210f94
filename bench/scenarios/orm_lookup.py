"""Hot queries: the ORM's compilation on every call against the same SQL compiled once (core/db/lookup.py).

    python -m bench.scenarios.orm_lookup [--what user|unread|mark_read|crossings|crossed_ids] [--rounds 10 --users 200]

In one process on the harness's bench database, alternating rounds over the same users, thread
CPU time per call, median:

- ``user``: the user row behind a token, ``User.objects.filter(pk=).first()`` against
  ``RowById(User).get()``;
- ``unread``: a user's unread counts per chat, the ORM's aggregate
  (``connections.selectors.unread_queryset``) against ``load_unread``, which runs its SQL
  compiled once;
- ``mark_read``: moving a reader's marker, the queryset's conditional ``update()`` against
  ``connections.services.mark_read``'s UPDATE written once (each round in a transaction
  rolled back, so every call moves the marker);
- ``crossings``: the first page of a user's crossings as a cache miss reads it, model
  instances of ``visible_crossings`` against ``crossings.selectors.first_page``, which runs
  the page's SELECT compiled once (for users who hide no one);
- ``crossed_ids``: everyone a user has a crossing with (what the crossing rule of profile
  visibility caches), the ORM's query against ``crossed_ids_from_db``'s compiled once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.harness import servers


def _pairs(what: str, users: int) -> tuple[list, str, object, str, object]:
    """The ids to call with, and the two ways (label, function) to compare."""
    if what == "user":
        from accounts.models import User
        from core.db.lookup import RowById

        compiled = RowById(User)
        return (list(User.objects.values_list("pk", flat=True)[:users]),
                "ORM filter(pk=).first()", lambda pk: User.objects.filter(pk=pk).first(),
                "RowById.get", compiled.get)
    from connections.models import Connection, ConnectionStatus
    from connections.selectors import load_unread, unread_queryset
    from core.db import router

    if what == "mark_read":
        return _mark_read_pairs(users)
    if what == "crossings":
        return _crossings_pairs(users)
    if what == "crossed_ids":
        return _crossed_ids_pairs(users)

    def orm(pk) -> dict:
        with router.use_primary():
            return {str(cid): n for cid, n in unread_queryset(pk)}

    return (list(Connection.objects.filter(status=ConnectionStatus.ACCEPTED)
                 .values_list("user_low_id", flat=True)[:users]),
            "ORM unread aggregate", orm, "load_unread (compiled once)", load_unread)


def _mark_read_pairs(users: int) -> tuple[list, str, object, str, object]:
    from django.db.models import Q
    from django.utils import timezone

    from connections import services
    from connections.models import Connection, ConnectionStatus

    conns = {c.user_low_id: c for c in Connection.objects.filter(status=ConnectionStatus.ACCEPTED)[:users]}
    until = timezone.now()

    def orm(pk) -> int:  # what mark_read ran before
        field = "low_last_read_at"
        return Connection.objects.filter(pk=conns[pk].pk).filter(
            Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": until})).update(**{field: until})

    return (list(conns), "ORM conditional update()", orm, "mark_read (UPDATE written once)",
            lambda pk: services.mark_read(user_id=pk, connection=conns[pk], until=until))


def _crossings_pairs(users: int) -> tuple[list, str, object, str, object]:
    from crossings.models import Crossing
    from crossings.selectors import crossing_row, first_page, visible_crossings

    def orm(pk) -> dict:  # what a miss read before
        page = list(visible_crossings(pk).order_by("-last_crossed_at", "-id")[:21])
        return {"rows": [crossing_row(c, pk) for c in page[:20]], "next": len(page) > 20}

    def compiled(pk) -> dict:
        return first_page(pk, 20)

    ids = list(Crossing.objects.order_by("user_low_id").values_list("user_low_id", flat=True).distinct()[:users])
    return ids, "ORM page of model instances", orm, "first_page (compiled once)", compiled


def _crossed_ids_pairs(users: int) -> tuple[list, str, object, str, object]:
    from django.db.models import Q

    from crossings.models import Crossing
    from crossings.selectors import crossed_ids_from_db

    def orm(pk) -> set:  # what it ran before
        rows = Crossing.objects.filter(Q(user_low_id=pk) | Q(user_high_id=pk)).values_list("user_low_id",
                                                                                           "user_high_id")
        return {high if low == pk else low for low, high in rows}

    ids = list(Crossing.objects.order_by("user_high_id").values_list("user_high_id", flat=True).distinct()[:users])
    return ids, "ORM query", orm, "crossed_ids_from_db (compiled once)", crossed_ids_from_db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=("user", "unread", "mark_read", "crossings", "crossed_ids"), default="user")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args(argv)
    os.environ.setdefault("BENCH_INSTANCE", "harness")
    servers.start()
    servers.migrate()
    os.environ.update(servers.env())
    import django

    django.setup()
    ids, orm_label, orm, fast_label, fast = _pairs(args.what, args.users)
    if not ids:
        raise SystemExit("the bench database has no seeded data: run `make bench-closed` (it seeds) first")
    if args.what in ("unread", "crossings", "crossed_ids"):
        assert all(orm(pk) == fast(pk) for pk in ids[:20]), "the compiled statement disagrees with the ORM's"

    from django.db import transaction

    def per_call(load) -> float:
        with transaction.atomic():  # rolled back: the next round finds the markers where they were
            t0 = time.thread_time()
            for pk in ids:
                load(pk)
            spent = time.thread_time() - t0
            transaction.set_rollback(True)
        return spent / len(ids) * 1000

    slow_ms, fast_ms = [], []
    for _ in range(args.rounds):
        slow_ms.append(per_call(orm))
        fast_ms.append(per_call(fast))
    a, b = statistics.median(slow_ms), statistics.median(fast_ms)
    print(f"{len(ids)} users x {args.rounds} alternating rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"{orm_label}: {a:.3f} ms   {fast_label}: {b:.3f} ms   ratio {b / a:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
