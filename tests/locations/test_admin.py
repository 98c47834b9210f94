"""Cities are managed in the admin, which creates their partitions through the service."""

from __future__ import annotations

import pytest
from django.test import Client

from locations import partitions
from locations.models import City
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    admin = make_user(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    return client


def test_adding_a_city_in_the_admin_creates_its_partition(staff_client):
    response = staff_client.post("/admin/locations/city/add/", {
        "slug": "lisbon", "name": "Lisbon", "lat": "38.72", "lng": "-9.14", "radius_km": "15", "active": "on",
        "created_at_0": "2026-11-26", "created_at_1": "10:00:00",
    })
    assert response.status_code == 302, response.content[:2000]
    city = City.objects.get(slug="lisbon")
    assert f"locations_ping_city{city.id}" in partitions.existing_tables()
    assert staff_client.get("/admin/locations/city/").status_code == 200


def test_admin_refuses_a_bad_city(staff_client):
    response = staff_client.post("/admin/locations/city/add/", {
        "slug": "nowhere", "name": "Nowhere", "lat": "95", "lng": "0", "radius_km": "15",
    })
    assert response.status_code == 200  # the form again, with errors
    assert not City.objects.filter(slug="nowhere").exists()
