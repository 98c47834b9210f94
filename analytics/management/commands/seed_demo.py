"""Generate a realistic demo data set (see analytics/demo.py)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from analytics import demo
from analytics.progress import Activity, Progress
from core import demo_logins


class Command(BaseCommand):
    help = (
        "Generate demo data the way the load model describes it: USERS users in 5 cities with dense "
        "centres, walking and pinging every 30 s for HOURS, crossings found by running the real "
        "detector, connections between crossed users (most accepted) with chat messages, and live "
        "stories. Everything is bulk-loaded with COPY: 100 000 users with an hour of pings take "
        "minutes. Demo users have phones +49 152 0xxxxxxx and the password "
        f"'{demo.DEMO_PASSWORD}'. Running it again adds more users."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=2000, help="how many users to create (default 2000)")
        parser.add_argument("--hours", type=float, default=1.0,
                            help="hours of walking (pings) to generate, ending now (default 1; at most 24)")
        parser.add_argument("--ping-interval", type=int, default=30, help="seconds between pings (default 30)")
        parser.add_argument("--connect-fraction", type=float, default=0.3,
                            help="share of crossed pairs that connect (default 0.3)")
        parser.add_argument("--messages", type=int, default=3, help="average chat messages per connection")
        parser.add_argument("--story-fraction", type=float, default=0.2, help="share of users with a live story")
        parser.add_argument("--density", type=float, default=1.0,
                            help="users per km², relative to the load model (default 1: 100/km² in centres; "
                                 "areas shrink with fewer users to keep it)")
        parser.add_argument("--no-detect", action="store_true", help="do not run the crossing detector")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for a reproducible data set")
        parser.add_argument("--if-empty", action="store_true",
                            help="do nothing if demo users exist already")
        parser.add_argument("--if-fresh", action="store_true",
                            help="do nothing unless the database is fresh (no users besides staff): what "
                                 "`make run` uses to offer demo data once")
        parser.add_argument("--dry-run", action="store_true", help="print what would be generated; write nothing")

    def handle(self, *args, **o):
        options = self._options(o)
        if o["if_empty"] and demo.demo_users_exist():
            self.stdout.write("Demo users exist already; nothing to do (drop --if-empty to add more).")
            return
        if o["if_fresh"] and not demo.database_is_fresh():
            self.stdout.write("The database has users already; no demo data added (`make demo` adds some).")
            return
        plan = demo.plan(options)
        self.stdout.write(
            f"Demo data: {plan.users} users in {', '.join(plan.cities)} (new: {', '.join(plan.new_cities) or 'none'}); "
            f"centres {plan.side_centre_km:.1f} km, outer areas {plan.side_outer_km:.1f} km wide; "
            f"{plan.pings} pings over {options.hours:g} h; then {', '.join(plan.parts[2:])}."
        )
        if o["dry_run"]:
            self.stdout.write("Dry run: nothing written.")
            return
        quiet = o["verbosity"] < 1

        # Progress goes to stderr (a bar on a terminal, a line per step in a log); results to stdout.
        def progress(label, total):
            return Progress(label, total, stream=self.stderr._out, enabled=not quiet)

        def activity(label):
            return Activity(label, stream=self.stderr._out, enabled=not quiet)

        result = demo.seed(options, progress, activity)
        self.stdout.write(self.style.SUCCESS("Demo data ready: " + demo.as_text(result).strip()))
        for part in result.skipped:
            self.stdout.write(self.style.WARNING(f"skipped: {part}"))
        if result.sample_phone:
            self.stdout.write(f"Log in as a demo user: phone {result.sample_phone}  password {demo.DEMO_PASSWORD}")
            sample = User.objects.filter(phone=result.sample_phone).first()
            if sample is not None:
                demo_logins.remember("user", sample, demo.DEMO_PASSWORD)

    def _options(self, o) -> demo.SeedOptions:
        if o["users"] < 1 or o["users"] > 5_000_000:
            raise CommandError("--users must be between 1 and 5 000 000.")
        if not 0 < o["hours"] <= 24:
            raise CommandError("--hours must be more than 0 and at most 24 (pings expire after 24 h).")
        if not 5 <= o["ping_interval"] <= 3600:
            raise CommandError("--ping-interval must be between 5 and 3600 seconds.")
        for name in ("connect_fraction", "story_fraction"):
            if not 0 <= o[name] <= 1:
                raise CommandError(f"--{name.replace('_', '-')} must be between 0 and 1.")
        if not 0.01 <= o["density"] <= 10:
            raise CommandError("--density must be between 0.01 and 10.")
        if not 0 <= o["messages"] <= 100:
            raise CommandError("--messages must be between 0 and 100.")
        if o["seed"] is not None and not 0 <= o["seed"] < 2**32:
            raise CommandError("--seed must be a whole number between 0 and 4294967295.")
        return demo.SeedOptions(
            users=o["users"], hours=o["hours"], ping_interval_s=o["ping_interval"],
            connect_fraction=o["connect_fraction"], messages_per_connection=o["messages"],
            story_fraction=o["story_fraction"], detect=not o["no_detect"], seed=o["seed"], density=o["density"],
        )
