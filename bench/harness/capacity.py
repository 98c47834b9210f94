"""Capacity plan from measured CPU per request: instances and monthly cost per tier.

    make capacity            # from bench/results/closed-loop.json, else loadtest-mix.json

The formula and options: docs/benchmarks/README.md, "The capacity plan".
"""

from __future__ import annotations

import argparse
import math
import sys

from bench.harness.common import read_result, write_result

REQ_PER_USER_S = 0.1
UTILISATION = 0.7
# The plan's instance types and prices ($/month), from its cost table.
APP = {"type": "c5.2xlarge", "vcpu": 8, "usd": 120}  # 5 for $600
DB_PRIMARY = {"type": "db.r5.2xlarge", "vcpu": 8, "usd": 500}
DB_REPLICA = {"type": "db.r5.large", "vcpu": 2, "usd": 150}  # 3 for $450
CACHE = {"type": "r5.large (ElastiCache)", "vcpu": 2, "usd": 100}  # 6 for $600
FIXED = {"load balancer": 20, "CDN": 100, "S3": 50}
PLAN = {"app": (5, 600), "db primary": (1, 500), "db replicas": (3, 450), "cache": (6, 600), "fixed": (None, 170),
        "total": (None, 2320)}


def vcpus(users: int, cpu_ms: float) -> float:
    return users * REQ_PER_USER_S * cpu_ms / 1000 / UTILISATION


def plan_for(users: int, app_ms: float, db_ms: float, redis_ms: float, read_share: float = 0.8) -> dict:
    """Instances and cost for ``users`` concurrent users.

    The database's vCPUs are split: writes and the reads that must stay on the primary go
    to one primary (scaled up to db.r5.2xlarge, then more primaries are needed: sharding
    by city), the rest to db.r5.large replicas.  Redis needs at least 2 nodes (a replica).
    """
    app_v, db_v, redis_v = vcpus(users, app_ms), vcpus(users, db_ms), vcpus(users, redis_ms)
    app_n = max(1, math.ceil(app_v / APP["vcpu"]))
    primary_v = db_v * (1 - read_share)
    replica_v = db_v * read_share
    primaries = max(1, math.ceil(primary_v / DB_PRIMARY["vcpu"]))
    replicas = math.ceil(replica_v / DB_REPLICA["vcpu"])
    cache_n = max(2, math.ceil(redis_v / CACHE["vcpu"]))
    cost = {
        "app": app_n * APP["usd"], "db primary": primaries * DB_PRIMARY["usd"],
        "db replicas": replicas * DB_REPLICA["usd"], "cache": cache_n * CACHE["usd"], "fixed": sum(FIXED.values()),
    }
    cost["total"] = sum(cost.values())
    return {
        "users": users, "req_per_s": users * REQ_PER_USER_S,
        "vcpu": {"app": round(app_v, 1), "db": round(db_v, 1), "redis": round(redis_v, 1)},
        "instances": {"app": app_n, "db primary": primaries, "db replicas": replicas, "cache": cache_n},
        "cost_usd_month": cost,
    }


def table(plans: list[dict], inputs: dict) -> str:
    lines = [
        f"CPU ms per request (measured: {inputs['source']}): app {inputs['app_ms']}, db {inputs['db_ms']}, "
        f"redis {inputs['redis_ms']}; reads off the primary {round(100 * inputs['read_share'])} %",
        "",
        "| tier | plan (100k) | " + " | ".join(f"{p['users']:,} users" for p in plans) + " |",
        "| --- | --- | " + " | ".join("---" for _ in plans) + " |",
    ]
    types = {"app": APP["type"], "db primary": DB_PRIMARY["type"], "db replicas": DB_REPLICA["type"],
             "cache": CACHE["type"]}
    for tier, kind in types.items():
        n, usd = PLAN[tier]
        cells = [f"{p['instances'][tier]} x {kind}: ${p['cost_usd_month'][tier]:,}" for p in plans]
        lines.append(f"| {tier} | {n} x {kind}: ${usd:,} | " + " | ".join(cells) + " |")
    lines.append("| LB + CDN + S3 | $170 | " + " | ".join("$170" for _ in plans) + " |")
    lines.append("| **total / month** | **$2,320** | " + " | ".join(f"**${p['cost_usd_month']['total']:,}**"
                                                              for p in plans) + " |")
    lines.append("| vCPU app / db / redis | 40 / 14 / 12 | " + " | ".join(
        f"{p['vcpu']['app']} / {p['vcpu']['db']} / {p['vcpu']['redis']}" for p in plans) + " |")
    return "\n".join(lines) + "\n"


# The WebSocket tier: ASGI processes (one core each) on the app instance type, which has 16 GiB.
WS_INSTANCE = {**APP, "ram_gib": 16}
WS_EVENTS_PER_USER_S = 0.1  # 1 000 events/s for 10 000 connected users, as benchmarked
WS_RAM_USABLE = 0.7  # of an instance's memory for sockets (the processes' base, the OS, headroom)


def ws_plan(users: int, kb_per_socket: float, cpu_ms_per_event: float, idle_cpu_ms_per_socket_s: float,
            events_per_user_s: float = WS_EVENTS_PER_USER_S, sockets_per_user: int = 1) -> dict:
    """WebSocket instances for ``users`` connected users with ``sockets_per_user`` sockets each
    (the cap is 3: phone, tablet, browser): enough memory for the sockets and enough CPU for
    their events (each socket of a user gets each event) plus the idle pings and heartbeats."""
    sockets = users * sockets_per_user
    ram_gib = sockets * kb_per_socket / 2**20
    by_memory = math.ceil(ram_gib / (WS_INSTANCE["ram_gib"] * WS_RAM_USABLE))
    cpu_v = (sockets * events_per_user_s * cpu_ms_per_event + sockets * idle_cpu_ms_per_socket_s) / 1000 / UTILISATION
    by_cpu = math.ceil(cpu_v / WS_INSTANCE["vcpu"])
    instances = max(2, by_memory, by_cpu)  # two at least: one can die (clients resume on the other)
    return {"users": users, "sockets_per_user": sockets_per_user, "events_per_s": sockets * events_per_user_s,
            "ram_gib": round(ram_gib, 1),
            "vcpu": round(cpu_v, 1), "instances_by_memory": by_memory, "instances_by_cpu": by_cpu,
            "instances": instances, "usd_month": instances * WS_INSTANCE["usd"]}


def ws_inputs() -> dict:
    doc = read_result("ws_delivery")
    if not doc:
        return {}
    f = doc["figures"]
    return {"kb_per_socket": f["rss_per_socket_kb"], "cpu_ms_per_event": f["server_cpu_ms_per_event_net_of_idle"],
            "idle_cpu_ms_per_socket_s": round(10 * f["server_cpu_percent_idle"] / max(1, f["users_connected"]), 5),
            "source": f"ws_delivery of {doc['measured_at']}"}


def ws_table(plans: list[dict], inputs: dict) -> str:
    lines = [
        f"WebSocket tier (measured: {inputs['source']}): {inputs['kb_per_socket']} KB per socket, "
        f"{inputs['cpu_ms_per_event']} ms CPU per delivered event, {inputs['idle_cpu_ms_per_socket_s']} ms CPU "
        f"per socket-second idle; {WS_EVENTS_PER_USER_S} events per connected user per second",
        "",
        "| connected users | sockets each | events delivered/s | socket memory | vCPU | instances (memory / CPU) "
        "| cost / month |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in plans:
        lines.append(f"| {p['users']:,} | {p['sockets_per_user']} | {p['events_per_s']:,.0f} | {p['ram_gib']} GiB | "
                     f"{p['vcpu']} | {p['instances']} x {WS_INSTANCE['type']} "
                     f"({p['instances_by_memory']} / {p['instances_by_cpu']}) | ${p['usd_month']:,} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ crossing detection
# One ping per user every 30 s (docs/load-model.md): 33 000 pings/s at 1 000 000 users.
PINGS_PER_USER_S = 0.033


def detection_plan(users: int, doc: dict) -> dict:
    """Detection workers and database CPU for ``users`` from bench/results/crossings-shards.json.

    Each shard is one single-threaded worker, so shards >= worker vCPU.  The shards' stores run
    in parallel but for the daily cap's count, under one lock: that time per ping
    (``serial_store_us_per_ping``) bounds the throughput of any number of shards.
    """
    fig = doc["figures"]
    pings = users * PINGS_PER_USER_S
    app_v = pings * fig["app_cpu_us_per_ping_2_shards"] / 1e6 / UTILISATION
    db_v = pings * fig["db_cpu_us_per_ping_2_shards"] / 1e6 / UTILISATION
    store_share = pings * fig["serial_store_us_per_ping"] / 1e6
    return {"users": users, "pings_per_s": round(pings), "shards": max(1, math.ceil(app_v)),
            "vcpu": {"workers": round(app_v, 1), "db": round(db_v, 1)},
            "store_lock_busy": round(store_share, 2), "fits": store_share <= UTILISATION}


def detection_table(users_list=(100_000, 1_000_000)) -> str:
    """The detection row of the plan (empty without a crossings-shards measurement)."""
    doc = read_result("crossings-shards")
    if not doc or "serial_store_us_per_ping" not in doc.get("figures", {}):
        return "Detection: no measurement (run `python -m bench.scenarios.crossings_shards`).\n"
    plans = [detection_plan(u, doc) for u in users_list]
    fig = doc["figures"]
    cells = []
    for p in plans:
        cell = (f"{p['pings_per_s']:,} pings/s: {p['shards']} shard{'s' if p['shards'] > 1 else ''} "
                f"(worker vCPU {p['vcpu']['workers']}), "
                f"db vCPU {p['vcpu']['db']}, store lock busy {round(100 * p['store_lock_busy'])} %")
        over = " -- over the 70 % utilisation: the cap's count under one lock must get cheaper"
        cells.append(cell + ("" if p["fits"] else over))
    return (f"Detection (measured: crossings-shards of {doc['measured_at']}; per ping: worker "
            f"{fig['app_cpu_us_per_ping_2_shards']} us, db {fig['db_cpu_us_per_ping_2_shards']} us, stores one at "
            f"a time {fig['serial_store_us_per_ping']} us)\n\n"
            "| tier | " + " | ".join(f"{p['users']:,} users" for p in plans) + " |\n"
            "| --- | " + " | ".join("---" for _ in plans) + " |\n"
            "| detection | " + " | ".join(cells) + " |\n")


def measured_inputs() -> dict:
    """CPU ms per request of the mix: the closed-loop run's (every worker busy, so no idle
    overhead billed: what a sized fleet runs at), else the fixed-rate load test's."""
    replicas = read_result("claim-replicas")
    read_share = (replicas or {}).get("figures", {}).get("replica_share_of_queries") or 0.8
    closed = read_result("closed-loop")
    mix = ((closed or {}).get("figures", {}).get("measured") or {}).get("mix")
    if mix:
        cpu = mix["cpu_ms_per_request"]
        return {"app_ms": cpu["app"], "db_ms": cpu["db"], "redis_ms": cpu.get("redis", 0.0), "read_share": read_share,
                "source": f"closed-loop mix (median of {mix['rounds']} rounds) of {closed['measured_at']}"}
    doc = read_result("loadtest-mix")
    if not doc or "cpu_ms_per_request" not in doc["figures"]:
        return {}
    cpu = doc["figures"]["cpu_ms_per_request"]
    return {"app_ms": cpu["app"], "db_ms": cpu["db"], "redis_ms": cpu.get("redis", 0.0), "read_share": read_share,
            "source": f"loadtest-mix of {doc['measured_at']}"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-ms", type=float)
    parser.add_argument("--db-ms", type=float)
    parser.add_argument("--redis-ms", type=float)
    parser.add_argument("--read-share", type=float, help="share of DB work that replicas can take (default: measured)")
    args = parser.parse_args(argv)
    print(detection_table())
    inputs = measured_inputs()
    for key in ("app_ms", "db_ms", "redis_ms", "read_share"):
        if getattr(args, key) is not None:
            inputs[key] = getattr(args, key)
            inputs["source"] = "given on the command line"
    ws = ws_inputs()
    ws_plans = [ws_plan(u, ws["kb_per_socket"], ws["cpu_ms_per_event"], ws["idle_cpu_ms_per_socket_s"],
                        sockets_per_user=n)
                for u in (100_000, 1_000_000) for n in (1, 3)] if ws else []
    ws_text = ws_table(ws_plans, ws) if ws else "WebSocket tier: no measurement (run `make loadtest-ws`).\n"
    if not {"app_ms", "db_ms", "redis_ms"} <= inputs.keys():
        print(ws_text)
        print("No measurement: run `make bench-closed` or `make loadtest` (or give --app-ms/--db-ms/--redis-ms).",
              file=sys.stderr)
        return 1
    inputs.setdefault("read_share", 0.8)
    plans = [plan_for(u, inputs["app_ms"], inputs["db_ms"], inputs["redis_ms"], inputs["read_share"])
             for u in (100_000, 1_000_000)]
    target = plan_for(100_000, 1.0, 0.25, inputs["redis_ms"], inputs["read_share"])
    text = table(plans, inputs)
    print(text)
    print(f"At the targets (app 1.0 ms, db 0.25 ms): 100,000 users need {target['vcpu']['app']} app vCPU and "
          f"{target['vcpu']['db']} db vCPU, ${target['cost_usd_month']['total']:,}/month.")
    print("\n" + ws_text)
    write_result("capacity", {"inputs": inputs, "plans": plans, "at_targets_100k": target, "plan_total_usd": 2320,
                              "table_md": text, "ws_inputs": ws, "ws_plans": ws_plans, "ws_table_md": ws_text},
                 "python -m bench.harness.capacity (make capacity): "
                 "vCPU = users x 0.1 req/s x CPU ms / 1000 / 0.7 per tier")
    return 0


if __name__ == "__main__":
    sys.exit(main())
