"""core.db.lookup.RowById: the ORM's primary-key lookup with its SQL compiled once."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from core.db.lookup import RowById
from realtime.models import Event
from tests.factories import make_user


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


@pytest.mark.django_db
def test_a_row_is_the_same_object_the_orm_loads():
    user = make_user(display_name="Ada", bio="likes maps")
    lookup = RowById(User)
    loaded = lookup.get(user.pk)
    assert _fields(loaded) == _fields(User.objects.get(pk=user.pk))
    assert loaded._state.adding is False and loaded._state.db
    assert lookup.get(str(user.pk)).pk == user.pk  # a key given as text, as the queryset accepts
    assert lookup.get(uuid.uuid4()) is None


@pytest.mark.django_db
def test_field_converters_run_as_in_the_orm():
    user = make_user()
    event = Event.objects.create(user_id=user.pk, seq=1, type="message.new", payload={"a": [1, "b"], "n": None})
    loaded = RowById(Event).get(event.pk)
    assert loaded.payload == {"a": [1, "b"], "n": None}  # JSON decoded by the field's converter
    assert _fields(loaded) == _fields(Event.objects.get(pk=event.pk))


@pytest.mark.django_db
def test_the_sql_is_compiled_once_and_is_the_querysets_own():
    user = make_user()
    lookup = RowById(User)
    with CaptureQueriesContext(connection) as queries:
        lookup.get(user.pk, using="default")
        lookup.get(user.pk, using="default")
    assert len(lookup._compiled) == 1
    assert queries[0]["sql"] == queries[1]["sql"]
    with CaptureQueriesContext(connection) as orm:
        list(User.objects.using("default").filter(pk=user.pk)[:1])
    assert queries[0]["sql"] == orm[0]["sql"]
