from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts import signals as account_signals
        from accounts.visibility import register_profile_visibility
        from connections import receivers

        register_profile_visibility(receivers.connected_or_requested)
        account_signals.user_blocked.connect(receivers.on_user_blocked, dispatch_uid="connections.blocked")
        account_signals.user_erasing.connect(receivers.on_user_erasing, dispatch_uid="connections.erasing")
