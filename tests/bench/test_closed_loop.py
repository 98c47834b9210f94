"""The closed-loop harness and the data-set guard of the load runs (bench/harness/closed_loop.py,
bench/harness/dataset.py, bench/harness/loadtest.py's endpoint report).  Against a live server:
no timing is asserted, only that every request is sent, answered and counted."""

from __future__ import annotations

import itertools
import os
import random
from urllib.parse import urlparse

import pytest

from accounts import services
from bench.harness import closed_loop, common, dataset, loadtest, report
from bench.harness.cpu import Tiers
from tests.factories import make_connection, make_crossing, make_verified_user

FLOOR_URLS = "tests.bench.floor_urls"


def _port(live_server) -> int:
    return urlparse(live_server.url).port


@pytest.mark.urls(FLOOR_URLS)
def test_run_sends_every_request_of_a_floor_and_bills_cpu_per_request(live_server):
    tiers = Tiers({"app": [os.getpid()], "db": [], "redis": []})
    result = closed_loop.run(_port(live_server), tiers, "floor_drf", requests=40, clients=4, people=[], seed=1)
    assert result.requests == 40
    assert result.by_endpoint == {"floor_drf": 40}
    assert result.errors == {}
    assert result.cpu_ms["app"] > 0  # the live server runs in this process


def _viewer(db_user, other) -> closed_loop.Viewer:
    conn = make_connection(db_user, other)
    make_crossing(db_user, other)
    _session, access, _refresh = services.open_session(db_user)
    return closed_loop.Viewer(access, 52.52, 13.405, [str(conn.pk)], [str(other.pk)])


@pytest.mark.django_db(transaction=True, databases="__all__")  # reads may go to the replica, as in production
def test_the_mix_runs_every_frequent_endpoint_without_errors(live_server, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "100000/minute"}}
    people = [_viewer(make_verified_user(), make_verified_user()) for _ in range(3)]
    tiers = Tiers({"app": [os.getpid()]})
    for endpoint in ("ping", "send_message", "messages", "me", "connections", "crossings", "feed", "profile"):
        result = closed_loop.run(_port(live_server), tiers, endpoint, requests=6, clients=2, people=people, seed=2)
        assert result.errors == {}, endpoint
        assert result.by_endpoint == {endpoint: 6}


def test_the_mix_sequence_follows_the_load_model_weights():
    sequence = closed_loop._mix_sequence(20_000, random.Random(3))
    share = sequence.count("ping") / len(sequence)
    expected = closed_loop.MIX_PER_MINUTE["ping"] / sum(closed_loop.MIX_PER_MINUTE.values())
    assert share == pytest.approx(expected, abs=0.02)
    assert set(sequence) == set(closed_loop.MIX_PER_MINUTE)


def _result(target, app, db=0.1):
    cpu = {"app": app, "db": db, "redis": 0.05}
    return closed_loop.RunResult(target, 100, 1.0, cpu, {target: 100}, {}, [1.0] * 100)


def _run_figures() -> dict:
    measured = {t: closed_loop.median_of([_result(t, 1.0), _result(t, 3.0), _result(t, 2.0)])
                for t in ["floor_django", "floor_drf", "mix", *closed_loop.ALONE]}
    measured["floor_drf"] = closed_loop.median_of([_result("floor_drf", 0.5)] * 3)
    meta = {"clients": 8, "workers": 4, "seeded_users": 5000, "viewers": 400, "requests": 100, "rounds": 3,
            "machine": "2 vCPU", "load_before": 0.1, "load_after": 0.2, "date": "2026-12-02", "command": "x"}
    return {"meta": meta, "measured": measured}


def test_figures_are_medians_of_the_rounds_and_the_table_compares_with_the_drf_floor():
    figures = _run_figures()
    measured = figures["measured"]
    assert measured["mix"]["cpu_ms_per_request"]["app"] == 2.0
    assert measured["mix"]["cpu_ms_spread"]["app"] == [1.0, 3.0]
    table = closed_loop.markdown(figures)
    mix_row = next(line for line in table.splitlines() if line.startswith("| **the mix**"))
    assert "| 2.00 | 0.10 | 0.05 | 4.00 |" in mix_row  # app 2.0 ms is 4x the DRF floor's 0.5


def test_a_side_by_side_run_gives_each_rounds_ratio_and_their_median():
    """The ratio of two medians can pair one server's quiet round with the other's busy one;
    each round's two runs are back to back, so their ratio is the steadier figure."""
    measured = {"mix": closed_loop.median_of([_result("mix", a) for a in (2.0, 4.0, 1.0, 3.0)]),
                "mix@versus": closed_loop.median_of([_result("mix", b) for b in (2.5, 5.0, 1.0, 6.0)])}
    assert measured["mix"]["app_ms_by_round"] == [2.0, 4.0, 1.0, 3.0]
    row = next(line for line in closed_loop.versus_table(measured, "X=1").splitlines() if line.startswith("| mix"))
    # medians 2.5 and 3.75 (0.67); rounds 0.80 0.80 1.00 0.50, their median 0.80
    assert "| 0.67 | 0.80 0.80 1.00 0.50 (0.80) |" in row


def test_a_thin_database_is_refused_with_what_is_missing(monkeypatch):
    monkeypatch.setattr(dataset, "counts", lambda: {"seeded_users": 0, "crossings": 0, "accepted_connections": 0})
    with pytest.raises(SystemExit) as exc:
        dataset.ensure_seeded(100, seed=False)
    message = str(exc.value)
    assert "0 seeded users" in message and "1000 seeded users" in message and "--no-seed" in message


def test_the_endpoint_report_names_what_ran_and_what_did_not():
    figures = {"endpoints": {"POST /locations/": {"requests": 10}, "GET /crossings/": {"requests": 4},
                             "GET /me/": {"requests": 0}}}
    text = loadtest.endpoints_report(figures)
    assert "POST /locations/ 10" in text and "GET /crossings/ 4" in text
    missing = text.split("Did not run in the measured window: ")[1]
    assert "GET /me/" in missing and "POST /stories/" in missing and "POST /locations/" not in missing


def test_the_report_heads_with_the_newest_closed_loop_run_and_else_keeps_the_documented_one(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    doc = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(closed_loop, "DOC", doc)
    doc.write_text(f"# Benchmarks\n\n{closed_loop.BEGIN}\nthe table measured earlier\n{closed_loop.END}\n")
    kept = report.build()
    assert "the table measured earlier" in kept and "Headline: the mix near saturation" in kept
    common.write_result("closed-loop", _run_figures(), "python -m bench.harness.closed_loop")
    fresh = report.build()
    assert "the table measured earlier" not in fresh
    assert "| **the mix** | 100 % | 2.00 |" in fresh
    closed_loop.write_docs("a new table")
    assert closed_loop.current_block() == "a new table"


def test_each_users_pings_are_spaced_like_a_phones_and_live():
    from datetime import UTC, datetime, timedelta

    viewer = closed_loop.Viewer("token", 52.5, 13.4)
    times = [closed_loop._ping_time(viewer) for _ in range(40)]
    now = datetime.now(UTC)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(gap >= 20 for gap in gaps[:25])  # MATCH_MIN_INTERVAL_S apart while the backlog lasts
    assert all(now - t < timedelta(seconds=600) for t in times)  # received within CROSSING_LIVE_S
    assert all(t <= now for t in times)  # never from the future


@pytest.mark.django_db(transaction=True)
def test_each_users_clock_goes_on_from_their_newest_stored_ping():
    """A ping older than the user's stored ones is a late batch (the server then reads the stored
    pings around it): the run must send what a phone sends, the next ping after the last."""
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import make_ping

    user, other = make_verified_user(), make_verified_user()
    make_connection(user, other)
    make_crossing(user, other)
    newest = timezone.now() - timedelta(seconds=100)
    make_ping(user, recorded_at=newest - timedelta(seconds=30))
    make_ping(user, recorded_at=newest)
    viewer = next(v for v in closed_loop.viewers(10) if v.clock is not None)
    assert viewer.clock == newest
    times = [closed_loop._ping_time(viewer) for _ in range(3)]
    assert times[0] == newest + closed_loop.PING_STEP
    assert times[1] - times[0] == closed_loop.PING_STEP


def test_capacity_is_computed_from_the_closed_loop_mix_when_there_is_one(tmp_path, monkeypatch):
    from bench.harness import capacity

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    common.write_result("loadtest-mix", {"cpu_ms_per_request": {"app": 4.0, "db": 0.5, "redis": 0.2}}, "loadtest")
    assert capacity.measured_inputs()["app_ms"] == 4.0
    common.write_result("closed-loop", _run_figures(), "python -m bench.harness.closed_loop")
    inputs = capacity.measured_inputs()
    assert (inputs["app_ms"], inputs["db_ms"]) == (2.0, 0.1)
    assert inputs["source"].startswith("closed-loop mix (median of 3 rounds)")
