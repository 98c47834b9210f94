"""The operator commands of analytics: seed_demo, replica_status (refresh_stats: test_stats.py)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from analytics import demo, selectors


def _run(*args, stderr=None) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=stderr or io.StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)  # the detector sees committed pings only
def test_seed_demo_generates_every_part():
    from connections.models import Connection, Message
    from crossings.models import Crossing
    from locations.models import City, Ping
    from stories.models import Story

    err = io.StringIO()
    out = _run("seed_demo", "--users", "60", "--hours", "0.25", "--seed", "7", "--connect-fraction", "1", stderr=err)
    assert "Demo data ready" in out
    # Every phase shows progress (stderr), the detector's and the messages' included.
    progress = err.getvalue()
    for phase in ("cities", "users", "pings", "crossings (detector)", "crossed pairs", "connections", "messages",
                  "stories", "reports", "statistics"):
        assert f"\n{phase}: " in "\n" + progress, phase
    assert "crossings (detector): done" in progress
    demo_users = User.objects.filter(phone__startswith=demo.DEMO_PHONE_PREFIX)
    assert demo_users.count() == 60
    assert City.objects.count() == 5
    steps = int(0.25 * 3600 // 30)
    assert Ping.objects.count() == 60 * steps
    # Half of each city's users share a small centre: the real detector finds crossings.
    crossings = Crossing.objects.count()
    assert crossings > 0
    # One crossing count, from the database, in one set of counts.
    assert re.findall(r"crossings (\d+),", out) == [str(crossings)], out
    assert Connection.objects.count() == crossings
    assert Message.objects.exists()
    assert Story.objects.exists()
    assert selectors.stats()["users"]["total_users"] == 60  # stats refreshed at the end
    assert "Log in as a demo user: phone +49152" in out
    # The printed demo login works through the API: the seeded phones are valid numbers.
    from rest_framework.test import APIClient

    phone, password = re.search(r"Log in as a demo user: phone (\S+)\s+password (\S+)", out).groups()
    login = APIClient().post("/api/v1/auth/login/", {"phone": phone, "password": password}, format="json")
    assert login.status_code == 200, login.content
    # Pings stay inside their city and are correctly typed.
    ping = Ping.objects.first()
    city = City.objects.get(pk=ping.city_id)
    assert abs(ping.lat - city.lat) < 0.1 and abs(ping.lng - city.lng) < 0.1
    assert (ping.expires_at - ping.recorded_at).total_seconds() == 24 * 3600


@pytest.mark.django_db(transaction=True)
def test_seed_demo_fills_both_moderation_queues():
    from accounts.models import ReportReason, ReportStatus, UserReport
    from stories.models import StoryReport, StoryReportReason

    out = _run("seed_demo", "--users", "120", "--hours", "0.1", "--seed", "3", "--story-fraction", "0.5",
               "--no-detect")
    user_reports, story_reports = UserReport.objects.all(), StoryReport.objects.select_related("story")
    assert 20 <= user_reports.count() <= 30 and 20 <= story_reports.count() <= 30  # a few dozen
    assert f"reports {user_reports.count()} on users and {story_reports.count()} on stories" in out
    assert {r.status for r in user_reports} == {ReportStatus.OPEN}  # waiting in the queue
    assert {r.status for r in story_reports} == {"open"}
    assert len({r.reason for r in user_reports}) >= 3 and {r.reason for r in user_reports} <= set(ReportReason.values)
    assert {r.reason for r in story_reports} <= set(StoryReportReason.values)
    assert all(len(r.details) > 20 for r in user_reports)  # what a moderator reads
    for report in user_reports:
        assert report.reporter_id != report.reported_id
        assert report.reported.phone.startswith(demo.DEMO_PHONE_PREFIX)
    for report in story_reports:
        assert report.story is not None and report.story_author_id == report.story.author_id
        assert report.reporter_id != report.story_author_id and report.story_excerpt == report.story.text


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "words"), [
    (["--seed", "-1"], "--seed must be a whole number between 0 and 4294967295"),
    (["--messages", "101"], "--messages must be between 0 and 100"),
    (["--hours", "nan"], "--hours must be more than 0 and at most 24"),
    (["--story-fraction", "nan"], "--story-fraction must be between 0 and 1"),
])
def test_seed_demo_says_which_option_is_wrong(args, words):
    with pytest.raises(CommandError, match=re.escape(words)):
        _run("seed_demo", *args)


def test_activity_line_moves_while_a_phase_runs():
    from analytics.progress import Activity
    from tests.waiting import wait_until

    out = io.StringIO()  # a log: a line every `every` seconds with the elapsed time and the status
    with Activity("crossings (detector)", stream=out, every=0.05) as status:
        status.note("matching 1,000 new pings")
        wait_until(lambda: out.getvalue().count("\n") >= 3, what="three status lines")
    lines = out.getvalue().splitlines()
    assert all(line.startswith("crossings (detector): ") and line.endswith(" s") for line in lines)
    assert "matching 1,000 new pings" in lines[1]
    assert lines[-1].startswith("crossings (detector): done, ")


def test_a_short_phase_prints_one_line_in_a_log():
    from analytics.progress import Activity

    out = io.StringIO()
    with Activity("statistics", stream=out, every=60):
        pass
    assert out.getvalue().splitlines() == ["statistics: done, 0 s"]


@pytest.mark.django_db
def test_seed_demo_dry_run_writes_nothing():
    from locations.models import City

    out = _run("seed_demo", "--users", "100", "--dry-run")
    assert "Dry run" in out and "100 users" in out and "12000 pings" in out
    assert not User.objects.exists()
    assert not City.objects.exists()


@pytest.mark.django_db
def test_seed_demo_if_empty_and_adding_more():
    _run("seed_demo", "--users", "10", "--hours", "0.05", "--no-detect")
    assert "nothing to do" in _run("seed_demo", "--users", "10", "--if-empty")
    _run("seed_demo", "--users", "5", "--hours", "0.05", "--no-detect")
    phones = list(User.objects.order_by("phone").values_list("phone", flat=True))
    assert len(phones) == len(set(phones)) == 15


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--users", "0"], ["--hours", "25"], ["--density", "0"],
                                  ["--connect-fraction", "2"], ["--ping-interval", "1"]])
def test_seed_demo_rejects_bad_options(args):
    with pytest.raises(CommandError):
        _run("seed_demo", *args)


def test_seed_demo_help_text():
    parser = __import__("analytics.management.commands.seed_demo", fromlist=["Command"]).Command().create_parser(
        "manage.py", "seed_demo")
    text = parser.format_help()
    assert "--users" in text and "--dry-run" in text and "COPY" in text


def test_area_keeps_load_model_density():
    assert demo.area_sides_km(100_000) == (10.0, 30.0)
    centre, outer = demo.area_sides_km(1000)
    assert round(centre, 3) == 1.0 and round(outer, 3) == 3.0
    assert demo.scaled_sides_km(100_000, 0.25) == (20.0, 35.0)  # capped inside the city circle


@pytest.mark.django_db(databases="__all__")
def test_replica_status_reports_each_replica():
    out = _run("replica_status")
    assert "replica1" in out and "yes" in out  # the test replica mirrors the primary: no lag
    _run("replica_status", "--fail-over", "5")


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["-1", "nan"])
def test_replica_status_refuses_a_negative_fail_over(bad):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="0 or more"):
        _run("replica_status", "--fail-over", bad)


@pytest.mark.django_db
def test_replica_status_without_replicas(settings):
    settings.REPLICA_ALIASES = []
    assert "no replicas configured" in _run("replica_status")


@pytest.mark.django_db
def test_seed_demo_if_fresh_only_seeds_a_database_without_users():
    User.objects.create_superuser("+14155550100", "pw-123456789", display_name="Staff")
    _run("seed_demo", "--if-fresh", "--users", "8", "--hours", "0.05", "--no-detect")
    assert User.objects.filter(is_staff=False).count() == 8
    assert "no demo data added" in _run("seed_demo", "--if-fresh", "--users", "8")
    assert User.objects.filter(is_staff=False).count() == 8


@pytest.fixture
def down_replica(settings):
    """A replica alias whose server does not exist (a socket directory that is not there)."""
    from django.db import connections

    alias = "replica_down"
    config = dict(connections.settings["default"])
    config.update(HOST="/nonexistent-crossings-socket-dir", OPTIONS={"connect_timeout": 1}, TEST={"MIRROR": None})
    connections.settings[alias] = config
    settings.REPLICA_ALIASES = ["replica1", alias]
    yield alias
    connections[alias].close()
    del connections.settings[alias]
    if hasattr(connections._connections, alias):
        delattr(connections._connections, alias)


@pytest.mark.django_db(databases="__all__")
def test_replica_status_reports_a_replica_that_is_down(down_replica, api):
    out = _run("replica_status")
    assert "replica_down" in out and "DOWN" in out
    with pytest.raises(CommandError, match="replica_down is down"):
        _run("replica_status", "--fail-over", "5")
    body = api.get("/metrics").content.decode()
    assert 'crossings_replica_up{alias="replica_down"} 0.0' in body
    assert 'crossings_replica_up{alias="replica1"} 1.0' in body


def test_progress_bar_prints_tenths_in_logs():
    from analytics.progress import Progress

    out = io.StringIO()  # not a terminal: one line per 10 %, never a redraw
    with Progress("pings", 1000, stream=out) as bar:
        for _ in range(100):
            bar.advance(10)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("pings: 0/1000 (0%)")
    assert lines[-1].startswith("pings: 1000/1000 (100%)")
    assert len(lines) == 11 and "\r" not in out.getvalue()
