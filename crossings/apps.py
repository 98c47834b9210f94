from django.apps import AppConfig


class CrossingsConfig(AppConfig):
    name = "crossings"
    verbose_name = "Crossings"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.visibility import register_profile_visibility
        from crossings import receivers, selectors  # noqa: F401  (connects receivers)

        register_profile_visibility(selectors.crossed_rule)
        _register_sweeper()


def _register_sweeper():
    """Crossings expire with locations' expiry sweep (its extension point)."""
    from locations.sweepers import register_sweeper

    @register_sweeper("crossings")
    def sweep_crossings(now, dry_run, progress) -> int:
        from crossings.services import sweep_expired_crossings

        return sweep_expired_crossings(now=now, dry_run=dry_run, progress=progress)
