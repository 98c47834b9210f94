from django.apps import AppConfig


class LocationsConfig(AppConfig):
    name = "locations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from accounts import signals as account_signals
        from locations import receivers, selectors
        from locations.models import City

        account_signals.user_erasing.connect(receivers.on_user_erasing, dispatch_uid="locations.erase_pings")
        post_save.connect(selectors.clear_city_cache, sender=City, dispatch_uid="locations.city_cache.save")
        post_delete.connect(selectors.clear_city_cache, sender=City, dispatch_uid="locations.city_cache.delete")
