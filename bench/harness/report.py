"""Write docs/BENCHMARKS.md from bench/results/*.json (ours and other areas'): never by hand.

    python -m bench.harness.report        # make bench runs it last
"""

from __future__ import annotations

import sys

from bench.harness.common import BASE_DIR, all_results, marked_block, read_result, replace_marked_block

DOC = BASE_DIR / "docs" / "BENCHMARKS.md"
OURS = ("loadtest-", "floor", "claim-", "capacity", "pooling-", "prepared-", "replicas-", "ratelimit-", "profile",
        "endpoint", "closed-loop", "ws_")
CLAIM_ORDER = [
    ("claim-pooling", "Connection pooling"), ("claim-indexes", "The listed indexes"), ("claim-gzip", "gzip"),
    ("claim-json", "Fast JSON"), ("claim-caching", "Caching"), ("claim-pipelining", "Redis pipelining"),
    ("claim-replicas", "Read replicas"), ("claim-prepared", "Prepared statements and batch inserts"),
    ("claim-prepared-app", "Prepared statements, in the app"), ("claim-ratelimit", "Rate limiting"),
    ("claim-cachalot", "django-cachalot (ours, not the plan's)"),
]


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _pct(value) -> str | None:
    return None if value is None else f"{value * 100:.1f} %"


def _verdict(holds) -> str:
    return {True: "holds", False: "does not hold", None: "not measured"}.get(holds, str(holds))


def header(mix: dict | None) -> list[str]:
    machine = (mix or {}).get("machine") or {}
    scale = (mix or {}).get("scale") or {}
    return [
        "# Benchmarks",
        "",
        "Written by `make bench` (bench/harness/report.py) from `bench/results/*.json`; do not edit by hand.",
        "Every figure comes from a script under `bench/`, named beside it with the command that produced it.",
        "",
        f"- **Machine**: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gb', '?')} GB, Python {machine.get('python', '?')}; {machine.get('note', '')}; "
        f"1-minute load average {machine.get('load_avg_1m', '?')} when the mix finished.",
        f"- **Date**: {(mix or {}).get('measured_at', '?')} (each result carries its own time).",
        f"- **Scale**: `seed_demo` data in a dedicated bench database: {scale.get('database_users', '?')} users "
        "(a month-like history: pings, crossings, connections, messages, stories); "
        f"{scale.get('users', '?')} simulated users at {scale.get('target_rate_per_s', '?')} req/s "
        f"(think time divided by {scale.get('speedup', '?')}), gunicorn with {scale.get('gunicorn_workers', '?')} "
        "sync workers.",
        "- **Method**: CPU time per request per tier (app = gunicorn master + workers, db = the bench PostgreSQL "
        "cluster, redis = the bench redis-server), from the kernel's per-thread run time over the measured window, "
        "divided by the requests served. Latency percentiles from every request of the window. "
        "The bench servers are separate from the development ones, so other engineers' tests do not bill them; "
        "the CPU they share still inflates latency, so read p95/p99 as upper bounds.",
        "- **Reproduce**: `make bench` (all of it, about 15 minutes on 2 cores), `make loadtest USERS=100 "
        "DURATION=30`, `make capacity`. On a quiet machine, `BENCH_CLAIM_REPEATS=3 BENCH_CLAIM_DURATION=30 make "
        "bench` interleaves each side-by-side pair three times and keeps the median. See bench/README.md.",
        "",
    ]


def targets(mix: dict | None, caching: dict | None) -> list[str]:
    if not mix:
        return ["## Targets (docs/load-model.md)", "", "No mix run yet: `make loadtest`.", ""]
    f = mix["figures"]
    cpu = f.get("cpu_ms_per_request", {})
    o = f["overall"]
    hit = (caching or {}).get("figures", {}).get("get_requests_without_db_query")
    redis_hit = f.get("redis", {}).get("hit_rate")

    def row(name, target, measured, ok, by):
        return f"| {name} | {target} | {_fmt(measured)} | {'met' if ok else 'missed'} | {by} |"

    def over(measured, limit):
        return f"{measured / limit:.1f}x the target" if measured is not None and measured > limit else "–"

    rows = [
        row("app CPU per request (mix)", "≤ 1.0 ms", cpu.get("app"), (cpu.get("app") or 99) <= 1.0,
            over(cpu.get("app"), 1.0)),
        row("DB CPU per request (mix)", "≤ 0.25 ms", cpu.get("db"), (cpu.get("db") or 99) <= 0.25,
            over(cpu.get("db"), 0.25)),
        row("p95 latency", "≤ 25 ms", o["p95_ms"], (o["p95_ms"] or 1e9) <= 25, over(o["p95_ms"], 25)),
        row("p99 latency", "≤ 50 ms", o["p99_ms"], (o["p99_ms"] or 1e9) <= 50, over(o["p99_ms"], 50)),
        row("errors", "0", o["errors"], o["errors"] == 0, "–"),
        row("cache: GETs answered without a DB query (this short mix)", "≥ 90 %", _pct(hit), (hit or 0) >= 0.9,
            f"{(0.9 - hit) * 100:.0f} points short" if hit is not None and hit < 0.9 else "–"),
        row("cache: Redis keyspace hit rate (this short mix)", "≥ 90 %", _pct(redis_hit), (redis_hit or 0) >= 0.9,
            f"{(0.9 - redis_hit) * 100:.0f} points short" if redis_hit is not None and redis_hit < 0.9 else "–"),
        *social_rows(row, over),
    ]
    return ["## Targets (docs/load-model.md) against the mix", "",
            f"Run `{mix['name']}`: {o['requests']} requests in {f['elapsed_s']} s ({o['rate_per_s']} req/s). "
            "In 30 s each simulated user reads each endpoint once or twice, so most of this mix's reads are "
            "first reads (misses by construction); the steady-state cache figures come from "
            "`bench.scenarios.social_reads` (docs/benchmarks/social.md), in the rows marked so.", "",
            "| figure | target | measured | | by how much |", "| --- | --- | ---: | --- | --- |", *rows, ""]


def social_rows(row, over) -> list[str]:
    """The cacheable reads in steady state, from bench.scenarios.social_reads (when it has been run)."""
    doc = read_result("social-reads")
    if not doc:
        return []
    f = doc["figures"]
    reads = [name for name in ("crossings", "connections", "feed", "profile") if name in f]
    warm = [f[name]["warm"]["cache_hit_rate"] for name in reads if f[name]["warm"].get("cache_hit_rate") is not None]
    rows = []
    if warm:
        low = min(warm)
        rows.append(row("cache: cacheable reads without SQL, steady state (social_reads, warm)", "≥ 90 %",
                        f"{_pct(low)} (lowest of {len(warm)})", low >= 0.9, "–"))
    mix_rate = (f.get("mix") or {}).get("read_cache_hit_rate")
    if mix_rate is not None:
        rows.append(row("cache: reads without SQL in social_reads' mix (with writes)", "≥ 90 %", _pct(mix_rate),
                        mix_rate >= 0.9, "–"))
    floor = (f.get("floor_drf") or {}).get("saturated", {}).get("app_cpu_ms")
    hot = [f[name]["saturated"]["app_cpu_ms"] for name in reads if "saturated" in f[name]]
    if floor and hot:
        worst = max(hot)
        scaled = worst / floor * 0.85  # docs/load-model.md anchors its figures on a 0.85 ms DRF floor
        rows.append(row("app CPU per cached read (social_reads, saturated)", "≤ 1.0 ms",
                        f"{min(hot):.2f}–{worst:.2f} ms, {min(hot) / floor:.2f}–{worst / floor:.2f}x the DRF floor "
                        f"of the run ({floor:.2f} ms); {scaled:.2f} ms at the load model's 0.85 ms floor",
                        scaled <= 1.0, over(scaled, 1.0)))
    return rows


def mix_table(mix: dict | None) -> list[str]:
    if not mix:
        return []
    md = (BASE_DIR / "bench" / "results" / f"{mix['name']}.md")
    body = md.read_text().split("\n", 2)[2] if md.exists() else ""
    return ["## The load model's mix, per endpoint", "", f"Command: `{mix['how']}`", "", body.strip(), "",
            f"Redis: {mix['figures'].get('redis')}. App/DB/Redis CPU seconds in the window: "
            f"{mix['figures'].get('cpu_s')}.", ""]


def floor_table(mix: dict | None) -> list[str]:
    floor = read_result("floor")
    if not floor:
        return []
    app_mix = (mix or {}).get("figures", {}).get("cpu_ms_per_request", {}).get("app")
    lines = ["## The framework floor", "", f"Command: `{floor['how']}`", "",
             "| view | app ms/req | db ms/req | p50 ms | p95 ms | p99 ms | mix app CPU ÷ this |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, b in floor["figures"].items():
        times = f"{app_mix / b['app_ms']:.1f}x" if app_mix and b.get("app_ms") else "–"
        lines.append(f"| {label} | {_fmt(b['app_ms'])} | {_fmt(b['db_ms'])} | {_fmt(b['p50_ms'])} | "
                     f"{_fmt(b['p95_ms'])} | {_fmt(b['p99_ms'])} | {times} |")
    lines += ["", "docs/load-model.md's day-one floor on this machine: Django 0.6 ms, DRF 0.85 ms, DRF + one query "
              "1.0 ms app + 0.13 ms DB. The floor views run through the project's full middleware stack "
              "(Prometheus, request id, security, sessions, CSRF, auth, gzip) and the bench query counter.", ""]
    return lines


def endpoints_section() -> list[str]:
    doc = read_result("endpoints")
    if not doc:
        return []
    f = doc["figures"]
    lines = ["## Each endpoint alone (what the mix's CPU is made of)", "", f"Command: `{doc['how']}`", "",
             "| endpoint | per user-minute | app ms/req | db ms/req | redis ms/req | DB queries/req | p95 ms "
             "| share of the mix's app+db CPU |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in f["endpoints"].items():
        lines.append(f"| {name} | {_fmt(r['mix_per_minute'])} | {_fmt(r['app_ms'])} | {_fmt(r['db_ms'])} | "
                     f"{_fmt(r['redis_ms'])} | {_fmt(r['db_queries_per_request'])} | {_fmt(r['p95_ms'])} | "
                     f"{f['share_of_mix_cpu'].get(name, 0) * 100:.0f} % |")
    w = f["mix_weighted_ms"]
    lines += ["", f"Weighted by the mix: app {w['app']} ms, db {w['db']} ms, redis {w['redis']} ms per request "
              "(compare with the mix run above; logins and the rare writes are left out).", ""]
    return lines


def claims_table() -> list[str]:
    lines = ["## The plan's claims, measured side by side", "",
             "| claim | plan says | measured here | verdict | how |", "| --- | --- | --- | --- | --- |"]
    for name, label in CLAIM_ORDER:
        doc = read_result(name)
        if not doc:
            lines.append(f"| {label} | | not measured yet | not measured | `python -m bench.claims.app` |")
            continue
        f = doc["figures"]
        lines.append(f"| {label} | {f.get('plan', '')} | {f.get('measured', '')} | {_verdict(f.get('holds'))} | "
                     f"{doc['how']} |")
    areas = read_result("claim-areas")
    for claim, info in ((areas or {}).get("figures") or {}).items():
        where = f"its area's benchmark: `{info.get('how')}`" if info.get("how") else "–"
        if info.get("doc"):
            where += f" ({info['doc']})"
        lines.append(f"| {claim.capitalize()} | {info.get('plan')} | {info.get('measured')} | "
                     f"{_verdict(info.get('holds'))} | {where} |")
    lines.append("")
    return lines


def capacity_section() -> list[str]:
    doc = read_result("capacity")
    if not doc:
        return []
    f = doc["figures"]
    t = f["at_targets_100k"]
    return ["## Capacity plan", "", f"Command: `make capacity` ({doc['how']}).", "", f["table_md"].strip(), "",
            f"At the load model's targets (app 1.0 ms, DB 0.25 ms) 100 000 users would need {t['vcpu']['app']} app "
            f"and {t['vcpu']['db']} DB vCPU: ${t['cost_usd_month']['total']:,}/month.", ""]


def profile_section() -> list[str]:
    docs = [d for d in all_results() if d["name"].startswith("profile") and "self_by_component" in d["figures"]]
    lines = []
    for doc in sorted(docs, key=lambda d: d["name"] != "profile"):
        f = doc["figures"]
        title = "the mix" if doc["name"] == "profile" else doc["name"].removeprefix("profile-")
        lines += [f"## Where the app's CPU goes (py-spy profile of {title})", "", f"Command: `{doc['how']}`. "
                  f"{f.get('samples')} samples; {f.get('import_samples_left_out', 0)} samples of lazy imports "
                  "(a worker's first requests) left out.", "",
                  "| component (innermost frame's package) | share of samples |", "| --- | ---: |"]
        for name, share in list(f.get("self_by_component", {}).items())[:12]:
            lines.append(f"| {name} | {share * 100:.1f} % |")
        lines += ["", "| inclusive (any frame on the stack) | share of samples |", "| --- | ---: |"]
        for name, share in f.get("inclusive", {}).items():
            lines.append(f"| {name} | {share * 100:.1f} % |")
        for heading, key in (("hottest functions (self)", "top_functions_self"),
                             ("our functions (inclusive)", "top_functions_ours_inclusive")):
            if f.get(key):
                lines += ["", f"| {heading} | share of samples |", "| --- | ---: |"]
                lines += [f"| `{name}` | {share * 100:.1f} % |" for name, share in f[key].items()]
        lines.append("")
    return lines


def closed_loop_section() -> list[str]:
    """The headline: the mix near saturation beside the floor (bench/harness/closed_loop.py).
    From this machine's newest run, else the table the document holds (results are not committed)."""
    from bench.harness import closed_loop

    doc = read_result("closed-loop")
    body = closed_loop.markdown(doc["figures"]) if doc else closed_loop.current_block()
    if not body:
        return []
    return ["## Headline: the mix near saturation, beside the framework floor (closed loop)", "",
            "App, database and Redis CPU per request with every gunicorn worker busy (`make bench-closed`, "
            "bench/harness/closed_loop.py); the ratio column divides by the bare DRF view of the same run. "
            "Where the time goes and what was changed: docs/benchmarks/performance.md.", "",
            closed_loop.BEGIN, body, closed_loop.END, ""]


def others_section() -> list[str]:
    docs = [d for d in all_results() if not d["name"].startswith(OURS)]
    if not docs:
        return []
    lines = ["## Other areas' results (bench/results, their own format notes in docs/benchmarks/)", ""]
    for d in docs:
        f = d["figures"]
        scalars = {k: v for k, v in f.items() if isinstance(v, (int, float, str, bool)) or v is None}
        shown = f.get("measured") or ", ".join(f"{k}: {_fmt(v)}" for k, v in list(scalars.items())[:10]) or \
            "figures: " + ", ".join(f)
        lines += [f"- **{d['name']}** ({d.get('measured_at', '?')}; scale {d.get('scale') or '?'}): {shown}. "
                  f"How: {d.get('how', '?')}"]
    pages = sorted((BASE_DIR / "docs" / "benchmarks").glob("*.md"))
    if pages:
        lines += ["", "Area write-ups: " + ", ".join(f"[{p.stem}](benchmarks/{p.name})" for p in pages) + "."]
    lines.append("")
    return lines


def closing_note(mix: dict | None) -> list[str]:
    """Where the targets are missed, by how much, and what dominates the cost (from the figures)."""
    if not mix:
        return []
    f = mix["figures"]
    cpu = f.get("cpu_ms_per_request", {})
    lines = ["## Closing note", ""]
    misses = []
    for label, value, limit in (("app CPU", cpu.get("app"), 1.0), ("DB CPU", cpu.get("db"), 0.25),
                                ("p95", f["overall"]["p95_ms"], 25), ("p99", f["overall"]["p99_ms"], 50)):
        if value is not None and value > limit:
            misses.append(f"{label} {value:g} against {limit:g} ({value / limit:.1f}x)")
    errors = {name: e["statuses"] for name, e in f["endpoints"].items() if e["errors"]}
    if errors:
        misses.append(f"{f['overall']['errors']} errors (" + "; ".join(
            f"{name}: " + ", ".join(f"{n} x {code}" for code, n in st.items() if not code.startswith(("2", "4")))
            for name, st in errors.items()) + ")")
    load = (mix.get("machine") or {}).get("load_avg_1m")
    cores = (mix.get("machine") or {}).get("cores") or 1
    busy = load is not None and load > cores
    lines.append("- Targets missed: " + ("; ".join(misses) if misses else "none") + ". " + (
        f"The machine's 1-minute load average was {load} on {cores} cores when the mix ran: latency is mostly "
        "queueing and CPU per request is inflated by contention; re-run `make bench` on a quiet machine."
        if busy else f"The machine was quiet when the mix ran (load average {load} on {cores} cores)."))
    endpoints = read_result("endpoints")
    if endpoints:
        top = list(endpoints["figures"]["share_of_mix_cpu"].items())[:3]
        lines.append("- The mix's CPU is dominated by " + ", ".join(f"{n} ({s * 100:.0f} %)" for n, s in top) +
                     " (each endpoint alone, weighted by its rate).")
    prof = read_result("profile")
    if prof and prof["figures"].get("self_by_component"):
        top = list(prof["figures"]["self_by_component"].items())[:4]
        inc = list(prof["figures"].get("inclusive", {}).items())[:5]
        lines.append("- In the app's own CPU (py-spy, GIL-holding samples): " +
                     ", ".join(f"{n} {s * 100:.0f} %" for n, s in top) + "; on the stack: " +
                     ", ".join(f"{n} {s * 100:.0f} %" for n, s in inc) + ".")
    note = BASE_DIR / "bench" / "NOTES.md"
    if note.exists():
        lines += ["", note.read_text().strip()]
    lines.append("")
    return lines


WS_BEGIN, WS_END = "<!-- websockets:begin -->", "<!-- websockets:end -->"


def websockets_block() -> str:
    """The WebSocket figures from this machine's newest ws_delivery / ws_gc / ws_push_model runs
    ('' when none: the document's block is kept)."""
    lines = []
    delivery = read_result("ws_delivery")
    if delivery:
        f, scale = delivery["figures"], delivery.get("scale", {})
        lines.append(
            f"- Delivery (`make loadtest-ws`, bench/scenarios/ws_delivery.py; {delivery['measured_at'][:16]}, "
            f"load average {f['load_average_1m'][0]}): {f['users_connected']} sockets in one uvicorn process, "
            f"{f['rate_published']} events/s for {scale.get('duration_s')} s: {f['events_delivered']} of "
            f"{f['events_published']} delivered; latency p50 {f['p50_ms']} / p95 {f['p95_ms']} / p99 "
            f"**{f['p99_ms']} ms** (goal p99 ≤ 100 ms), max {f['max_ms']} ms; server CPU "
            f"{f['server_cpu_ms_per_event_net_of_idle']} ms per delivered event net of idle; "
            f"{f['rss_per_socket_kb']} KB RSS per socket (goal ≤ 50 KB).")
    idle = read_result("ws_sockets")
    if idle and "idle_sockets_opened" in idle["figures"]:
        f, latency = idle["figures"], idle["figures"].get("latency") or {}
        lines.append(
            f"- Idle sockets (bench/scenarios/ws_sockets.py; {idle['measured_at'][:16]}): "
            f"{f['idle_sockets_opened']} held by one process ({f['connect_failures']} failures), "
            f"{f['rss_per_socket_kb']} KB RSS each; REST POST → receiver's socket with them held: p50 "
            f"{latency.get('p50_ms')} / p99 {latency.get('p99_ms')} ms. This machine's limit of 20 000 open files "
            "per process stops a single process short of 20 000 sockets.")
    gc_run = read_result("ws_gc")
    if gc_run and {"python_default", "freeze"} <= set(gc_run["figures"]):
        d, z = gc_run["figures"]["python_default"], gc_run["figures"]["freeze"]
        lines.append(
            f"- Garbage collection (bench/scenarios/ws_gc.py, {d['sockets']} sockets): a full collection "
            f"{d['full_collection_ms']} ms with Python's collector alone, {z['full_collection_ms']} ms with "
            f"realtime/heap.py's freezing; the hourly thaw {z['thaw_ms']} ms; {z['freed_per_closed_socket']} "
            "objects per closed socket wait for it.")
    push = read_result("ws_push_model")
    if push:
        f = push["figures"]
        lines.append(
            f"- Pushed events instead of polling (bench/scenarios/ws_push_model.py): {f['requests_removed_percent']} % "
            f"of the mix's requests and {f['reads_removed_percent']} % of its reads removed, with app sessions of "
            f"{f['session_minutes']} minutes; app CPU (the ASGI process's included) "
            f"{f.get('by_endpoint_app_cpu_removed_percent', '?')} % less from the endpoints' costs, "
            f"{f['app_cpu_removed_percent']} % from the two mixes measured; database CPU "
            f"{f.get('by_endpoint_db_cpu_removed_percent', '?')} % less.")
    return "\n".join(lines)


def websockets_section() -> list[str]:
    body = websockets_block() or marked_block(DOC, WS_BEGIN, WS_END)
    if not body:
        return []
    return ["## WebSockets (docs/benchmarks/realtime.md)", "", WS_BEGIN, body, WS_END, ""]


def write_websockets_block() -> None:
    """Rewrite only the WebSocket block of docs/BENCHMARKS.md (added after the headline if missing)."""
    from bench.harness import closed_loop

    if replace_marked_block(DOC, WS_BEGIN, WS_END, websockets_block()):
        return
    head, tail = DOC.read_text().split(closed_loop.END, 1)
    DOC.write_text(head + closed_loop.END + "\n\n" + "\n".join(websockets_section()).rstrip() + tail)


def build() -> str:
    mix = read_result("loadtest-mix")
    caching = read_result("claim-caching")
    parts = [*header(mix), *closed_loop_section(), *websockets_section(),
             *targets(mix, caching), *mix_table(mix), *endpoints_section(),
             *floor_table(mix), *claims_table(),
             *capacity_section(), *profile_section(), *others_section(), *closing_note(mix)]
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(build())
    print(f"written: {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
