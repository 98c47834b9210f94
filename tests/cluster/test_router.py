"""The router's decisions on the test settings' mirrored replica (fast: run by `make test`).

The behaviour against real, lagging and failing replicas is in the `cluster`-marked tests.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import router, transaction

from accounts.models import User
from core.db import replicas as replica_health
from core.db import router as db_router
from tests.factories import make_user


@pytest.fixture(autouse=True)
def _fresh_health():
    replica_health.forget()
    yield
    replica_health.forget()


def test_lsn_values_compare_as_positions():
    assert replica_health.lsn_value("0/FF") < replica_health.lsn_value("1/0") < replica_health.lsn_value("1/10")
    assert replica_health.lsn_value("16/B374D848") == (0x16 << 32) + 0xB374D848


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_reads_use_the_replica_until_the_request_writes():
    user = make_user()
    assert router.db_for_read(User) == "default"  # outside a request: the primary
    with db_router.request_scope():
        db_router.set_user(user.pk)
        assert router.db_for_read(User) == "replica1"
        with transaction.atomic():
            assert router.db_for_read(User) == "default"  # reads in a transaction stay with it
        User.objects.filter(pk=user.pk).update(bio="x")
        assert router.db_for_read(User) == "default"
    marker = cache.get(f"rw:{user.pk}")
    assert marker and "/" in marker  # the primary's WAL position at the write


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_signed_out_sign_up_is_remembered_for_the_new_user():
    with db_router.request_scope():
        user = make_user()
    assert "/" in cache.get(f"rw:{user.pk}")


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_user_whose_write_is_not_replayed_reads_the_primary():
    user = make_user()
    cache.set(f"rw:{user.pk}", "FFFF/0", 30)  # a position no replica has reached
    replica_health._HEALTH["replica1"] = (float("inf"), True, "1/0")  # healthy, replayed up to 1/0
    with db_router.request_scope():
        db_router.set_user(user.pk)
        assert router.db_for_read(User) == "default"
    other = make_user()
    with db_router.request_scope():
        db_router.set_user(other.pk)
        assert router.db_for_read(User) == "replica1"
    replica_health.mark_down("replica1")
    with db_router.request_scope():
        db_router.set_user(other.pk)
        assert router.db_for_read(User) == "default"  # no healthy replica: the primary


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_while_redis_is_unreachable_signed_in_reads_stay_on_the_primary():
    """With the cache down a missing read-your-writes marker proves nothing: use the primary."""
    from core.cache import breaker as redis_breaker

    user = make_user()
    redis_breaker.trip(ConnectionError("test: Redis is away"))
    try:
        with db_router.request_scope():
            db_router.set_user(user.pk)
            assert router.db_for_read(User) == "default"
    finally:
        redis_breaker.reset()
    with db_router.request_scope():
        db_router.set_user(user.pk)
        assert router.db_for_read(User) == "replica1"


@pytest.mark.parametrize(("method", "expected"), [("get", "replica1"), ("post", "default"), ("patch", "default")])
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_request_that_changes_data_reads_from_the_primary(method, expected, rf):
    """Reads in a POST/PATCH/DELETE feed its writes (checks, transitions): never a stale replica."""
    from django.http import HttpResponse

    from core.observability.middleware import RequestContextMiddleware

    seen = []

    def view(request):
        seen.append(router.db_for_read(User))
        return HttpResponse("ok")

    RequestContextMiddleware(view)(getattr(rf, method)("/anything/"))
    assert seen == [expected]
