"""`make run`'s set-up (devtools/run.py): one progress line per step; static files collected only
when a source file or a setting that shapes them changed."""

from __future__ import annotations

import os

import pytest

from devtools import run


@pytest.fixture
def static(settings, tmp_path, monkeypatch):
    """A project static directory and a collection target of this test's own."""
    source = tmp_path / "static"
    source.mkdir()
    (source / "app.css").write_text("body { color: red }")
    settings.STATICFILES_DIRS = [str(source)]
    settings.STATIC_ROOT = str(tmp_path / "collected")
    monkeypatch.setattr(run, "STATIC_STAMP", tmp_path / "static.stamp")
    return source


def collect(capsys) -> str:
    run.collect_static(run.Steps(3))
    return capsys.readouterr().out


def test_static_files_are_collected_once_then_only_when_they_change(static, settings, capsys):
    first = collect(capsys)
    assert first.startswith("[1/3] Collecting ") and "static files" in first
    assert (static.parent / "collected" / "app.css").exists()
    assert collect(capsys) == "[1/3] Static files: unchanged since the last collection\n"
    # An edited file (its size or mtime), a new file, a removed collection: collected again.
    (static / "app.css").write_text("body { color: blue; margin: 0 }")
    assert "Collecting" in collect(capsys)
    assert "unchanged" in collect(capsys)
    (static / "new.js").write_text("console.log(1)")
    assert "Collecting" in collect(capsys)
    assert (static.parent / "collected" / "new.js").exists()
    (static.parent / "collected" / "new.js").unlink()
    os.rename(static.parent / "collected", static.parent / "gone")
    assert "Collecting" in collect(capsys)


def test_the_fingerprint_follows_the_static_settings(static, settings):
    before = run.static_fingerprint()
    assert run.static_fingerprint() == before
    settings.STATIC_URL = "/assets/"
    assert run.static_fingerprint() != before


@pytest.mark.django_db
def test_migrate_step_says_up_to_date(capsys):
    run.migrate(run.Steps(5))
    assert capsys.readouterr().out == "[1/5] Database migrations: up to date\n"
