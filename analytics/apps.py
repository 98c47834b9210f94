from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        # Scrape-time collectors (replica lag, queue length, detector lag, pool stats).
        from analytics import metrics

        metrics.register()
