"""Cities are managed in the admin; pings are not shown there (composite key, and privacy)."""

from django.contrib import admin

from locations import services
from locations.models import City


@admin.register(City)
class CityAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "lat", "lng", "radius_km", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("slug", "name")
    readonly_fields = ("created_at",)

    def save_model(self, request, obj, form, change):
        # Through the service: a city and its partitions are made together.
        services.save_city(obj)

    def has_delete_permission(self, request, obj=None):
        # Deleting a city would orphan its partition; deactivate it instead.
        return False
