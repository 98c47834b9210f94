"""manage.py sweep_expired [--dry-run] [--only NAME ...]"""

from django.core.management.base import BaseCommand, CommandError

from locations import sweepers


class Command(BaseCommand):
    help = ("Remove expired data. Pings: day partitions wholly past their expiry are detached and "
            "dropped (short lock timeout, retried); expired rows of partly expired days are deleted in "
            "bounded batches. Other apps register their own steps (locations.sweepers.register_sweeper).")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be removed; change nothing.")
        parser.add_argument("--only", nargs="*", metavar="NAME",
                            help=f"Run only these sweepers (registered: {', '.join(sweepers.sweepers())}).")

    def handle(self, *args, dry_run, only, **options):
        known = sweepers.sweepers()
        unknown = sorted(set(only or ()) - set(known))
        if unknown:
            raise CommandError(f"Unknown sweeper(s): {', '.join(unknown)}; known: {', '.join(known)}.")

        def progress(message):
            self.stdout.write(f"  {message}")

        results = sweepers.run_sweepers(dry_run=dry_run, progress=progress, only=only)
        for name, rows in results.items():
            verb = "would remove" if dry_run else "removed"
            self.stdout.write(self.style.SUCCESS(f"{name}: {verb} {rows} rows"))
