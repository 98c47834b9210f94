"""Two simultaneous requests from both sides meet on one row and end up accepted."""

from __future__ import annotations

import threading

import pytest
from django.db import connections as db_connections

from connections import services
from connections.models import Connection
from tests.factories import make_crossing, make_user


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_simultaneous_mutual_requests_accept_once():
    for _round in range(5):
        a, b = make_user(), make_user()
        make_crossing(a, b)
        barrier = threading.Barrier(2)
        results, errors = [], []

        def ask(me, other):
            try:
                barrier.wait(timeout=10)
                results.append(services.request_connection(requester_id=me.pk, target_id=other.pk))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db_connections.close_all()

        threads = [threading.Thread(target=ask, args=pair) for pair in ((a, b), (b, a))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        rows = Connection.objects.filter(user_low_id=min(a.pk, b.pk), user_high_id=max(a.pk, b.pk))
        assert rows.count() == 1
        assert rows.get().status == "accepted"
        assert sorted(created for _conn, created in results) == [False, True]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_simultaneous_same_side_requests_make_one_pending_row():
    a, b = make_user(), make_user()
    make_crossing(a, b)
    barrier = threading.Barrier(3)
    errors = []

    def ask():
        try:
            barrier.wait(timeout=10)
            services.request_connection(requester_id=a.pk, target_id=b.pk)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            db_connections.close_all()

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert list(Connection.objects.values_list("status", flat=True)) == ["pending"]
