"""Stores of several shards at once (docs/subsystems/detection.md, "Shards"): each locks the
records of its own pairs, so stores of other pairs go on in parallel; two stores of one pair
keep both's intervals in one record; the daily cap holds when two stores add new people to
one user at once; overlapping stores never deadlock; the expiry sweep never deletes a record
a store is merging into.

Each store here is a real transaction in its own thread (``store_encounters`` on encounters
built by hand), held open before its commit where the test needs it; waits are polled
against a deadline (tests/waiting.py)."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, connections, transaction
from django.test import override_settings
from django.utils import timezone

from crossings.detection.core import Encounters
from crossings.detection.run import _Users, store_encounters
from crossings.models import Crossing
from crossings.services import sweep_expired_crossings
from tests.crossings.helpers import epoch_us
from tests.factories import make_crossing
from tests.factories import make_verified_user as make_user
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

MIN = 60 * 1_000_000
LAT, LNG = 52.52, 13.405


def encounters(intervals) -> tuple[Encounters, _Users]:
    """Encounters of ``intervals`` [(user_a, user_b, start_us, end_us)], in the order given."""
    ids = sorted({u.pk for a, b, _s, _e in intervals for u in (a, b)}, key=lambda u: u.int)
    code = {uid: i for i, uid in enumerate(ids)}
    pairs = [sorted((code[a.pk], code[b.pk])) for a, b, _s, _e in intervals]
    n = len(intervals)
    enc = Encounters(
        low=np.array([p[0] for p in pairs], np.int64), high=np.array([p[1] for p in pairs], np.int64),
        start=np.array([s for *_ab, s, _e in intervals], np.int64),
        end=np.array([e for *_abs, e in intervals], np.int64),
        place_lat=np.full(n, LAT), place_lng=np.full(n, LNG), place_city=np.zeros(n, np.int64),
    )
    users = _Users(hi=np.array([u.int >> 64 for u in ids], np.uint64),
                   lo=np.array([u.int & ((1 << 64) - 1) for u in ids], np.uint64))
    return enc, users


class Store(threading.Thread):
    """One store in its own transaction; with ``hold``, kept open after storing until released."""

    def __init__(self, intervals, hold: bool = False, start_together: threading.Barrier | None = None):
        super().__init__(daemon=True)
        self.intervals, self.hold, self.together = intervals, hold, start_together
        self.stored, self.release = threading.Event(), threading.Event()
        self.changed: list | None = None
        self.error: BaseException | None = None
        self.pid: int | None = None

    def run(self):
        try:
            enc, users = encounters(self.intervals)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
                if self.together:
                    self.together.wait(60)
                self.changed = store_encounters(cursor, enc, users)
                self.stored.set()
                if self.hold:
                    assert self.release.wait(120)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.stored.set()
            connections.close_all()

    def finish(self):
        self.release.set()
        self.join(120)
        assert not self.is_alive()


def waiting_for_a_lock(store: Store) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [store.pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def blocked_or_done(store: Store):
    return lambda: store.pid is not None and (store.stored.is_set() or waiting_for_a_lock(store))


def second_beside_open_first(first: Store, second: Store, *, first_changed: int, second_waits: str,
                             while_open=None) -> None:
    """``first`` stores and keeps its transaction open; then ``second`` starts and runs until it
    waits for a lock or is done (``second_waits`` says which the test expects), ``while_open``
    checks that moment; then ``first`` commits and ``second`` finishes."""
    first.start()
    try:
        wait_until(first.stored.is_set, what="the first store stored")
        assert first.error is None and len(first.changed) == first_changed
        second.start()
        wait_until(blocked_or_done(second), what=second_waits)
        if while_open is not None:
            while_open()
    finally:
        first.finish()
    second.finish()


def intervals_of(a, b) -> list[tuple[int, int]]:
    low, high = sorted([a.pk, b.pk])
    c = Crossing.objects.get(user_low_id=low, user_high_id=high)
    return list(zip(c.encounter_starts, c.encounter_ends, strict=True))


def test_a_store_of_other_pairs_is_not_held_up_by_an_open_one():
    """Shards store in parallel: while one store's transaction is still open, another store of
    other people's records (an existing pair met again) runs to its end."""
    a, b, c, d = (make_user() for _ in range(4))
    now = epoch_us(timezone.now())
    make_crossing(c, d, at=timezone.now() - timedelta(hours=5))
    first = Store([(a, b, now - 10 * MIN, now - 9 * MIN)], hold=True)
    first.start()
    try:
        wait_until(first.stored.is_set, what="the first store stored")
        assert first.error is None
        second = Store([(c, d, now - 5 * MIN, now - 4 * MIN)])
        second.start()
        wait_until(second.stored.is_set, what="the second store finished while the first is open")
        second.finish()
        assert second.error is None and len(second.changed) == 1
        assert intervals_of(c, d)[-1] == (now - 5 * MIN, now - 4 * MIN)
    finally:
        first.finish()
    assert first.error is None and len(intervals_of(a, b)) == 1


@pytest.mark.parametrize("existing", [False, True], ids=["new pair", "existing pair"])
def test_two_stores_of_one_pair_at_once_keep_both_intervals_in_one_record(existing):
    """Two shards find the same pair (a border crossing) at once: the second waits for the
    first's record, then merges into it; nothing lost, one record.  New pair: each store has
    an encounter of its own.  Existing pair: the first only moves the end of the stored
    encounter (a write that changes no indexed column), the second adds an encounter."""
    a, b = make_user(), make_user()
    now = epoch_us(timezone.now())
    if existing:
        at = Crossing.objects.get(pk=make_crossing(a, b, at=timezone.now() - timedelta(hours=10)).pk).encounter_ends[0]
        firsts, kept = [(a, b, at + 10 * MIN, at + 40 * MIN)], (at, at + 40 * MIN)
    else:
        firsts = [(a, b, now - 200 * MIN, now - 190 * MIN)]
        kept = firsts[0][2:]
    first = Store(firsts, hold=True)
    second = Store([(a, b, now - 20 * MIN, now - 10 * MIN)])

    def second_waits_for_the_first_record():
        assert not second.stored.is_set()

    second_beside_open_first(first, second, first_changed=1, second_waits="the second store blocked on the pair",
                             while_open=second_waits_for_the_first_record)
    assert first.error is None and second.error is None
    assert Crossing.objects.count() == 1
    assert intervals_of(a, b) == [kept, (now - 20 * MIN, now - 10 * MIN)]
    record = Crossing.objects.get()
    assert record.times == 2
    assert epoch_us(record.last_crossed_at) == now - 20 * MIN


@override_settings(CROSSINGS_NEW_PER_DAY=3)
def test_the_daily_cap_holds_when_two_stores_add_new_people_to_one_user_at_once():
    """Two shards each find two new people for one user, whose cap is 3 and who met one person
    today already: exactly 3 new people today in all, the first store's two kept, the second's
    two dropped (and not reported as changed)."""
    walker = make_user()
    known, *others = (make_user() for _ in range(5))
    make_crossing(walker, known, at=timezone.now() - timedelta(hours=1))
    now = epoch_us(timezone.now())
    first = Store([(walker, others[0], now - 30 * MIN, now - 29 * MIN),
                   (walker, others[1], now - 28 * MIN, now - 27 * MIN)], hold=True)
    second = Store([(walker, others[2], now - 40 * MIN, now - 39 * MIN),
                    (walker, others[3], now - 38 * MIN, now - 37 * MIN)])
    second_beside_open_first(first, second, first_changed=2, second_waits="the second store counted or waits to")
    assert second.error is None
    met = {str(c.user_high_id if c.user_low_id == walker.pk else c.user_low_id)
           for c in Crossing.objects.filter(first_crossed_at__gt=timezone.now() - timedelta(days=1))}
    assert len(met) == 3
    assert met == {str(known.pk), str(others[0].pk), str(others[1].pk)}
    assert second.changed == []


def test_stores_of_overlapping_pairs_in_opposite_orders_never_deadlock():
    """Two stores started together, each over 40 pairs (20 of them shared, half of those with a
    record already), given in opposite orders: both commit, every interval is kept."""
    users = [make_user() for _ in range(61)]
    hub = users[0]
    now = epoch_us(timezone.now())
    for other in users[21:31]:
        make_crossing(hub, other, at=timezone.now() - timedelta(hours=20))
    for round_ in range(3):
        shared = [(hub, u) for u in users[21:41]]
        mine = shared + [(hub, u) for u in users[1:21]]
        theirs = list(reversed(shared + [(hub, u) for u in users[41:61]]))
        t1, t2 = now - (900 - 150 * round_) * MIN, now - (450 - 150 * round_) * MIN  # encounters apart
        together = threading.Barrier(2)
        stores = [Store([(a, b, t1, t1 + MIN) for a, b in mine], start_together=together),
                  Store([(a, b, t2, t2 + MIN) for a, b in theirs], start_together=together)]
        for store in stores:
            store.start()
        for store in stores:
            store.finish()
        assert [s.error for s in stores] == [None, None]
    for _hub, other in shared:
        kept = intervals_of(hub, other)
        for start in (900, 750, 600, 450, 300, 150):
            assert (now - start * MIN, now - start * MIN + MIN) in kept
    assert Crossing.objects.count() == 60


def test_the_expiry_sweep_never_deletes_a_record_a_store_is_merging_into(settings):
    """A record past retention met again: while the store that merges the new encounter is
    still open, the sweep waits for it, then finds the record no longer expired."""
    settings.CROSSING_RETENTION_DAYS = 7
    a, b = make_user(), make_user()
    old = make_crossing(a, b, at=timezone.now() - timedelta(days=8))
    gone = make_crossing(make_user(), make_user(), at=timezone.now() - timedelta(days=8))
    now = epoch_us(timezone.now())
    store = Store([(a, b, now - 3 * MIN, now - 2 * MIN)], hold=True)
    store.start()
    result: dict[str, int] = {}
    sweep = threading.Thread(target=lambda: (result.update(deleted=sweep_expired_crossings()),
                                             connections.close_all()), daemon=True)
    try:
        wait_until(store.stored.is_set, what="the store merged")
        assert store.error is None
        sweep.start()
        with connection.cursor() as cursor:
            def sweep_waits():
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock' AND pid <> %s", [store.pid])
                return cursor.fetchone()[0] > 0 or not sweep.is_alive()
            wait_until(sweep_waits, what="the sweep waits for the store")
    finally:
        store.finish()
    sweep.join(120)
    assert not sweep.is_alive() and result == {"deleted": 1}
    assert not Crossing.objects.filter(pk=gone.pk).exists()
    kept = Crossing.objects.get(pk=old.pk)
    assert (now - 3 * MIN, now - 2 * MIN) in intervals_of(a, b)
    assert epoch_us(kept.last_crossed_at) == now - 3 * MIN


def test_a_new_pair_is_written_once_with_its_final_values():
    """A new pair's record is inserted whole (no stub inserted, then updated by the merge): a
    store of three new pairs and one existing pair met again inserts 3 rows and updates 1."""
    a, b, c, d, e, f, g, h = (make_user() for _ in range(8))
    make_crossing(g, h, at=timezone.now() - timedelta(hours=10))
    now = epoch_us(timezone.now())
    intervals = [(a, b, now - 300 * MIN, now - 290 * MIN), (a, b, now - 100 * MIN, now - 95 * MIN),
                 (c, d, now - 50 * MIN, now - 40 * MIN), (e, f, now - 30 * MIN, now - 29 * MIN),
                 (g, h, now - 20 * MIN, now - 10 * MIN)]
    enc, users = encounters(sorted(intervals, key=lambda iv: tuple(sorted((iv[0].pk.int, iv[1].pk.int)))))
    stats = "SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'crossings'"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(stats)
        before = cursor.fetchone()
        changed = store_encounters(cursor, enc, users)
        cursor.execute(stats)
        after = cursor.fetchone()
    assert (after[0] - before[0], after[1] - before[1]) == (3, 1), (before, after)
    assert len(changed) == 4 and all(row[3] for row in changed)
    assert intervals_of(a, b) == [(now - 300 * MIN, now - 290 * MIN), (now - 100 * MIN, now - 95 * MIN)]
    record = Crossing.objects.get(pk=next(row[0] for row in changed if {row[1], row[2]} == {str(a.pk), str(b.pk)}))
    assert record.times == 2
    assert (epoch_us(record.first_crossed_at), epoch_us(record.last_crossed_at)) == (now - 300 * MIN, now - 100 * MIN)
    assert (record.place_lat, record.place_lng) != (0, 0) and record.place_cell
    assert intervals_of(g, h)[-1] == (now - 20 * MIN, now - 10 * MIN)
