"""The hidden-users cache is filled from the primary, never from a replica that may lag a block."""

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from accounts import selectors
from core.db import router as db_router
from tests.factories import make_user


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_cache_miss_of_hidden_users_reads_the_primary_inside_a_read_request():
    viewer = make_user()
    with db_router.request_scope(), CaptureQueriesContext(connections["default"]) as primary, \
            CaptureQueriesContext(connections["replica1"]) as replica:
        db_router.set_user(viewer.pk)
        selectors.hidden_user_ids(viewer.pk)
    assert any("accounts_block" in q["sql"] for q in primary.captured_queries)
    assert not any("accounts_block" in q["sql"] for q in replica.captured_queries)
