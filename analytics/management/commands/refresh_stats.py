"""Refresh the statistics materialized views now (beat does it every 5 minutes)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from analytics import selectors, services


class Command(BaseCommand):
    help = (
        "Refresh the statistics materialized views (user_stats_mv and the others) concurrently: "
        "readers keep the previous figures meanwhile. Skips, with exit status 0, if another "
        "refresh is running. --dry-run lists the views and the current figures without refreshing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="show what would be refreshed; change nothing")
        parser.add_argument("--fail-if-busy", action="store_true",
                            help="exit with an error instead of skipping when another refresh is running")

    def handle(self, *args, dry_run=False, fail_if_busy=False, **options):
        views = services.existing_stats_views()
        current = selectors.stats()
        self.stdout.write(f"Statistics views: {', '.join(views) or 'none'}")
        self.stdout.write(f"Current figures refreshed at {current['refreshed_at']}: {current['users']}")
        if dry_run:
            self.stdout.write("Dry run: would refresh " + ", ".join(views) + " concurrently.")
            return
        result = services.refresh_stats(views=views)
        if result.skipped:
            if fail_if_busy:
                raise CommandError("Another statistics refresh is running.")
            self.stdout.write(self.style.WARNING("Another statistics refresh is running; skipped."))
            return
        for name, seconds in result.seconds.items():
            self.stdout.write(f"  {name}: {seconds:.3f} s")
        after = selectors.stats()
        self.stdout.write(self.style.SUCCESS(f"Refreshed at {after['refreshed_at']}: {after['users']}"))
