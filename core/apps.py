from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Platform"

    def ready(self):
        from core.api import middleware  # noqa: F401  (registers its system check)
        from core.cache import raw_writes
        from core.db import router
        from core.observability import metrics

        raw_writes.install()
        router.connect_signals()
        metrics.connect_signals()
