"""The data set a load run needs: seeded users with pings, crossings, connections, messages and
stories (``seed_demo``), so that every request of the mix has something to read.

An empty database makes a load test lie: crossings and connections come back as empty pages,
the chat requests never run, and the figures describe an app nobody uses.  So the harness
seeds what is missing, or refuses with a clear message when told not to seed.
"""

from __future__ import annotations

import subprocess
import sys

from bench.harness import servers
from bench.harness.common import BASE_DIR

# Fewer seeded users than this make thin neighbourhoods (few crossings, few connections).
MIN_SEEDED = 1000
SEED_ARGS = ["--hours", "1", "--density", "0.25", "--seed", "17"]


def _count(sql: str) -> int:
    return int(servers.psql(sql, database=servers.DB_NAME) or 0)


def counts() -> dict[str, int]:
    """Seeded users (plain ``Bench n`` accounts left out) and what they have, in the bench database."""
    return {
        "seeded_users": _count("SELECT count(*) FROM users WHERE is_active AND NOT is_staff "
                               "AND display_name NOT LIKE 'Bench %'"),
        "crossings": _count("SELECT count(*) FROM crossings"),
        "accepted_connections": _count("SELECT count(*) FROM connections WHERE status = 'accepted'"),
    }


def ensure_seeded(users: int, *, seed: bool = True, out=print) -> dict[str, int]:
    """At least ``max(users, MIN_SEEDED)`` seeded users with crossings and connections.

    Seeds the difference with ``seed_demo`` (its progress lines pass through), or, with
    ``seed=False``, exits with a message saying what is missing and how to add it.
    """
    wanted = max(users, MIN_SEEDED)
    have = counts()
    if have["seeded_users"] >= wanted and have["crossings"] and have["accepted_connections"]:
        out(f"data set: {have['seeded_users']} seeded users, {have['crossings']} crossings, "
            f"{have['accepted_connections']} accepted connections (wanted {wanted} users): ready")
        return have
    if not seed:
        raise SystemExit(
            f"The bench database has {have['seeded_users']} seeded users, {have['crossings']} crossings and "
            f"{have['accepted_connections']} accepted connections; this run needs {wanted} seeded users with "
            f"crossings and connections, or a quarter of the mix would read empty pages. Run it without "
            f"--no-seed (SEED=1, the default) to seed them with seed_demo.")
    missing = max(wanted - have["seeded_users"], 0) or wanted
    out(f"data set: {have['seeded_users']} seeded users; seeding {missing} more with seed_demo "
        f"(pings, crossings, connections, messages, stories; about a minute per 2 000 users)")
    proc = subprocess.run([sys.executable, "manage.py", "seed_demo", "--users", str(missing), *SEED_ARGS],
                          cwd=BASE_DIR, env=servers.env())
    if proc.returncode != 0:
        raise SystemExit(f"seed_demo failed (exit {proc.returncode}); the load run did not start")
    return counts()
