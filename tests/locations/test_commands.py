"""Operator commands: add_city, ensure_partitions, partitions, sweep_expired; and migrations."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from locations import partitions
from locations.models import City
from tests.factories import ingest

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_city_creates_the_city_and_its_partition():
    out = run("add_city", "paris", "--name", "Paris", "--lat", "48.8566", "--lng", "2.3522", "--radius-km", "20")
    city = City.objects.get(slug="paris")
    assert "Created city paris" in out
    assert f"locations_ping_city{city.id}" in partitions.existing_tables()
    assert f"locations_ping_city{city.id}_pdefault" in partitions.existing_tables()
    out = run("add_city", "paris", "--name", "Paris", "--lat", "48.8566", "--lng", "2.3522", "--radius-km", "25")
    assert "Updated city paris" in out
    assert City.objects.get(slug="paris").radius_km == 25


def test_add_city_dry_run_and_bad_input():
    out = run("add_city", "rome", "--name", "Rome", "--lat", "41.9", "--lng", "12.5", "--radius-km", "15", "--dry-run")
    assert "Would create city rome" in out
    assert not City.objects.filter(slug="rome").exists()
    with pytest.raises(CommandError, match="lat"):
        run("add_city", "nowhere", "--name", "X", "--lat", "91", "--lng", "0", "--radius-km", "5")
    with pytest.raises(CommandError, match="slug"):
        run("add_city", "not a slug", "--name", "X", "--lat", "1", "--lng", "0", "--radius-km", "5")


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--lat", "95", "--lat must be between -90 and 90 degrees (got 95)"),
    ("--lat", "-90.5", "--lat must be between -90 and 90 degrees (got -90.5)"),
    ("--lat", "nan", "--lat must be between -90 and 90 degrees (got nan)"),
    ("--lng", "180.01", "--lng must be between -180 and 180 degrees (got 180.01)"),
    ("--radius-km", "0", "--radius-km must be more than 0 and at most 500 km (got 0)"),
    ("--radius-km", "501", "--radius-km must be more than 0 and at most 500 km (got 501)"),
    ("--radius-km", "inf", "--radius-km must be more than 0 and at most 500 km (got inf)"),
    ("--name", " ", "--name must be 1 to 100 characters"),
    ("slug", "x" * 51, "The slug must be at most 50 characters (got 51)"),
])
def test_add_city_out_of_range_says_which_argument_and_its_range(option, value, words):
    args = {"slug": "lyon", "--name": "Lyon", "--lat": "45.76", "--lng": "4.84", "--radius-km": "15", option: value}
    argv = [args.pop("slug"), *[part for pair in args.items() for part in pair]]
    with pytest.raises(CommandError) as raised:
        run("add_city", *argv)
    message = str(raised.value)
    assert words in message
    assert "onstraint" not in message and "city_" not in message  # never the database's rule names
    assert not City.objects.exists()


def test_add_city_update_out_of_range_changes_nothing():
    run("add_city", "lyon", "--name", "Lyon", "--lat", "45.76", "--lng", "4.84", "--radius-km", "15")
    with pytest.raises(CommandError, match="--radius-km must be more than 0 and at most 500 km"):
        run("add_city", "lyon", "--name", "Lyon", "--lat", "45.76", "--lng", "4.84", "--radius-km", "-3")
    assert City.objects.get(slug="lyon").radius_km == 15


def test_ensure_partitions_command(berlin):
    dry = run("ensure_partitions", "--days-ahead", "4", "--dry-run")
    assert "would create locations_ping_nocity_p" in dry
    before = partitions.existing_tables()
    out = run("ensure_partitions", "--days-ahead", "4")
    created = partitions.existing_tables() - before
    assert created and f"{len(created)} partitions created" in out
    assert "[1/" in out  # progress
    assert "0 partitions created" in run("ensure_partitions", "--days-ahead", "4")
    with pytest.raises(CommandError):
        run("ensure_partitions", "--days-ahead", "-1")


def test_partitions_command_lists_rows_and_sizes(user, berlin):
    ingest(user, (52.52, 13.405, timezone.now()))
    out = run("partitions")
    today = f"locations_ping_city{berlin.id}_p{timezone.now():%Y%m%d}"
    line = next(line for line in out.splitlines() if today in line)
    assert " 1 " in line and "kB" in line
    assert "locations_ping_nocity" in out


def test_sweep_expired_command_lists_sweepers(user):
    out = run("sweep_expired")
    assert "pings: removed 0 rows" in out
    with pytest.raises(CommandError, match="Unknown sweeper"):
        run("sweep_expired", "--only", "nothing")


@pytest.mark.parametrize("command", ["add_city", "ensure_partitions", "partitions", "sweep_expired"])
def test_commands_have_help(command, capsys):
    with pytest.raises(SystemExit):
        call_command(command, "--help")
    assert len(capsys.readouterr().out) > 200


def test_no_missing_migrations():
    call_command("makemigrations", "locations", "--check", "--dry-run", verbosity=0)


def test_beat_schedule_runs_the_upkeep():
    from config.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"locations.ensure_partitions", "locations.sweep_expired"} <= tasks


def test_tasks_run(berlin):
    from locations.tasks import ensure_partitions_task, sweep_expired_task

    assert isinstance(ensure_partitions_task.apply().get(), list)
    assert sweep_expired_task.apply().get()["pings"] == 0


def test_a_failing_sweeper_does_not_stop_the_others():
    from locations import sweepers

    ran = []

    def broken(now, dry_run, progress):
        raise RuntimeError("boom")

    def fine(now, dry_run, progress):
        ran.append(now)
        return 3

    saved = sweepers._SWEEPERS.copy()
    try:
        sweepers.register_sweeper("zz-broken")(broken)
        sweepers.register_sweeper("zz-fine")(fine)
        with pytest.raises(sweepers.SweepFailed, match="zz-broken: boom") as info:
            sweepers.run_sweepers(only=["zz-broken", "zz-fine"])
        assert ran and info.value.results == {"zz-fine": 3}
    finally:
        sweepers._SWEEPERS.clear()
        sweepers._SWEEPERS.update(saved)
