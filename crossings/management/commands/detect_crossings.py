"""``manage.py detect_crossings``: process every pending ping now, print what was done, exit."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from crossings.detection.run import run_detection, shard_count


class Command(BaseCommand):
    help = (
        "Detect crossings in every ping ingested since the last run (the same work the beat task "
        "does every minute), then exit.  Safe to run beside the beat task: runs take turns."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="Find matches and report them, but write nothing and keep the watermark.")
        parser.add_argument("--no-wait", action="store_true",
                            help="Exit at once if another detector is running instead of waiting for it.")
        parser.add_argument("--shard", type=int, default=None,
                            help="Only this detection shard (0 .. CROSSING_SHARDS - 1); default: every shard in turn.")

    def handle(self, *args, dry_run=False, no_wait=False, shard=None, verbosity=1, **options):
        progress = self.stdout.write if verbosity >= 1 else None
        count = shard_count()
        if shard is not None and not 0 <= shard < count:
            raise CommandError(f"--shard must be between 0 and {count - 1} (CROSSING_SHARDS={count})")
        if progress:
            progress("detect_crossings: claiming the next batch" + (" (dry run)" if dry_run else ""))
        result = run_detection(wait=not no_wait, dry_run=dry_run, progress=progress, shard=shard)
        prefix = "dry run: would record " if dry_run else ""
        self.stdout.write(self.style.SUCCESS(f"{prefix}{result.summary()}"))
        if verbosity >= 2:
            for name, seconds in result.timings.items():
                self.stdout.write(f"  {name}: {seconds:.3f} s")
