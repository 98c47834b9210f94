from django.apps import AppConfig


class LocationsConfig(AppConfig):
    name = "locations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts import signals as account_signals
        from locations import receivers

        account_signals.user_erasing.connect(receivers.on_user_erasing, dispatch_uid="locations.erase_pings")
