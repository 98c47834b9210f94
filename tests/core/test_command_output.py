"""An operator's command prints one human line per result; its JSON log records go to the log
file (COMMAND_LOG_FILE), not a second time to the terminal (config/settings/base.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from config.settings.base import LOGGING, command_logging


def operator_env(tmp_path) -> dict[str, str]:
    """The command as an operator runs it (development settings), on this test's database."""
    db = connection.settings_dict
    host = db["HOST"] or db["OPTIONS"].get("host", "")  # the embedded server: a socket directory
    port = db["PORT"] or db["OPTIONS"].get("port", 5432)
    login = db["USER"] + (f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else "")
    url = f"postgresql://{login}@{quote(str(host), safe='')}:{port}/{db['NAME']}"
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.dev", "DATABASE_URL": url,
            "LOG_JSON": "1", "COMMAND_LOG_FILE": str(tmp_path / "logs" / "commands.log")}


def manage(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=operator_env(tmp_path),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.django_db(transaction=True)  # the command's own process sees committed rows only
def test_detect_crossings_prints_its_result_once_and_logs_it_to_the_file(tmp_path):
    done = manage(tmp_path, "detect_crossings")
    assert done.returncode == 0, done.stderr
    summary = "0 new pings (context 0), 0 ping pairs matched, 0 pairs, 0 crossings created or changed"
    assert done.stdout.count(summary) == 1, done.stdout
    terminal = done.stdout + done.stderr
    assert terminal.count(summary) == 1, terminal
    assert not [line for line in terminal.splitlines() if line.lstrip().startswith("{")], terminal
    records = [json.loads(line) for line in (tmp_path / "logs" / "commands.log").read_text().splitlines()]
    assert any(summary in record["message"] and record["logger"] == "crossings.detection.run" for record in records)


def test_a_command_error_is_one_plain_line(tmp_path):
    done = manage(tmp_path, "add_city", "oslo", "--name", "Oslo", "--lat", "95", "--lng", "10", "--radius-km", "20")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == "CommandError: --lat must be between -90 and 90 degrees (got 95)."


def test_servers_shells_and_the_dash_keep_the_console(tmp_path):
    log = str(tmp_path / "c.log")
    assert command_logging(["manage.py", "serve"], log, LOGGING) is LOGGING
    assert command_logging(["manage.py", "shell"], log, LOGGING) is LOGGING
    assert command_logging(["manage.py", "seed_demo"], "-", LOGGING) is LOGGING
    assert command_logging(["/x/bin/gunicorn", "config.wsgi"], log, LOGGING) is LOGGING
    for argv in (["manage.py", "seed_demo"], ["/repo/devtools/run.py", "run"]):
        config = command_logging(argv, log, LOGGING)
        assert config["handlers"]["file"]["filename"] == log
        assert config["handlers"]["console"]["level"] == "WARNING"  # warnings still reach the operator
