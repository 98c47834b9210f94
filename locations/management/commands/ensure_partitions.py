"""manage.py ensure_partitions [--days-ahead N] [--dry-run]"""

from django.core.management.base import BaseCommand, CommandError

from locations import services


class Command(BaseCommand):
    help = ("Create every missing partition of the pings table: each city's LIST partition and day "
            "partitions from the oldest retained day to N days ahead. Idempotent; beat runs it hourly. "
            "Rows a DEFAULT partition caught for a new day are moved into it.")

    def add_arguments(self, parser):
        parser.add_argument("--days-ahead", type=int, default=3, help="Days ahead to create (default 3).")
        parser.add_argument("--dry-run", action="store_true", help="List what would be created; change nothing.")

    def handle(self, *args, days_ahead, dry_run, **options):
        if not 0 <= days_ahead <= 60:
            raise CommandError("--days-ahead must be between 0 and 60.")
        if dry_run:
            missing = services.missing_partitions(days_ahead)
            for name, _ in missing:
                self.stdout.write(f"would create {name}")
            self.stdout.write(f"{len(missing)} partitions would be created.")
            return
        total = len(services.missing_partitions(days_ahead))
        done = 0

        def progress(name):
            nonlocal done
            done += 1
            self.stdout.write(f"[{done}/{total}] created {name}")

        result = services.ensure_partitions(days_ahead=days_ahead, progress=progress)
        self.stdout.write(self.style.SUCCESS(
            f"{len(result.created)} partitions created, {result.moved_rows} rows moved out of DEFAULT partitions."))
