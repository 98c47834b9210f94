"""Pre-create the simulated users' accounts and write them to a JSON file for the locustfile.

    python -m bench.harness.prepare --users 200 --out bench/results/.users.json [--tokens]

Run inside the app's environment (the bench servers' DATABASE_URL); how: docs/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

BENCH_PASSWORD = "bench-password-2026"
BENCH_PHONE_BASE = 2_125_550_000  # +1 212 555 xxxx style numbers, unique per index


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    import django

    django.setup()


def ensure_users(count: int) -> int:
    """Make sure at least ``count`` active, non-staff users exist; return how many were created."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import User

    existing = User.objects.filter(is_active=True, is_staff=False).count()
    missing = count - existing
    if missing <= 0:
        return 0
    password = make_password(BENCH_PASSWORD)
    taken = set(User.objects.values_list("phone", flat=True))
    rows, n = [], 0
    while len(rows) < missing:
        phone = f"+1{BENCH_PHONE_BASE + n:010d}"
        n += 1
        if phone in taken:
            continue
        rows.append(User(phone=phone, password=password, display_name=f"Bench {n}", is_verified=True))
    User.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def last_pings(user_ids: list) -> dict:
    """Latest ping per user as ``(lat, lng, recorded_at)``, where the locations app keeps them (best effort)."""
    from django.db import connection

    try:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT ON (user_id) user_id::text, lat, lng, recorded_at FROM locations_ping "
                "WHERE user_id = ANY(%s) ORDER BY user_id, recorded_at DESC",
                [[str(u) for u in user_ids]],
            )
            return {row[0]: (float(row[1]), float(row[2]), row[3]) for row in cur.fetchall()}
    except Exception:  # another table layout, or no pings yet: the city centres below
        return {}


def last_positions(user_ids: list) -> dict:
    """Latest ping position per user (best effort)."""
    return {user_id: (lat, lng) for user_id, (lat, lng, _at) in last_pings(user_ids).items()}


def _city_centres() -> list[tuple[float, float]]:
    try:
        from locations.models import City

        centres = [(float(c.lat), float(c.lng)) for c in City.objects.all()]
        if centres:
            return centres
    except Exception:
        pass
    # The five cities of the load model, if the locations app has none yet.
    return [(52.52, 13.405), (48.8566, 2.3522), (51.5074, -0.1278), (40.7128, -74.006), (37.7749, -122.4194)]


def prepare(count: int, tokens: bool) -> list[dict]:
    from django.contrib.auth.hashers import make_password

    from accounts import services
    from accounts.models import User

    created = ensure_users(count)
    # Seeded users (with crossings, connections, stories) first; plain bench users only to fill up.
    active = User.objects.filter(is_active=True, is_staff=False).order_by("created_at", "id")
    users = list(active.exclude(display_name__startswith="Bench ")[:count])
    users += list(active.filter(display_name__startswith="Bench ")[: count - len(users)])
    User.objects.filter(pk__in=[u.pk for u in users]).update(password=make_password(BENCH_PASSWORD))
    positions = last_positions([u.pk for u in users])
    centres = _city_centres()
    out = []
    for i, user in enumerate(users):
        lat, lng = positions.get(str(user.pk), centres[i % len(centres)])
        row = {"id": str(user.pk), "phone": user.phone, "password": BENCH_PASSWORD, "lat": lat, "lng": lng}
        if tokens:
            _session, access, _refresh = services.open_session(user, user_agent="bench", ip="127.0.0.1")
            row["access"] = access
        out.append(row)
    print(json.dumps({"users": len(out), "created": created, "with_positions": len(positions)}))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tokens", action="store_true")
    args = parser.parse_args(argv)
    _setup_django()
    rows = prepare(args.users, args.tokens)
    with open(args.out, "w") as fh:
        json.dump(rows, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
