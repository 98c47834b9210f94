"""The load model with events pushed over WebSockets instead of polling: how much of the mix's
requests, reads and CPU it removes.

    python -m bench.scenarios.ws_push_model [--rounds 3 --requests 3000] [--write-docs]   (make bench-push)

One closed-loop run (bench/harness/closed_loop.py, same server, interleaved rounds; or the last
`make bench-closed`, with --from-last) measures the polling mix (docs/load-model.md), the push
mix (closed_loop.PUSH_MIX_PER_MINUTE: lists read once per app session and when an event says
they changed) and each endpoint alone; the model is computed both from the two mixes and from
the endpoints weighted by each mix.  The sockets' side comes from the
last `make loadtest-ws` result (bench/results/ws_delivery.json): ASGI CPU per delivered event
and per idle socket.  Figures: docs/benchmarks/realtime.md, "Pushed events instead of polling".
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.harness import closed_loop, report
from bench.harness.common import read_result, write_result

READS = ("crossings", "feed", "profile", "me", "connections", "messages")


def per_user_minute(measured: dict, mix: dict[str, float], target: str) -> dict[str, float]:
    """CPU ms per user-minute of a mix: its requests a minute times its measured CPU per request."""
    requests = sum(mix.values())
    cpu = measured[target]["cpu_ms_per_request"]
    return {"requests": round(requests, 2), "reads": round(sum(v for k, v in mix.items() if k in READS), 2),
            "app_ms_per_request": cpu["app"], "db_ms_per_request": cpu["db"],
            "app_ms": round(requests * cpu["app"], 2), "db_ms": round(requests * cpu["db"], 2),
            "redis_ms": round(requests * cpu["redis"], 3)}


def by_endpoint(measured: dict, mix: dict[str, float]) -> dict[str, float]:
    """The same from each endpoint measured alone in the run (steadier than two mixes of a few
    thousand requests each); connect and story, never run alone (1 % of the mix), at the
    polling mix's cost per request."""
    def cpu(endpoint: str, tier: str) -> float:
        key = endpoint if endpoint in measured else "mix"
        return measured[key]["cpu_ms_per_request"][tier]

    return {tier + "_ms": round(sum(rate * cpu(e, tier) for e, rate in mix.items()), 2) for tier in ("app", "db")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--ws-result", default="ws_delivery",
                        help="the ws_delivery result to read (bench/results/NAME.json; "
                             "make loadtest-ws writes the default)")
    parser.add_argument("--from-last", action="store_true",
                        help="use the last closed-loop result (make bench-closed measures the push mix too)")
    parser.add_argument("--write-docs", action="store_true",
                        help="rewrite docs/BENCHMARKS.md's WebSocket block from the newest ws_* results")
    args = parser.parse_args(argv)
    ws = read_result(args.ws_result)
    if ws is None:
        raise SystemExit(f"no bench/results/{args.ws_result}.json: run `make loadtest-ws` first (the sockets' CPU)")
    targets = {"mix", "push", *closed_loop.ALONE}
    loop = read_result("closed-loop") if args.from_last else None
    if loop is None or not targets <= set(loop["figures"]["measured"]):
        if args.from_last:
            raise SystemExit("the last closed-loop result lacks the push mix or an endpoint: run `make bench-closed`")
        closed_loop.main(["--users", str(args.users), "--rounds", str(args.rounds), "--requests", str(args.requests),
                          "--only", ",".join(["mix", "push", *closed_loop.ALONE])])
        loop = read_result("closed-loop")
    assert loop is not None
    measured = loop["figures"]["measured"]
    poll = per_user_minute(measured, closed_loop.MIX_PER_MINUTE, "mix")
    push = per_user_minute(measured, closed_loop.PUSH_MIX_PER_MINUTE, "push")
    wsf = ws["figures"]
    event_ms = wsf["server_cpu_ms_per_event_net_of_idle"]
    # The idle sockets' CPU (protocol pings, slot heartbeats): a share of a core per held socket.
    idle_ms_per_socket_minute = wsf["server_cpu_percent_idle"] / 100 * 60_000 / wsf["users_connected"]
    sockets_ms = round(closed_loop.PUSH_EVENTS_PER_MINUTE * event_ms + idle_ms_per_socket_minute, 3)
    push_total = round(push["app_ms"] + sockets_ms, 2)
    poll_e, push_e = (by_endpoint(measured, closed_loop.MIX_PER_MINUTE),
                      by_endpoint(measured, closed_loop.PUSH_MIX_PER_MINUTE))
    figures = {
        "poll": {**poll, "by_endpoint": poll_e},
        "push": {**push, "asgi_ms": sockets_ms, "app_plus_asgi_ms": push_total, "by_endpoint": push_e},
        "by_endpoint_app_cpu_removed_percent": round(
            100 * (1 - (push_e["app_ms"] + sockets_ms) / poll_e["app_ms"]), 1),
        "by_endpoint_db_cpu_removed_percent": round(100 * (1 - push_e["db_ms"] / poll_e["db_ms"]), 1),
        "events_per_user_minute": closed_loop.PUSH_EVENTS_PER_MINUTE, "asgi_ms_per_event": event_ms,
        "asgi_idle_ms_per_socket_minute": round(idle_ms_per_socket_minute, 3),
        "session_minutes": closed_loop.PUSH_SESSION_MIN,
        "requests_removed_percent": round(100 * (1 - push["requests"] / poll["requests"]), 1),
        "reads_removed_percent": round(100 * (1 - push["reads"] / poll["reads"]), 1),
        "app_cpu_removed_percent": round(100 * (1 - push_total / poll["app_ms"]), 1),
        "db_cpu_removed_percent": round(100 * (1 - push["db_ms"] / poll["db_ms"]), 1) if poll["db_ms"] else None,
        "closed_loop_meta": loop["figures"]["meta"], "ws_delivery_measured_at": ws["measured_at"],
    }
    how = ("CPU per user-minute = requests a minute (the mix's weights) x CPU ms per request of that mix, "
           "both mixes measured in one closed-loop run (medians of interleaved rounds); by_endpoint: the weights "
           "x each endpoint measured alone in the same run; the push side adds the "
           "ASGI process's CPU per delivered event (net of idle) x events a minute, and its idle CPU per held "
           "socket, from the last ws_delivery run.")
    path = write_result("ws_push_model", figures, how, scale={"rounds": args.rounds, "requests": args.requests})
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")
    if args.write_docs:
        report.write_websockets_block()
    return 0


if __name__ == "__main__":
    sys.exit(main())
