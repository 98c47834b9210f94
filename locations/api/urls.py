"""Locations endpoints, under /api/v1/ (shared/API.md)."""

from django.urls import path

from locations.api import views

urlpatterns = [
    path("locations/", views.LocationsView.as_view(), name="locations"),
]
