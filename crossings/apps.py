from django.apps import AppConfig


class CrossingsConfig(AppConfig):
    name = "crossings"
    verbose_name = "Crossings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts import signals as account_signals
        from accounts.visibility import register_profile_visibility
        from core.observability import health
        from crossings import receivers, selectors
        from locations.sweepers import register_sweeper

        register_profile_visibility(selectors.crossed_rule, entries=selectors.crossed_rule_entries)
        register_sweeper("crossings")(receivers.sweep)
        health.register_check("detector", receivers.detector_ready)
        account_signals.user_blocked.connect(receivers.on_block_changed, dispatch_uid="crossings.block")
        account_signals.user_unblocked.connect(receivers.on_block_changed, dispatch_uid="crossings.unblock")
        account_signals.profile_changed.connect(receivers.on_profile_changed, dispatch_uid="crossings.profile")
        account_signals.user_erasing.connect(receivers.on_profile_changed, dispatch_uid="crossings.erasing")
        from django.db.models.signals import pre_save

        from locations.models import City

        pre_save.connect(receivers.on_city_saving, sender=City, dispatch_uid="crossings.city_area")
