"""``make setup`` and ``make run``: one progress line per set-up step, then the servers.

``python -m devtools.run setup`` starts PostgreSQL and Redis (embedded unless DATABASE_URL /
REDIS_URL are set), migrates and collects static files when they changed;
``python -m devtools.run run`` does the same, then the demo staff account, demo data on a fresh
database (``--demo-args``, ``--no-demo``) and ``manage.py serve``, which prints the URLs and the
demo logins once the web server answers.  docs/operations.md ("make run").
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
import time
from pathlib import Path

from devtools import embedded

STATIC_STAMP = embedded.DATA_DIR / "static.stamp"


class Steps:
    """``[n/N] what`` lines, flushed at once (make's output is not a terminal)."""

    def __init__(self, total: int):
        self.total, self.n, self.started = total, 0, time.monotonic()

    def start(self, text: str) -> None:
        self.n += 1
        print(f"[{self.n}/{self.total}] {text}", flush=True)

    def note(self, text: str) -> None:
        print(f"      {text}", flush=True)


def start_services(steps: Steps) -> None:
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        steps.start("PostgreSQL and Redis: DATABASE_URL and REDIS_URL")
        return
    names = [name for name, url in (("PostgreSQL", "DATABASE_URL"), ("Redis", "REDIS_URL"))
             if not os.environ.get(url)]
    fresh = "PostgreSQL" in names and not (embedded.PG_DIR / "PG_VERSION").exists()
    running = (embedded.postgres_running() or "PostgreSQL" not in names) and (
        embedded.redis_running() or "Redis" not in names)
    if running:
        steps.start(f"Embedded {' and '.join(names)}: running (.data/)")
    else:
        steps.start(f"Starting embedded {' and '.join(names)}"
                    + (" (first run: initialising the database, ~30 s)" if fresh else ""))
    if not os.environ.get("DATABASE_URL"):
        embedded.postgres_url()
    if not os.environ.get("REDIS_URL"):
        embedded.redis_url()


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def migrate(steps: Steps) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        steps.start("Database migrations: up to date")
        return
    first = not executor.loader.applied_migrations
    steps.start(f"Applying {len(plan)} database migrations" + (" (first run: ~1 min)" if first else ""))
    call_command("migrate", interactive=False, verbosity=1 if len(plan) < 20 else 0)


def static_fingerprint() -> str:
    """A hash of every static source file (path, size, mtime) and of the settings that shape
    ``collectstatic``'s output: what changes it when a package or a project file changes."""
    import django
    from django.conf import settings
    from django.contrib.staticfiles.finders import get_finders

    digest = hashlib.sha256()
    digest.update(f"{django.__version__}|{settings.STATIC_URL}|{settings.STATIC_ROOT}|"
                  f"{settings.STORAGES['staticfiles']['BACKEND']}".encode())
    entries = []
    for finder in get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):
            stat = os.stat(storage.path(path))
            entries.append(f"{path}|{stat.st_size}|{stat.st_mtime_ns}")
    for entry in sorted(entries):
        digest.update(entry.encode() + b"\n")
    return f"{len(entries)} {digest.hexdigest()}"


def collect_static(steps: Steps) -> None:
    from django.conf import settings
    from django.core.management import call_command

    fingerprint = static_fingerprint()
    collected = Path(settings.STATIC_ROOT)
    manifest_needed = "Manifest" in settings.STORAGES["staticfiles"]["BACKEND"]
    present = collected.is_dir() and (not manifest_needed or (collected / "staticfiles.json").exists())
    if present and STATIC_STAMP.exists() and STATIC_STAMP.read_text() == fingerprint:
        steps.start("Static files: unchanged since the last collection")
        return
    files = fingerprint.split()[0]
    steps.start(f"Collecting {files} static files (they changed or were never collected: ~1 min)")
    call_command("collectstatic", interactive=False, verbosity=0)
    STATIC_STAMP.parent.mkdir(parents=True, exist_ok=True)
    STATIC_STAMP.write_text(fingerprint)


def demo_data(steps: Steps, demo_args: str | None) -> None:
    from django.core.management import call_command

    from accounts.models import User
    from analytics import demo
    from core import demo_logins

    new_staff = not User.objects.filter(phone=demo_logins.staff_phone()).exists()
    args = shlex.split(demo_args) if demo_args is not None else []
    if demo_args is None:
        text = "Demo data: skipped (DEMO=0)"
    elif not demo.database_is_fresh():
        text = "Demo data: loaded already (`make demo` adds more)"
    else:
        users = args[args.index("--users") + 1] if "--users" in args else "2000"
        text = f"Loading demo data on this fresh database: {users} users (~1-2 min)"
    steps.start(f"Creating the demo staff account; {text[0].lower()}{text[1:]}" if new_staff else text)
    if new_staff:
        call_command("ensure_demo_staff")
    if text.startswith("Loading"):
        call_command("seed_demo", "--if-fresh", *args)


def serve(steps: Steps) -> None:
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    steps.start("Starting the web server, the WebSocket server, the Celery worker and beat")
    call_command("serve")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.run", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("setup", "run"))
    parser.add_argument("--demo-args", default="--users 1000 --hours 1 --density 0.25",
                        help="seed_demo's arguments on a fresh database")
    parser.add_argument("--no-demo", action="store_true", help="no demo data")
    options = parser.parse_args(argv)
    steps = Steps(5 if options.what == "run" else 3)
    try:
        start_services(steps)
        setup_django()
        migrate(steps)
        collect_static(steps)
        if options.what == "run":
            demo_data(steps, None if options.no_demo else options.demo_args)
            serve(steps)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from django.core.management import CommandError

        if isinstance(exc, CommandError):
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
