"""The WebSocket side of the load runs: the push mix (closed_loop.PUSH_MIX_PER_MINUTE) against a
live server, the push model's arithmetic from measured results (bench/scenarios/ws_push_model.py),
the capacity table's sockets per user, and the WebSocket block of docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import random
from urllib.parse import urlparse

import pytest

from accounts import services
from bench.harness import capacity, closed_loop, common, report
from bench.harness.cpu import Tiers
from bench.scenarios import ws_push_model
from tests.factories import make_connection, make_crossing, make_verified_user

USER_ACTIONS = ("ping", "profile", "send_message", "connect", "story")
POLLS = ("crossings", "feed", "connections", "me", "messages")


def test_the_push_mix_keeps_every_user_action_and_reads_each_list_less_often():
    push, poll = closed_loop.PUSH_MIX_PER_MINUTE, closed_loop.MIX_PER_MINUTE
    assert set(push) == set(poll)
    for action in USER_ACTIONS:
        assert push[action] == poll[action], action
    for read in POLLS:
        assert 0 < push[read] < poll[read], read
    sequence = closed_loop._mix_sequence(20_000, random.Random(5), push)
    assert sequence.count("messages") / len(sequence) == pytest.approx(
        push["messages"] / sum(push.values()), abs=0.01)


@pytest.mark.django_db(transaction=True, databases="__all__")  # reads may go to the replica, as in production
def test_the_push_mix_runs_against_a_live_server_without_errors(live_server, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "100000/minute"}}
    people = []
    for _ in range(3):
        me, other = make_verified_user(), make_verified_user()
        conn = make_connection(me, other)
        make_crossing(me, other)
        _session, access, _refresh = services.open_session(me)
        people.append(closed_loop.Viewer(access, 52.52, 13.405, [str(conn.pk)], [str(other.pk)]))
    result = closed_loop.run(urlparse(live_server.url).port, Tiers({"app": [os.getpid()]}), "push", requests=60,
                             clients=2, people=people, seed=4)
    assert result.errors == {}
    assert sum(result.by_endpoint.values()) == 60
    assert set(result.by_endpoint) <= set(closed_loop.PUSH_MIX_PER_MINUTE)


def _cpu(app: float, db: float) -> dict:
    return {"cpu_ms_per_request": {"app": app, "db": db, "redis": 0.1}}


def test_the_push_model_combines_both_mixes_and_the_sockets_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    common.write_result("ws_delivery", {"server_cpu_ms_per_event_net_of_idle": 0.1, "server_cpu_percent_idle": 10.0,
                                        "users_connected": 10_000}, "ws")
    endpoints = {e: _cpu(1.0, 0.1) for e in closed_loop.ALONE}
    endpoints["messages"] = _cpu(3.0, 0.4)
    common.write_result("closed-loop", {"meta": {"rounds": 3}, "measured": {"mix": _cpu(2.0, 0.2),
                                                                            "push": _cpu(2.5, 0.2), **endpoints}},
                        "loop")
    ran = []
    monkeypatch.setattr(closed_loop, "main", lambda argv: ran.append(argv) or 0)
    assert ws_push_model.main(["--rounds", "1", "--from-last"]) == 0
    assert ran == []  # the last run had every target: not run again
    f = common.read_result("ws_push_model")["figures"]
    poll_requests = sum(closed_loop.MIX_PER_MINUTE.values())
    push_requests = sum(closed_loop.PUSH_MIX_PER_MINUTE.values())
    assert f["poll"]["app_ms"] == pytest.approx(poll_requests * 2.0, abs=0.01)
    # Idle: 10 % of a core over 10 000 sockets is 0.6 ms a socket-minute; events 1.3 x 0.1 ms.
    assert f["push"]["asgi_ms"] == pytest.approx(0.6 + closed_loop.PUSH_EVENTS_PER_MINUTE * 0.1, abs=0.001)
    expected = 1 - (push_requests * 2.5 + f["push"]["asgi_ms"]) / (poll_requests * 2.0)
    assert f["app_cpu_removed_percent"] == pytest.approx(100 * expected, abs=0.1)
    assert f["requests_removed_percent"] == pytest.approx(100 * (1 - push_requests / poll_requests), abs=0.1)
    # From the endpoints: messages (3.0 ms) is read 0.5 a minute polling, 0.2 pushed; the rest 1.0 ms,
    # connect and story (never run alone) at the polling mix's 2.0 ms.
    poll, push = closed_loop.MIX_PER_MINUTE, closed_loop.PUSH_MIX_PER_MINUTE
    def cost(mix):
        return sum(rate * (3.0 if e == "messages" else 2.0 if e in ("connect", "story") else 1.0)
                   for e, rate in mix.items())
    assert f["poll"]["by_endpoint"]["app_ms"] == pytest.approx(cost(poll), abs=0.01)
    assert f["push"]["by_endpoint"]["app_ms"] == pytest.approx(cost(push), abs=0.01)


def test_the_push_model_runs_the_closed_loop_when_the_last_run_lacks_a_target(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    common.write_result("ws_delivery", {"server_cpu_ms_per_event_net_of_idle": 0.1, "server_cpu_percent_idle": 10.0,
                                        "users_connected": 10_000}, "ws")
    measured = {t: _cpu(1.0, 0.1) for t in ("mix", "push", *closed_loop.ALONE)}
    ran = []

    def fake_run(argv):
        ran.append(argv)
        common.write_result("closed-loop", {"meta": {}, "measured": measured}, "loop")
        return 0

    monkeypatch.setattr(closed_loop, "main", fake_run)
    with pytest.raises(SystemExit, match="make bench-closed"):
        ws_push_model.main(["--from-last"])
    assert ws_push_model.main([]) == 0
    only = ran[0][ran[0].index("--only") + 1].split(",")
    assert set(only) == {"mix", "push", *closed_loop.ALONE}


def test_the_push_model_refuses_without_a_socket_measurement(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    with pytest.raises(SystemExit, match="make loadtest-ws"):
        ws_push_model.main([])


def test_three_sockets_a_user_triple_the_socket_memory_and_event_cpu():
    one = capacity.ws_plan(100_000, 31.0, 0.1, 0.001, sockets_per_user=1)
    three = capacity.ws_plan(100_000, 31.0, 0.1, 0.001, sockets_per_user=3)
    assert three["ram_gib"] == pytest.approx(3 * one["ram_gib"], rel=0.03)  # both rounded to 0.1 GiB
    assert three["vcpu"] == pytest.approx(3 * one["vcpu"], rel=0.05)
    assert three["events_per_s"] == 3 * one["events_per_s"]
    assert one["instances"] >= 2  # one instance can die


def test_the_websocket_block_of_the_benchmarks_page_is_written_and_then_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    doc = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(report, "DOC", doc)
    doc.write_text(f"# Benchmarks\n\n{closed_loop.BEGIN}\nheadline\n{closed_loop.END}\n\n## Targets\n")
    figures = {"users_connected": 10_000, "rate_published": 1000.0, "events_delivered": 60_000,
               "events_published": 60_000, "p50_ms": 3.6, "p95_ms": 5.0, "p99_ms": 10.7, "max_ms": 66.0,
               "server_cpu_ms_per_event_net_of_idle": 0.075, "rss_per_socket_kb": 30.9, "load_average_1m": [1.2, 1.0]}
    common.write_result("ws_delivery", figures, "ws", scale={"duration_s": 60})
    report.write_websockets_block()
    text = doc.read_text()
    assert text.index(closed_loop.END) < text.index(report.WS_BEGIN) < text.index("## Targets")
    assert "p99 **10.7 ms**" in text
    common.write_result("ws_delivery", {**figures, "p99_ms": 12.5}, "ws", scale={"duration_s": 60})
    report.write_websockets_block()
    text = doc.read_text()
    assert "p99 **12.5 ms**" in text and "10.7" not in text
    assert text.count(report.WS_BEGIN) == 1
