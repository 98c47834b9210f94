"""The plan's claims that need the running app, each switched off and on in one run.

    python -m bench.claims.app [floor mix pooling prepared cachalot replicas ratelimit caching micro areas endpoints]

What each step compares and where results go: docs/benchmarks/README.md, "Under load".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.harness import servers
from bench.harness.common import BASE_DIR, RESULTS_DIR, all_results, ratio, read_result, write_result
from bench.harness.loadtest import loadtest

DURATION = float(os.environ.get("BENCH_CLAIM_DURATION", "15"))
USERS = int(os.environ.get("BENCH_CLAIM_USERS", "60"))
SPEEDUP = float(os.environ.get("BENCH_CLAIM_SPEEDUP", "4"))  # 60 users x 0.101 x 4 = 24 req/s
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# Side-by-side variants run interleaved (A B A B ...) this many times; the run with the median
# app+DB CPU of each variant is kept.  1 on a busy machine keeps the suite short; use 3 on a quiet one.
REPEATS = int(os.environ.get("BENCH_CLAIM_REPEATS", "1"))


def _run(name: str, classes: list[str], app_env: dict | None = None, login: str = "token",
         users: int = USERS, locust_env: dict | None = None, duration: float | None = None) -> dict:
    doc = loadtest(name=name, users=users, duration=duration or DURATION, speedup=SPEEDUP, workers=WORKERS,
                   classes=classes, app_env=app_env, login=login, locust_env=locust_env)
    f = doc["figures"]
    print(f"  {name}: {f['overall']['requests']} req, {f['overall']['errors']} errors, "
          f"app {f.get('cpu_ms_per_request', {}).get('app')} ms, db {f.get('cpu_ms_per_request', {}).get('db')} ms, "
          f"p95 {f['overall']['p95_ms']} ms", flush=True)
    return doc


def _variants(prefix: str, variants: dict[str, dict]) -> dict[str, dict]:
    """Run each variant (kwargs of _run) REPEATS times, interleaved; keep each one's median run."""
    runs: dict[str, list] = {key: [] for key in variants}
    for i in range(REPEATS):
        for key, kwargs in variants.items():
            name = f"{prefix}-{key}" if REPEATS == 1 else f"{prefix}-{key}-{i + 1}"
            runs[key].append(_run(name, **kwargs))
    return {key: sorted(docs, key=lambda d: _app_db(d) or 0)[(len(docs) - 1) // 2] for key, docs in runs.items()}


def _change(share: float) -> str:
    return f"{abs(round(100 * share))} % {'lower' if share < 0 else 'higher'}"


def _cpu(doc: dict, tier: str) -> float | None:
    return doc["figures"].get("cpu_ms_per_request", {}).get(tier)


def _app_db(doc: dict) -> float | None:
    app, db = _cpu(doc, "app"), _cpu(doc, "db")
    return None if app is None or db is None else round(app + db, 3)


def _brief(doc: dict) -> dict:
    f = doc["figures"]
    return {"run": doc["name"], "requests": f["overall"]["requests"], "errors": f["overall"]["errors"],
            "rate_per_s": f["overall"]["rate_per_s"], "app_ms": _cpu(doc, "app"), "db_ms": _cpu(doc, "db"),
            "redis_ms": _cpu(doc, "redis"), "app_plus_db_ms": _app_db(doc), "p50_ms": f["overall"]["p50_ms"],
            "p95_ms": f["overall"]["p95_ms"], "p99_ms": f["overall"]["p99_ms"],
            "db_queries_per_request": f["overall"]["db_queries_per_request"]}


def mix_works() -> bool:
    """True when the mix runs against real endpoints (the domain apps have landed)."""
    doc = read_result("loadtest-mix")
    if not doc:
        return False
    overall = doc["figures"]["overall"]
    return overall["requests"] > 0 and overall["errors"] / overall["requests"] < 0.05


def _workload() -> tuple[list[str], str]:
    """The mix when it works, else the DRF one-query floor view (a stand-in, said so in the result)."""
    if mix_works():
        return ["MobileUser"], "the load model's mix"
    return ["FloorDRFQueryUser"], "the DRF one-query floor view (the mix's endpoints were not all served yet)"


# -------------------------------------------------------------------------- runs


def floor() -> dict:
    """The framework floor and the app beside it."""
    runs = {cls: _run(f"floor-{label}", [cls]) for label, cls in
            [("django", "FloorDjangoUser"), ("drf", "FloorDRFUser"), ("drf-query", "FloorDRFQueryUser")]}
    figures = {label: _brief(doc) for label, doc in zip(("django", "drf", "drf_query"), runs.values(), strict=True)}
    # The harness's own cost: the same bare view without the per-request query/cache counter.
    figures["django_without_bench_counter"] = _brief(_run("floor-django-nocount", ["FloorDjangoUser"],
                                                          {"BENCH_QUERY_COUNT": "0"}))
    write_result("floor", figures, "python -m bench.claims.app floor: bare Django JsonResponse, bare DRF APIView and a "
                 "DRF view with one primary-key query (bench/hooks/floor_views.py), "
                 "same gunicorn settings and middleware, "
                 f"{USERS} users x speedup {SPEEDUP}, {DURATION:.0f} s each",
                 scale={"users": USERS, "speedup": SPEEDUP, "workers": WORKERS})
    return figures


def mix(users: int = 100, speedup: float = 2.5, duration: float | None = None) -> dict:
    doc = loadtest(name="loadtest-mix", users=users, duration=duration or max(DURATION, 30), speedup=speedup,
                   workers=WORKERS, login="api")
    return _brief(doc)


def pooling() -> dict:
    classes, what = _workload()
    runs = _variants("pooling", {
        "on": {"classes": classes, "app_env": {"DB_POOL": "1"}},
        "off": {"classes": classes, "app_env": {"DB_POOL": "0", "DB_CONN_MAX_AGE": "0"}},
        "persistent": {"classes": classes, "app_env": {"DB_POOL": "0", "DB_CONN_MAX_AGE": "600"}},
    })
    on, off, persistent = runs["on"], runs["off"], runs["persistent"]
    capacity = ratio(_app_db(off), _app_db(on))
    figures = {
        "workload": what, "on": _brief(on), "off": _brief(off), "persistent_connections": _brief(persistent),
        "capacity_ratio": capacity,
        "plan": "2-3x capacity (connection pooling)",
        "measured": f"{capacity}x less app+DB CPU per request with the pool than with a new connection per "
                    f"request ({_app_db(off)} -> {_app_db(on)} ms); Django's persistent connections "
                    f"(CONN_MAX_AGE) give {ratio(_app_db(off), _app_db(persistent))}x",
        "holds": bool(capacity and capacity >= 2),
    }
    write_result("claim-pooling", figures, f"python -m bench.claims.app pooling: {what}, DB_POOL=1 (psycopg pool) vs "
                 "DB_POOL=0 CONN_MAX_AGE=0 (connect per request) vs DB_POOL=0 CONN_MAX_AGE=600, same rate")
    return figures


def prepared() -> dict:
    classes, what = _workload()
    runs = _variants("prepared", {"on": {"classes": classes, "app_env": {"DB_SERVER_SIDE_BINDING": "1"}},
                                  "off": {"classes": classes, "app_env": {"DB_SERVER_SIDE_BINDING": "0"}}})
    on, off = runs["on"], runs["off"]
    db_saving = 1 - (_cpu(on, "db") or 0) / (_cpu(off, "db") or 1)
    total_saving = 1 - (_app_db(on) or 0) / (_app_db(off) or 1)
    micro = read_result("claim-prepared")
    figures = {
        "workload": what, "on": _brief(on), "off": _brief(off),
        "db_cpu_saving": round(db_saving, 3), "app_plus_db_saving": round(total_saving, 3),
        "micro": (micro or {}).get("figures", {}).get("measured"),
        "plan": "30% faster queries (prepared statements)",
        "measured": f"in the app: DB CPU {_change(-db_saving)}, app+DB CPU {_change(-total_saving)} per request "
                    f"({_app_db(off)} -> {_app_db(on)} ms)",
        "holds": db_saving >= 0.3,
    }
    write_result("claim-prepared-app", figures, f"python -m bench.claims.app prepared: {what}, "
                 "DB_SERVER_SIDE_BINDING=1 (prepare_threshold 5) vs 0, same rate")
    return figures


def cachalot() -> dict:
    """Not a claim of the plan: what django-cachalot costs on the mix (it inspects every query)."""
    classes, what = _workload()
    runs = _variants("cachalot", {"on": {"classes": classes, "app_env": {"CACHALOT_ENABLED": "1"}},
                                  "off": {"classes": classes, "app_env": {"CACHALOT_ENABLED": "0"}}})
    on, off = runs["on"], runs["off"]
    change = (_app_db(on) or 0) / (_app_db(off) or 1) - 1
    figures = {
        "workload": what, "on": _brief(on), "off": _brief(off),
        "plan": "(not in the plan) django-cachalot caches ORM queries on rarely written tables",
        "measured": f"app+DB CPU per request {_change(change)} with cachalot on ({_app_db(off)} -> {_app_db(on)} ms); "
                    f"DB queries per request {off['figures']['overall']['db_queries_per_request']} -> "
                    f"{on['figures']['overall']['db_queries_per_request']}",
        "holds": change < 0,
    }
    write_result("claim-cachalot", figures, f"python -m bench.claims.app cachalot: {what}, CACHALOT_ENABLED=1 vs 0")
    return figures


def replicas() -> dict:
    classes, what = _workload()
    doc = _run("replicas-mirror", classes, {"DATABASE_REPLICA_URLS": servers.database_url()})
    overall = doc["figures"]["overall"]
    total, replica = overall["db_queries_per_request"] or 0, overall["replica_queries_per_request"] or 0
    share = replica / total if total else 0.0
    per_endpoint = {name: {"queries": e["db_queries_per_request"], "replica": e["replica_queries_per_request"]}
                    for name, e in doc["figures"]["endpoints"].items()}
    gain = round(1 / (1 - share), 2) if share < 1 else None
    figures = {
        "workload": what, "run": _brief(doc), "replica_share_of_queries": round(share, 3), "per_endpoint": per_endpoint,
        "primary_capacity_gain": gain,
        "plan": "4x read capacity (read replicas)",
        "measured": f"{round(100 * share)} % of the queries went to the replica alias, so the primary serves "
                    f"{gain}x the traffic for the same query load (reads after a write stay on the primary)",
        "holds": bool(gain and gain >= 4),
    }
    write_result("claim-replicas", figures, f"python -m bench.claims.app replicas: {what} with a replica alias that "
                 "mirrors the primary (DATABASE_REPLICA_URLS = the bench database), queries per alias counted "
                 "per request by bench/hooks/middleware.py")
    return figures


def ratelimit() -> dict:
    if not mix_works():
        figures = {"plan": "prevent abuse, stable performance (rate limiting)", "holds": None,
                   "measured": "not measured: needs the mix's endpoints (run after the domain apps land)"}
        write_result("claim-ratelimit", figures, "python -m bench.claims.app ratelimit")
        return figures
    abusers = int(os.environ.get("BENCH_ABUSERS", "4"))
    abuse = {"BENCH_ABUSERS": str(abusers), "BENCH_ABUSE_WAIT_S": os.environ.get("BENCH_ABUSE_WAIT_S", "0")}
    users = USERS + abusers
    runs = _variants("ratelimit", {
        "baseline": {"classes": ["MobileUser"], "app_env": {"RATE_LIMIT_ENABLED": "1"}},
        "on": {"classes": ["MobileUser", "AbuserUser"], "app_env": {"RATE_LIMIT_ENABLED": "1"}, "users": users,
               "locust_env": abuse},
        "off": {"classes": ["MobileUser", "AbuserUser"], "app_env": {"RATE_LIMIT_ENABLED": "0"}, "users": users,
                "locust_env": abuse},
    })
    base, on, off = runs["baseline"], runs["on"], runs["off"]

    def abuse_stats(doc):
        e = doc["figures"]["endpoints"].get("abuse:GET", {})
        return {"requests": e.get("requests"), "rate_per_s": e.get("rate_per_s"), "statuses": e.get("statuses")}

    figures = {
        "baseline": _brief(base), "abuse_limited": _brief(on), "abuse_unlimited": _brief(off),
        "abuser_limited": abuse_stats(on), "abuser_unlimited": abuse_stats(off),
        "p95_ratio_limited": ratio(on["figures"]["overall"]["p95_ms"], base["figures"]["overall"]["p95_ms"]),
        "p95_ratio_unlimited": ratio(off["figures"]["overall"]["p95_ms"], base["figures"]["overall"]["p95_ms"]),
        "plan": "rate limiting prevents abuse, stable performance",
        "measured": f"normal users' p95 {base['figures']['overall']['p95_ms']} ms alone, "
                    f"{on['figures']['overall']['p95_ms']} ms beside {abusers} abusive clients with the limit "
                    f"({abuse_stats(on)['rate_per_s']} req/s, answered 429), "
                    f"{off['figures']['overall']['p95_ms']} ms without it ({abuse_stats(off)['rate_per_s']} req/s); "
                    f"app CPU per request (all requests) {_cpu(on, 'app')} vs {_cpu(off, 'app')} ms",
    }
    figures["holds"] = bool(figures["p95_ratio_limited"] and figures["p95_ratio_unlimited"]
                            and figures["p95_ratio_limited"] < figures["p95_ratio_unlimited"])
    write_result("claim-ratelimit", figures, "python -m bench.claims.app ratelimit: the mix alone, then the mix plus "
                 f"{abusers} clients of one account hammering a chat's messages (no think time) with "
                 "RATE_LIMIT_ENABLED=1 and =0; latency of the normal users only")
    return figures


def caching() -> dict:
    doc = read_result("loadtest-mix")
    if not doc:
        figures = {"plan": "80% cache hit rate", "holds": None, "measured": "not measured: run the mix first"}
        write_result("claim-caching", figures, "python -m bench.claims.app caching")
        return figures
    f = doc["figures"]
    gets = {name: e for name, e in f["endpoints"].items() if name.startswith("GET")}
    served_from_cache = {name: e["requests_without_db_query"] for name, e in gets.items()}
    n = sum(e["requests"] for e in gets.values())
    share = sum((e["requests_without_db_query"] or 0) * e["requests"] for e in gets.values()) / n if n else None
    redis_rate = f.get("redis", {}).get("hit_rate")
    figures = {
        "redis_keyspace_hit_rate": redis_rate, "get_requests_without_db_query": round(share, 3) if share else share,
        "per_endpoint_without_db_query": served_from_cache, "source_run": "loadtest-mix",
        "plan": "80% cache hit rate",
        "measured": f"Redis keyspace hit rate {redis_rate}; {round(100 * (share or 0))} % of the mix's GETs "
                    "were answered without any database query",
        "holds": bool(redis_rate and redis_rate >= 0.8),
    }
    write_result("claim-caching", figures, "from the loadtest-mix run: Redis INFO keyspace_hits/misses over the "
                 "window, and per GET endpoint the share of requests that sent no query to any database")
    return figures


def micro() -> None:
    env = servers.env()
    body_file = _api_bodies(env)
    if body_file:
        env["BENCH_GZIP_BODIES"] = body_file
    result = subprocess.run([sys.executable, "-m", "bench.claims.micro"], cwd=BASE_DIR, env=env, capture_output=True,
                            text=True)
    print(result.stdout, result.stderr[-2000:] if result.returncode else "", flush=True)


def _api_bodies(env) -> str | None:
    """Real responses of the mix's GET endpoints for one seeded user (for the gzip claim)."""
    path = RESULTS_DIR / ".api-bodies.json"
    script = f"""
import json, django, os
django.setup()
from django.test import Client
from accounts import services
from accounts.models import User
c = Client()
bodies = {{}}
for user in User.objects.exclude(display_name__startswith="Bench ").order_by("created_at")[:20]:
    _session, access, _refresh = services.open_session(user, user_agent="bench", ip="127.0.0.1")
    auth = {{"HTTP_AUTHORIZATION": "Bearer " + access}}
    for label, path in [("GET crossings/", "/api/v1/crossings/"), ("GET stories/feed/", "/api/v1/stories/feed/"),
                        ("GET connections/", "/api/v1/connections/?status=accepted"), ("GET me/", "/api/v1/me/")]:
        r = c.get(path, **auth)
        if r.status_code == 200 and len(r.content) > len(bodies.get(label, "")):
            bodies[label] = r.content.decode()
json.dump(bodies, open({str(path)!r}, "w"))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    if result.returncode != 0 or not path.exists() or json.loads(path.read_text()) == {}:
        return None
    return str(path)


def _partitioning(doc: dict) -> tuple[str, bool | None]:
    reads = doc["figures"].get("reads") or {}
    ratios = {name: r.get("flat_over_part") for name, r in reads.items() if isinstance(r, dict)}
    best = max((v for v in ratios.values() if v), default=None)
    text = "; ".join(f"{name}: {v}x" for name, v in ratios.items())
    rows = doc["figures"].get("rows")
    return (f"flat table ÷ partitioned, {rows:,} pings: {text}" if rows else text), (best >= 10 if best else None)


def _materialized_view(doc: dict) -> tuple[str, bool | None]:
    f = doc["figures"]
    wall, server = f.get("ratio_wall"), f.get("ratio_server")
    text = (f"view read {f.get('view_read_ms')} ms vs live aggregate {f.get('live_aggregate_ms')} ms: {wall}x "
            f"({server}x server-side); the staff selector {f.get('ratio_vs_selector')}x faster than live")
    return text, (wall >= 100 if wall else None)


AREA_CLAIMS = {  # claim -> (other areas' result names, their docs page, the plan's figure, summariser)
    "city partitioning": (("locations-partitions",), "docs/benchmarks/locations.md", "10x database capacity",
                          _partitioning),
    "materialized view": (("analytics-stats-mv",), "docs/benchmarks/analytics.md", "100x faster stats",
                          _materialized_view),
}


def areas() -> dict:
    """Claims measured by other areas' benchmarks: their results summarised, their pages linked."""
    found = {}
    for claim, (names, page, plan, summarise) in AREA_CLAIMS.items():
        results = [r for r in all_results() if r["name"] in names]
        measured, holds = "not measured yet by its area", None
        if results:
            try:
                measured, holds = summarise(results[0])
            except (KeyError, TypeError, ValueError):
                measured = f"see {results[0]['name']} in bench/results"
        found[claim] = {"plan": plan, "results": [r["name"] for r in results], "measured": measured, "holds": holds,
                        "how": results[0].get("how") if results else None,
                        "doc": page if (BASE_DIR / page).exists() else None}
    write_result("claim-areas", found, "python -m bench.claims.app areas: read from the areas' own results")
    return found


ENDPOINT_TASKS = {  # locustfile task -> (endpoint, requests per minute in the mix)
    "ping": ("POST /locations/", 2), "crossings": ("GET /crossings/", 1), "feed": ("GET /stories/feed/", 1),
    "profile": ("GET /users/[id]/", 0.5), "me": ("GET /me/", 0.25), "connections_list": ("GET /connections/", 0.25),
    "messages": ("GET /connections/[id]/messages/", 0.5), "send_message": ("POST /connections/[id]/messages/", 0.5),
}


def endpoints() -> dict:
    """Each endpoint of the mix alone at the mix's rate: its own CPU per request per tier."""
    rows = {}
    for task_name, (endpoint, per_minute) in ENDPOINT_TASKS.items():
        doc = _run(f"endpoint-{task_name}", ["MobileUser"], locust_env={"BENCH_ONLY": task_name},
                   duration=min(DURATION, 10))
        rows[endpoint] = {**_brief(doc), "mix_per_minute": per_minute}
    weight = sum(r["mix_per_minute"] for r in rows.values())
    predicted = {tier: round(sum((r[f"{tier}_ms"] or 0) * r["mix_per_minute"] for r in rows.values()) / weight, 3)
                 for tier in ("app", "db", "redis")}
    costliest = sorted(rows.items(), key=lambda kv: -((kv[1]["app_plus_db_ms"] or 0) * kv[1]["mix_per_minute"]))
    figures = {
        "endpoints": rows, "mix_weighted_ms": predicted,
        "share_of_mix_cpu": {name: round((r["app_plus_db_ms"] or 0) * r["mix_per_minute"] /
                                         max(1e-9, sum((x["app_plus_db_ms"] or 0) * x["mix_per_minute"]
                                                       for x in rows.values())), 3) for name, r in costliest},
        "measured": "costliest share of the mix: " + ", ".join(
            f"{name} ({(r['app_plus_db_ms'] or 0):.2f} ms app+db)" for name, r in costliest[:3]),
    }
    write_result("endpoints", figures, "python -m bench.claims.app endpoints: the mix restricted to one task at a time "
                 f"(BENCH_ONLY=<task>), same users and rate, {min(DURATION, 10):.0f} s each")
    return figures


STEPS = {"floor": floor, "mix": mix, "pooling": pooling, "prepared": prepared, "cachalot": cachalot,
         "replicas": replicas,
         "ratelimit": ratelimit, "caching": caching, "micro": micro, "areas": areas, "endpoints": endpoints}


def main(argv: list[str]) -> int:
    os.environ.setdefault("BENCH_INSTANCE", "harness")  # servers of our own (bench/harness/servers.py)
    for name in argv or list(STEPS):
        print(f"== {name}", flush=True)
        STEPS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
