"""Print the replication lag of each read replica."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.db.replicas import replica_lag


class Command(BaseCommand):
    help = (
        "Show each read replica of settings.REPLICA_ALIASES (from DATABASE_REPLICA_URLS): whether it "
        "answers, its received and replayed WAL positions and its lag in seconds, and whether the "
        "router would use it (lag at most REPLICA_MAX_LAG_S). Read-only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fail-over", type=float, default=None, metavar="SECONDS",
                            help="exit with an error if a replica is down or lags more than SECONDS "
                                 "(for cron or a health check)")

    def handle(self, *args, fail_over=None, **options):
        if fail_over is not None and not (fail_over >= 0):  # also refuses nan
            raise CommandError(f"--fail-over must be a number of seconds, 0 or more (got {fail_over}).")
        aliases = settings.REPLICA_ALIASES
        if not aliases:
            self.stdout.write("no replicas configured (set DATABASE_REPLICA_URLS)")
            return
        problems = []
        self.stdout.write(f"{'alias':<12} {'state':<10} {'lag (s)':>9}  {'received':>14} {'replayed':>14}  usable")
        for alias in aliases:
            status = replica_lag(alias)
            if not status.reachable:
                self.stdout.write(f"{alias:<12} {'DOWN':<10} {'-':>9}  {'-':>14} {'-':>14}  no   {status.error}")
                problems.append(f"{alias} is down")
                continue
            state = "replica" if status.in_recovery else "primary"
            usable = status.lag_seconds <= settings.REPLICA_MAX_LAG_S
            self.stdout.write(
                f"{alias:<12} {state:<10} {status.lag_seconds:>9.2f}  {status.receive_lsn or '-':>14} "
                f"{status.replay_lsn or '-':>14}  {'yes' if usable else 'no'}"
            )
            if fail_over is not None and status.lag_seconds > fail_over:
                problems.append(f"{alias} lags {status.lag_seconds:.1f} s")
        if fail_over is not None and problems:
            raise CommandError("; ".join(problems))
