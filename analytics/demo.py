"""A realistic demo data set, generated fast (``manage.py seed_demo``).

Shaped after docs/load-model.md; rows go in by ``COPY`` and crossings come from the real detector.
Design: docs/subsystems/analytics.md.
"""

from __future__ import annotations

import io
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ReportReason, User, UserReport
from analytics import services as analytics_services
from analytics.progress import Activity, Progress
from connections.models import Connection, Message
from core import geo
from core.ids import uuid7
from crossings.detection.run import run_detection
from locations import partitions
from locations import services as location_services
from locations.models import City
from stories.models import Story, StoryKind, StoryReport, StoryReportReason, Visibility

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "crossings-demo"
DEMO_PHONE_PREFIX = "+49152"  # +49 152 xxxxxxxx (8 digits): valid German mobile numbers; demo rows only
DEMO_PHONE_DIGITS = 8
LOAD_MODEL_USERS = 100_000
WALK_SPEED_MS = 1.4

# (slug, name, lat, lng): the five cities of the load model.
DEMO_CITIES = (
    ("berlin", "Berlin", 52.5200, 13.4050),
    ("paris", "Paris", 48.8566, 2.3522),
    ("london", "London", 51.5074, -0.1278),
    ("madrid", "Madrid", 40.4168, -3.7038),
    ("rome", "Rome", 41.9028, 12.4964),
)
FIRST_NAMES = (
    "Mia", "Noah", "Lea", "Ben", "Emma", "Paul", "Lina", "Finn", "Ella", "Leon", "Clara", "Jonas", "Ida",
    "Elias", "Sofia", "Luca", "Alba", "Hugo", "Nora", "Mateo", "Chloe", "Louis", "Amira", "Omar", "Yara",
    "Aria", "Theo", "Zoe", "Liam", "Maya", "Adam", "Giulia", "Marco", "Ines", "Pablo", "Lucia", "Arthur",
)
BIOS = ("", "", "Coffee, bikes, long walks.", "New in town.", "Runner. Reader.", "Say hi if we crossed!",
        "Photographer on weekends.", "Always at the market on Saturdays.")
MESSAGES = ("Hey! I think we crossed near the station?", "Hi :)", "Were you at the market this morning?",
            "Nice to meet you!", "Coffee sometime?", "Haha yes, that was me", "See you around!",
            "Which café was that?", "I walk there every day", "Small world!")
STORY_CAPTIONS = ("Morning light", "Best coffee in town", "Sunset walk", "Market day", "", "Rainy streets")
# What moderators find in their two queues (admin: user reports, story reports).
USER_REPORT_TEXTS = (
    (ReportReason.SPAM, "Sends the same link to everyone they cross, looks like an ad for a crypto site."),
    (ReportReason.SPAM, "Asked me to move to another app within a minute of connecting."),
    (ReportReason.ABUSE, "Kept messaging after I asked them to stop, getting rude."),
    (ReportReason.ABUSE, "Insulted me in chat because I did not answer fast enough."),
    (ReportReason.INAPPROPRIATE, "Profile bio is sexually explicit."),
    (ReportReason.INAPPROPRIATE, "Sent unsolicited explicit messages."),
    (ReportReason.IMPERSONATION, "Uses the name and photo of a local musician, not them."),
    (ReportReason.IMPERSONATION, "Pretends to be my friend; my friend does not use this app."),
    (ReportReason.OTHER, "Seems to be under 18."),
    (ReportReason.OTHER, "Says they follow me around the market every Saturday, feels creepy."),
)
STORY_REPORT_TEXTS = (
    (StoryReportReason.SPAM, "Advertising a club night, posted again every hour."),
    (StoryReportReason.SPAM, "Just a phone number and 'call me for deals'."),
    (StoryReportReason.ABUSE, "Mocks a person who is clearly recognisable in the picture."),
    (StoryReportReason.ABUSE, "Hateful caption about a neighbourhood's residents."),
    (StoryReportReason.INAPPROPRIATE, "Nudity in a public story."),
    (StoryReportReason.INAPPROPRIATE, "Shows someone's licence plate and house number."),
    (StoryReportReason.INAPPROPRIATE, ""),
)


@dataclass
class SeedOptions:
    users: int = 2000
    hours: float = 1.0
    ping_interval_s: int = 30
    connect_fraction: float = 0.3
    messages_per_connection: int = 3
    story_fraction: float = 0.2
    detect: bool = True
    seed: int | None = None
    density: float = 1.0  # users per km², relative to the load model's


@dataclass
class SeedPlan:
    """What a run would create (``--dry-run`` prints it)."""

    users: int
    cities: list[str]
    new_cities: list[str]
    pings: int
    side_centre_km: float
    side_outer_km: float
    parts: list[str]


@dataclass
class SeedResult:
    users: int = 0
    pings: int = 0
    crossings: int = 0
    connections: int = 0
    messages: int = 0
    stories: int = 0
    user_reports: int = 0
    story_reports: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    sample_phone: str | None = None
    skipped: list[str] = field(default_factory=list)


ProgressFactory = Callable[[str, int], Progress]
ActivityFactory = Callable[[str], Activity]


def _no_activity(label: str) -> Activity:
    return Activity(label, enabled=False)


def area_sides_km(users: int) -> tuple[float, float]:
    """Sides of the centre and outer squares, scaled to keep the load model's density."""
    scale = min(1.0, math.sqrt(max(users, 1) / LOAD_MODEL_USERS))
    return max(10.0 * scale, 0.5), max(30.0 * scale, 1.5)


def scaled_sides_km(users: int, density: float) -> tuple[float, float]:
    """``area_sides_km`` at ``density`` times the load model's density, inside the city circle
    (radius 25 km: a square of side at most 35 km fits)."""
    stretch = math.sqrt(1 / density)
    centre, outer = area_sides_km(users)
    return min(centre * stretch, 35.0), min(outer * stretch, 35.0)


def _steps(options: SeedOptions) -> int:
    return max(1, int(options.hours * 3600 // options.ping_interval_s))


def plan(options: SeedOptions) -> SeedPlan:
    existing = set(City.objects.filter(slug__in=[c[0] for c in DEMO_CITIES]).values_list("slug", flat=True))
    centre, outer = scaled_sides_km(options.users, options.density)
    parts = ["users", "pings"]
    parts += ["crossings (detector)"] if options.detect else []
    parts += ["connections", "messages", "stories", "reports"]
    return SeedPlan(
        users=options.users,
        cities=[c[0] for c in DEMO_CITIES],
        new_cities=[c[0] for c in DEMO_CITIES if c[0] not in existing],
        pings=options.users * _steps(options),
        side_centre_km=centre,
        side_outer_km=outer,
        parts=parts,
    )


# --------------------------------------------------------------------------- cities


def ensure_cities() -> list:
    """The five demo cities, created (with their partitions) through locations' service."""
    cities = []
    for slug, name, lat, lng in DEMO_CITIES:
        city = City.objects.filter(slug=slug).first()
        if city is None:
            city = location_services.create_city(slug=slug, name=name, lat=lat, lng=lng, radius_km=25.0)
        cities.append(city)
    return cities


def _ensure_ping_partitions(start: datetime, end: datetime) -> None:
    """Day partitions covering [start, end] exist for every city (create_city makes -1..+2 days)."""
    day = start.astimezone(UTC).date()
    while day <= end.astimezone(UTC).date():
        for list_name in _city_list_partitions():
            partitions.create_day_partition(list_name, day)
        day += timedelta(days=1)


def _city_list_partitions() -> list[str]:
    return [partitions.list_partition(city_id) for city_id in City.objects.values_list("id", flat=True)]


# ---------------------------------------------------------------------------- users


def _copy(sql: str, lines: list[str]) -> None:
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write("".join(lines))


def _next_phone_number() -> int:
    with connection.cursor() as cursor:
        # Only numbers of the current length: an older data set may hold shorter (invalid) ones.
        cursor.execute("SELECT max(phone) FROM users WHERE phone LIKE %s",
                       [DEMO_PHONE_PREFIX + "_" * DEMO_PHONE_DIGITS])
        top = cursor.fetchone()[0]
    return int(top[len(DEMO_PHONE_PREFIX):]) + 1 if top else 1


def create_users(count: int, rng: random.Random, now: datetime, progress: ProgressFactory) -> list[str]:
    """COPY ``count`` demo users; they share one password (hashed once)."""
    password = make_password(DEMO_PASSWORD)
    start = _next_phone_number()
    if start + count > 10**DEMO_PHONE_DIGITS:
        raise ValueError("The demo phone range (+49 152 00000001..99999999) is exhausted.")
    ids: list[str] = []
    chunk = 50_000
    columns = ("id, phone, password, display_name, bio, avatar, is_verified, ghost_mode, trust_level, "
               "is_shadow_banned, is_active, is_staff, is_superuser, created_at, last_active_at")
    with progress("users", count) as bar:
        for offset in range(0, count, chunk):
            lines = []
            for n in range(start + offset, start + min(offset + chunk, count)):
                user_id = str(uuid7())
                ids.append(user_id)
                created = now - timedelta(seconds=rng.random() * 30 * 86400 if rng.random() > 0.05
                                          else rng.random() * 86400)
                active = now - timedelta(seconds=rng.random() * 3 * 3600)
                name = f"{rng.choice(FIRST_NAMES)} {chr(65 + rng.randrange(26))}."
                verified = "t"  # demo users have verified phones: only those are ever crossed
                phone = f"{DEMO_PHONE_PREFIX}{n:0{DEMO_PHONE_DIGITS}d}"
                lines.append(
                    f"{user_id}\t{phone}\t{password}\t{name}\t{rng.choice(BIOS)}\t\t{verified}\t"
                    f"f\t{1 if verified == 't' else 0}\tf\tt\tf\tf\t{created.isoformat()}\t{active.isoformat()}\n"
                )
            _copy(f"COPY users ({columns}) FROM STDIN", lines)
            bar.advance(len(lines))
    return ids


# ---------------------------------------------------------------------------- pings


def _walks(n: int, steps: int, interval: int, side_centre_m: float, side_outer_m: float, rng: np.random.Generator):
    """Yield, per time step, the (x, y) positions in metres of ``n`` walkers around a centre."""
    half_c, half_o = side_centre_m / 2, side_outer_m / 2
    in_centre = np.arange(n) < n // 2
    bound = np.where(in_centre, half_c, half_o)
    x = rng.uniform(-1, 1, n) * bound
    y = rng.uniform(-1, 1, n) * bound
    heading = rng.uniform(0, 2 * np.pi, n)
    stay_left = np.where(rng.random(n) < 0.4, rng.uniform(5 * 60, 30 * 60, n), 0.0)
    step_m = WALK_SPEED_MS * interval
    stop_probability = interval / 600.0  # walks last about 10 minutes between stops
    for _ in range(steps):
        yield x, y
        moving = stay_left <= 0
        heading = heading + rng.normal(0, 0.6, n)
        x = x + np.where(moving, np.cos(heading) * step_m, 0.0)
        y = y + np.where(moving, np.sin(heading) * step_m, 0.0)
        # Stay inside the user's area: walk back in when crossing its edge.
        out_x, out_y = np.abs(x) > bound, np.abs(y) > bound
        x = np.where(out_x, np.sign(x) * bound * 2 - x, x)
        y = np.where(out_y, np.sign(y) * bound * 2 - y, y)
        heading = np.where(out_x | out_y, heading + np.pi, heading)
        stay_left = np.where(moving, 0.0, stay_left - interval)
        start_stay = moving & (rng.random(n) < stop_probability)
        stay_left = np.where(start_stay, rng.uniform(5 * 60, 30 * 60, n), stay_left)


_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
# One row of locations_ping in PostgreSQL's binary COPY format: field count, then each
# field's length and big-endian value.  numpy writes millions of these a second.
_PING_ROW = np.dtype([
    ("nfields", ">i2"),
    ("l_user", ">i4"), ("user_id", "S16"),
    ("l_city", ">i4"), ("city_id", ">i4"),
    ("l_rec", ">i4"), ("recorded_at", ">i8"),
    ("l_lat", ">i4"), ("lat", ">f8"),
    ("l_lng", ">i4"), ("lng", ">f8"),
    ("l_acc", ">i4"), ("accuracy_m", ">f4"),
    ("l_status", ">i4"), ("status", ">i2"),
    ("l_exp", ">i4"), ("expires_at", ">i8"),
])
PING_COLUMNS = "user_id, city_id, recorded_at, lat, lng, accuracy_m, status, expires_at"


def _ping_rows(user_bytes: np.ndarray, city_id: int, recorded_us: np.ndarray, lat: np.ndarray, lng: np.ndarray,
               accuracy: np.ndarray, retention_us: int) -> np.ndarray:
    rows = np.zeros(len(user_bytes), dtype=_PING_ROW)
    rows["nfields"] = 8
    for name, size in (("l_user", 16), ("l_city", 4), ("l_rec", 8), ("l_lat", 8), ("l_lng", 8), ("l_acc", 4),
                       ("l_status", 2), ("l_exp", 8)):
        rows[name] = size
    rows["user_id"], rows["city_id"], rows["recorded_at"] = user_bytes, city_id, recorded_us
    rows["lat"], rows["lng"], rows["accuracy_m"] = lat, lng, accuracy
    rows["status"], rows["expires_at"] = 0, recorded_us + retention_us
    return rows


def _copy_pings(chunks: list[np.ndarray]) -> None:
    payload = _COPY_SIGNATURE + b"".join(chunk.tobytes() for chunk in chunks) + b"\xff\xff"
    with connection.cursor() as cursor, cursor.cursor.copy(
        f"COPY locations_ping ({PING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.write(payload)


def create_pings(user_ids: list[str], cities: list, options: SeedOptions, now: datetime,
                 progress: ProgressFactory) -> int:
    """COPY (binary) every user's walk as pings, city by city, a few time steps per chunk."""
    steps, interval = _steps(options), options.ping_interval_s
    start = now - timedelta(seconds=steps * interval)
    _ensure_ping_partitions(start, now)
    side_c, side_o = (km * 1000 for km in scaled_sides_km(len(user_ids), options.density))
    rng = np.random.default_rng(options.seed)
    retention_us = int(timedelta(hours=settings.PING_RETENTION_HOURS).total_seconds() * 1_000_000)
    start_us = int((start - _PG_EPOCH).total_seconds() * 1_000_000)
    groups = [user_ids[i::len(cities)] for i in range(len(cities))]
    total = 0
    with progress("pings", len(user_ids) * steps) as bar:
        for city, ids in zip(cities, groups, strict=True):
            if not ids:
                continue
            user_bytes = np.array([uuid.UUID(uid).bytes for uid in ids], dtype="S16")
            jitter_us = rng.integers(0, interval * 1_000_000, len(ids))
            m_per_deg_lng = geo.M_PER_DEG * math.cos(math.radians(city.lat))
            chunks, pending = [], 0
            for step, (x, y) in enumerate(_walks(len(ids), steps, interval, side_c, side_o, rng)):
                noise = rng.normal(0, 4, (2, len(ids)))
                chunks.append(_ping_rows(
                    user_bytes, city.id, start_us + step * interval * 1_000_000 + jitter_us,
                    city.lat + (y + noise[0]) / geo.M_PER_DEG, city.lng + (x + noise[1]) / m_per_deg_lng,
                    rng.uniform(4, 25, len(ids)), retention_us,
                ))
                pending += len(ids)
                if pending >= 500_000:
                    _copy_pings(chunks)
                    bar.advance(pending)
                    total, chunks, pending = total + pending, [], 0
            if chunks:
                _copy_pings(chunks)
                bar.advance(pending)
                total += pending
    return total


# ------------------------------------------------------------------- crossings (detector)


def run_detector(activity: ActivityFactory, pings: int) -> None:
    """Run the real detector once: it processes every pending ping, the demo's included.

    One long transaction of unknown length (minutes at 20 000 users): a status line moves
    while it runs and says when matching is over and the crossings are being stored."""
    with activity("crossings (detector)") as status:
        status.note(f"matching {pings:,} new pings")

        def matched(line: str) -> None:  # the detector's progress line, once per time cluster
            found = re.search(r"(\d+) encounters", line)
            status.note(f"{int(found.group(1)):,} encounters found; storing the crossings" if found
                        else "storing the crossings")

        run_detection(wait=True, progress=matched)


# ------------------------------------------------------------- connections and messages


def create_connections(user_ids: list[str], options: SeedOptions, now: datetime, rng: random.Random,
                       progress: ProgressFactory, activity: ActivityFactory = _no_activity) -> tuple[int, int]:
    """Connect a share of the demo users' crossed pairs (most accepted), and let them chat."""
    with activity("crossed pairs") as status, connection.cursor() as cursor:
        status.note("finding the pairs to connect")
        cursor.execute(
            "SELECT c.user_low_id, c.user_high_id, c.last_crossed_at FROM crossings c "
            "WHERE c.user_low_id = ANY(%s::uuid[]) AND c.user_high_id = ANY(%s::uuid[]) "
            "AND NOT EXISTS (SELECT 1 FROM connections k WHERE k.user_low_id = c.user_low_id "
            "AND k.user_high_id = c.user_high_id)",
            [user_ids, user_ids],
        )
        pairs = [row for row in cursor.fetchall() if rng.random() < options.connect_fraction]
    conn_lines, msg_lines = [], []
    with progress("connections", len(pairs)) as bar:
        for low, high, crossed_at in pairs:
            conn_id = uuid7()
            requester, other = (low, high) if rng.random() < 0.5 else (high, low)
            accepted = rng.random() < 0.8
            created = crossed_at + timedelta(minutes=rng.uniform(1, 30))
            created = min(created, now)
            responded = min(created + timedelta(minutes=rng.uniform(1, 60)), now) if accepted else None
            conn_lines.append(
                f"{conn_id}\t{low}\t{high}\t{requester}\t{'accepted' if accepted else 'pending'}\t"
                f"{created.isoformat()}\t{(responded or created).isoformat()}\t"
                f"{responded.isoformat() if responded else chr(92) + 'N'}\n"
            )
            if responded is not None:
                at = responded
                for i in range(rng.randint(0, options.messages_per_connection * 2)):
                    at = min(at + timedelta(minutes=rng.uniform(0.5, 20)), now)
                    sender = requester if i % 2 == 0 else other
                    msg_lines.append(f"{uuid7()}\t{conn_id}\t{sender}\t{rng.choice(MESSAGES)}\tf\t{at.isoformat()}\n")
            bar.advance()
    if conn_lines:
        _copy(f"COPY {Connection._meta.db_table} (id, user_low_id, user_high_id, requester_id, status, created_at, "
              "updated_at, responded_at) FROM STDIN", conn_lines)
    chunk = 20_000
    with progress("messages", len(msg_lines)) as bar:
        for offset in range(0, len(msg_lines), chunk):
            lines = msg_lines[offset:offset + chunk]
            _copy(f"COPY {Message._meta.db_table} (id, connection_id, sender_id, body, erased, created_at) "
                  "FROM STDIN", lines)
            bar.advance(len(lines))
    return len(conn_lines), len(msg_lines)


# ---------------------------------------------------------------------------- stories


def create_stories(user_ids: list[str], cities: list, options: SeedOptions, now: datetime, rng: random.Random,
                   progress: ProgressFactory) -> int:
    """Live text stories for a share of the users, placed (coarsened) in their city."""
    ttl = timedelta(hours=settings.STORY_TTL_HOURS)
    groups = {uid: cities[i % len(cities)] for i, uid in enumerate(user_ids)}
    authors = [uid for uid in user_ids if rng.random() < options.story_fraction]
    side_km = scaled_sides_km(len(user_ids), options.density)[0]
    batch: list[Story] = []
    with progress("stories", len(authors)) as bar:
        for uid in authors:
            city = groups[uid]
            m_per_deg_lng = geo.M_PER_DEG * math.cos(math.radians(city.lat))
            lat = city.lat + rng.uniform(-0.5, 0.5) * side_km * 1000 / geo.M_PER_DEG
            lng = city.lng + rng.uniform(-0.5, 0.5) * side_km * 1000 / m_per_deg_lng
            cell, place_lat, place_lng = geo.coarse_place(lat, lng)
            created = now - timedelta(seconds=rng.random() * ttl.total_seconds() * 0.9)
            text = rng.choice(STORY_CAPTIONS) or "Out and about"
            batch.append(Story(
                id=uuid7(), author_id=uid, kind=StoryKind.TEXT, text=text,
                visibility=Visibility.PUBLIC if rng.random() < 0.5 else Visibility.CONNECTIONS,
                place_cell=cell, place_lat=place_lat, place_lng=place_lng, created_at=created, expires_at=created + ttl,
            ))
            if len(batch) >= 5000:
                Story.objects.bulk_create(batch)
                bar.advance(len(batch))
                batch = []
        if batch:
            Story.objects.bulk_create(batch)
            bar.advance(len(batch))
    return len(authors)


# ---------------------------------------------------------------------------- reports


def create_reports(user_ids: list[str], now: datetime, rng: random.Random, progress: ProgressFactory,
                   limit: int = 30) -> tuple[int, int]:
    """A few dozen open reports in both moderation queues (users, stories), as the admin shows them.

    Reporters and reported are demo users; each (reporter, reported) and (reporter, story) pair
    is used once, as the open-report constraints require."""
    user_reports, story_reports = [], []
    if len(user_ids) >= 2:
        pairs: set[tuple[str, str]] = set()
        for _ in range(min(limit, len(user_ids) // 2) * 3):
            if len(pairs) >= min(limit, len(user_ids) // 2):
                break
            reporter, reported = rng.sample(user_ids, 2)
            pairs.add((reporter, reported))
        for reporter, reported in sorted(pairs):
            reason, details = rng.choice(USER_REPORT_TEXTS)
            user_reports.append(UserReport(reporter_id=reporter, reported_id=reported, reason=reason, details=details,
                                           created_at=now - timedelta(minutes=rng.uniform(1, 24 * 60))))
    authors = [uuid.UUID(uid) for uid in user_ids]
    stories = list(Story.objects.filter(author_id__in=authors).values_list("id", "author_id", "text")[:limit * 4])
    rng.shuffle(stories)
    for story_id, author, text in stories[:limit]:
        reporter = rng.choice(user_ids)
        if str(reporter) == str(author):
            continue
        story_reason, details = rng.choice(STORY_REPORT_TEXTS)
        story_reports.append(StoryReport(story_id=story_id, story_author_id=author, story_excerpt=text[:300],
                                         reporter_id=reporter, reason=story_reason, details=details,
                                         created_at=now - timedelta(minutes=rng.uniform(1, 12 * 60))))
    with progress("reports", len(user_reports) + len(story_reports)) as bar:
        UserReport.objects.bulk_create(user_reports)
        bar.advance(len(user_reports))
        StoryReport.objects.bulk_create(story_reports)
        bar.advance(len(story_reports))
    return len(user_reports), len(story_reports)


# ------------------------------------------------------------------------------- run


def _refresh_stats() -> None:
    analytics_services.refresh_stats()


def count_crossings(user_ids: list[str]) -> int:
    """Crossings with a user of ``user_ids`` on either side, from the database: the one count reported.

    Two index scans (low side, then high side not already counted) rather than an OR."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM crossings WHERE user_low_id = ANY(%s::uuid[])) + "
            "(SELECT count(*) FROM crossings WHERE user_high_id = ANY(%s::uuid[]) "
            "AND NOT user_low_id = ANY(%s::uuid[]))",
            [user_ids, user_ids, user_ids],
        )
        return cursor.fetchone()[0]


def seed(options: SeedOptions, progress: ProgressFactory, activity: ActivityFactory = _no_activity) -> SeedResult:
    """Generate the whole demo data set; docs/subsystems/analytics.md."""
    rng = random.Random(options.seed)
    now = timezone.now()
    result = SeedResult()

    def timed(name, fn):
        started = time.perf_counter()
        value = fn()
        result.seconds[name] = round(time.perf_counter() - started, 2)
        return value

    with activity("cities") as status:
        status.note(", ".join(c[0] for c in DEMO_CITIES))
        cities = timed("cities", ensure_cities)
    with transaction.atomic():
        user_ids = timed("users", lambda: create_users(options.users, rng, now, progress))
    result.users = len(user_ids)
    with transaction.atomic():
        result.pings = timed("pings", lambda: create_pings(user_ids, cities, options, now, progress))
    if options.detect:
        timed("crossings", lambda: run_detector(activity, result.pings))
        result.crossings = count_crossings(user_ids)
    else:
        result.skipped.append("crossings (--no-detect)")
    with transaction.atomic():
        result.connections, result.messages = timed(
            "connections", lambda: create_connections(user_ids, options, now, rng, progress, activity))
    with transaction.atomic():
        result.stories = timed("stories", lambda: create_stories(user_ids, cities, options, now, rng, progress))
    with transaction.atomic():
        result.user_reports, result.story_reports = timed(
            "reports", lambda: create_reports(user_ids, now, rng, progress))
    with activity("statistics") as status:
        status.note("refreshing the statistics views")
        timed("refresh_stats", _refresh_stats)
    result.sample_phone = _best_sample_phone(user_ids)
    return result


def _best_sample_phone(user_ids: list[str]) -> str | None:
    """A demo user with many crossings (among the first 500), to log in as.

    Two index scans (one per side of the pair) rather than an OR join, which would scan every
    crossing once per user.
    """
    if not user_ids:
        return None
    sample = user_ids[:500]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.phone FROM users u LEFT JOIN ("
            "  SELECT user_low_id AS id FROM crossings WHERE user_low_id = ANY(%s::uuid[])"
            "  UNION ALL SELECT user_high_id FROM crossings WHERE user_high_id = ANY(%s::uuid[])"
            ") c ON c.id = u.id WHERE u.id = ANY(%s::uuid[]) "
            "GROUP BY u.phone ORDER BY count(c.id) DESC, u.phone LIMIT 1",
            [sample, sample, sample],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def database_is_fresh() -> bool:
    """No users but staff: a new checkout, where demo data helps more than it surprises."""
    return not User.objects.filter(is_staff=False).exists()


def demo_users_exist() -> bool:
    return User.objects.filter(phone__startswith=DEMO_PHONE_PREFIX).exists()


def as_text(result: SeedResult) -> str:
    out = io.StringIO()
    out.write(f"users {result.users}, pings {result.pings}, crossings {result.crossings}, "
              f"connections {result.connections}, messages {result.messages}, stories {result.stories}, "
              f"reports {result.user_reports} on users and {result.story_reports} on stories\n")
    out.write("seconds: " + ", ".join(f"{k} {v}" for k, v in result.seconds.items()) + "\n")
    return out.getvalue()

