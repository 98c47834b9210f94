"""Fixtures for the locations tests: a city with its partitions, times inside the retention."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import make_city, make_verified_user


@pytest.fixture
def berlin(db):
    """Berlin: centre 52.52, 13.405, radius 25 km (partitions made by the service)."""
    return make_city("berlin", lat=52.52, lng=13.405, radius_km=25.0)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def user(db):
    """A user with a verified phone (the ping rules are about such users)."""
    return make_verified_user(display_name="Alice")


@pytest.fixture
def other_user(db):
    return make_verified_user(display_name="Bob")
