"""A moderation world for the admin tests: users with phones and bios, sessions, blocks,
user and story reports, stories (text, image, video), connections with messages, and a day
of pings, crossings and sign-ups in two cities for the statistics charts.

Every list has at least ``ROWS`` rows, so that a query per row would show in a query count.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts import services as accounts
from accounts.models import Block, User
from analytics.charts import hour_starts
from connections.models import Message
from crossings.models import Crossing
from locations.models import Ping
from stories import services as stories
from stories.models import CloseFriend, Story
from tests.factories import make_city, make_connection, make_crossing, make_user
from tests.media_samples import image_bytes

ROWS = 22
# Text a moderator must read escaped, never as markup.
MARKUP = "<b>bold</b> & <script>alert(1)</script>"
LONG = ("I keep meeting this person on the tram and every single time they start the same long "
        "story about their cat, their neighbour and the weather")


@dataclass
class World:
    members: list[User]
    moderator: User
    admin: User
    password: str
    phones: list[str] = field(default_factory=list)
    stories: list[Story] = field(default_factory=list)
    image_story: Story | None = None
    video_story: Story | None = None


def staff(group: str, name: str, password: str) -> User:
    user = make_user(is_staff=True, display_name=name, password=password)
    user.groups.add(Group.objects.get(name=group))
    return user


def build(password: str = "a-moderator-passphrase") -> World:
    now = timezone.now()
    names = ["Ana", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas", "Kemal",
             "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Sami", "Tomasz", "Uma", "Viktor",
             "Wen", "Ximena"]
    members = []
    for i, name in enumerate(names):
        members.append(make_user(
            display_name=f"{name} {'Featherstonehaugh-Villanueva' if i % 7 == 0 else 'K.'}",
            phone=f"+1415555{i:04d}", bio=LONG if i % 3 == 0 else f"Hi, I am {name}. {MARKUP}",
            is_verified=i % 2 == 0, created_at=now - timedelta(hours=i * 3 % 24, minutes=7),
            last_active_at=now - timedelta(minutes=i * 11)))
    world = World(members=members, moderator=staff("moderators", "Mona Moderator", password),
                  admin=staff("admins", "Adam Admin", password), password=password,
                  phones=[m.phone for m in members])

    for i, member in enumerate(members[:ROWS]):
        accounts.open_session(member, user_agent=f"Crossings/2.{i} (iPhone; iOS 19.{i % 4}) CFNetwork/1490 Darwin/24",
                              ip=f"198.51.100.{i + 1}")
    for i in range(ROWS):
        reporter, reported = members[i], members[(i + 1) % len(members)]
        report, _ = accounts.report_user(reporter_id=reporter.pk, reported_id=reported.pk,
                                         reason=("spam", "abuse", "impersonation", "other")[i % 4],
                                         details=(LONG if i % 2 else f"Sent me this: {MARKUP}"))
        if i % 5 == 4:
            accounts.close_reports([report.pk], staff_user_id=world.moderator.pk, status="resolved")
    for i in range(3):
        accounts.block_user(blocker_id=members[i].pk, blocked_id=members[i + 10].pk)
    # More rows for the block and close-friend lists (rows only: what blocking does is tested elsewhere).
    later, n = members[8:], len(members) - 8
    Block.objects.bulk_create([Block(blocker=later[i % n], blocked=later[(i + 1 + i // n) % n])
                               for i in range(ROWS - 3)])
    CloseFriend.objects.bulk_create([CloseFriend(author=later[i % n], friend=later[(i + 2 + i // n) % n])
                                     for i in range(ROWS)])

    for i in range(ROWS):
        author = members[i % 6]
        text = LONG if i % 2 else f"Sunset over the river, story {i}. {MARKUP}"
        world.stories.append(stories.create_story(author_id=author.pk, text=text, visibility="public",
                                                  lat=52.52, lng=13.405))
    world.image_story = stories.create_story(
        author_id=members[1].pk, caption="Look at this sky", visibility="public",
        upload=SimpleUploadedFile("sky.png", image_bytes(size=(64, 48)), content_type="image/png"))
    video = stories.create_story(author_id=members[2].pk, text="placeholder", visibility="public")
    Story.objects.filter(pk=video.pk).update(kind="video", text="", caption="A short clip",
                                             media=f"stories/clip-{video.pk}.mp4", media_type="video/mp4",
                                             media_bytes=123_456)
    video.refresh_from_db()
    world.video_story = video
    for i, story in enumerate([*world.stories[:ROWS - 1], world.image_story]):
        reporter = members[6 + i % 12]
        stories.report_story(reporter.pk, story.pk, ("spam", "inappropriate", "abuse")[i % 3],
                             details=LONG if i % 2 else MARKUP)

    pairs = list(itertools.combinations(members[:8], 2))[:ROWS]
    for i, (a, b) in enumerate(pairs):
        conn = make_connection(a, b, status="accepted" if i % 4 else "pending")
        Message.objects.bulk_create([
            Message(connection=conn, sender=(a, b)[k % 2], body=f"private message {k}",
                    created_at=now - timedelta(hours=(i + k) % 24, minutes=3))
            for k in range(i % 5)])
    return world


def add_activity(world: World) -> dict:
    """A day of pings in two cities, crossings at known hours; returns what was added per city."""
    berlin = make_city("berlin", name="Berlin")
    lisbon = make_city("lisbon", name="Lisbon", lat=38.72, lng=-9.14)
    now = timezone.now()
    starts = hour_starts(now)
    pings = []
    for hour in range(0, 24, 2):  # every other hour: the others must show as zero
        for k, member in enumerate(world.members[: 4 + hour % 5]):
            city = berlin if k % 3 else lisbon
            at = starts[hour] + timedelta(seconds=k + 1)
            for repeat in range(1 + (k == 0)):  # the first member pings twice: pings > active users
                pings.append(Ping(user_id=member.pk, city_id=city.id, recorded_at=at + timedelta(seconds=30 * repeat),
                                  lat=city.lat, lng=city.lng, expires_at=at + timedelta(hours=24)))
    Ping.objects.bulk_create(pings)
    for i in range(6):
        crossing = make_crossing(world.members[i], world.members[i + 6], at=now - timedelta(hours=i * 3, minutes=1))
        Crossing.objects.filter(pk=crossing.pk).update(city=berlin if i % 2 else lisbon)
    return {"berlin": berlin, "lisbon": lisbon, "pings": len(pings)}
