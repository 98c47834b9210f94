"""Locations endpoints, under /api/v1/ (docs/api.md)."""

from django.urls import path

from locations.api import views

urlpatterns = [
    path("locations/", views.LocationsView.as_view(), name="locations"),
]
