from django.apps import AppConfig


class LocationsConfig(AppConfig):
    name = "locations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from locations import signals  # noqa: F401  (connects receivers)
