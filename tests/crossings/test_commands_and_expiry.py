"""detect_crossings (help, dry run, progress) and the expiry of crossing records."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from crossings.models import Crossing
from tests.factories import make_crossing, make_user

pytestmark = pytest.mark.django_db


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit):
        call_command("detect_crossings", "--help")
    out = capsys.readouterr().out
    assert "--dry-run" in out and "--no-wait" in out


def test_command_reports_what_it_did():
    out = StringIO()
    call_command("detect_crossings", stdout=out)
    assert "new pings" in out.getvalue() and "crossings created or changed" in out.getvalue()
    out = StringIO()
    call_command("detect_crossings", "--dry-run", stdout=out)
    assert "dry run" in out.getvalue()


def test_expiry_sweep_deletes_only_crossings_past_retention(settings):
    settings.CROSSING_RETENTION_DAYS = 7
    me = make_user()
    old = make_crossing(me, make_user(), at=timezone.now() - timedelta(days=7, minutes=1))
    fresh = make_crossing(me, make_user(), at=timezone.now() - timedelta(days=6, hours=23))
    from locations.sweepers import run_sweepers

    assert run_sweepers(dry_run=True, only=["crossings"]) == {"crossings": 1}
    assert Crossing.objects.count() == 2
    assert run_sweepers(only=["crossings"]) == {"crossings": 1}
    assert list(Crossing.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not Crossing.objects.filter(pk=old.pk).exists()
