from django.apps import AppConfig


class CrossingsConfig(AppConfig):
    name = "crossings"
    verbose_name = "Crossings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.visibility import register_profile_visibility
        from crossings import receivers, selectors  # noqa: F401  (connects receivers)

        register_profile_visibility(selectors.crossed_rule)
