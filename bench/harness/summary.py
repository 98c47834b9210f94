"""Summaries of a load test's requests: what the locustfile writes at the end of its window.

Kept apart from the locustfile so that it imports (and is tested) without Locust and gevent.
The request record: docs/benchmarks/README.md, "The load test".
"""

from __future__ import annotations

from collections import defaultdict

from bench.harness.common import percentile


def endpoint_summary(rows: list, elapsed: float) -> dict:
    times = [r[0] for r in rows]
    queries = [r[3] for r in rows if r[3] is not None]
    replica = [r[4] for r in rows if r[4] is not None]
    gets = sum(r[5] or 0 for r in rows)
    hits = sum(r[6] or 0 for r in rows)
    statuses: dict[str, int] = defaultdict(int)
    for r in rows:
        statuses[str(r[7])] += 1
    return {
        "requests": len(rows),
        "errors": sum(1 for r in rows if not r[2]),
        "rate_per_s": round(len(rows) / elapsed, 2) if elapsed else None,
        "p50_ms": _round(percentile(times, 50)),
        "p95_ms": _round(percentile(times, 95)),
        "p99_ms": _round(percentile(times, 99)),
        "mean_ms": _round(sum(times) / len(times)) if times else None,
        "mean_bytes": round(sum(r[1] or 0 for r in rows) / len(rows)) if rows else None,
        "db_queries_per_request": round(sum(queries) / len(queries), 2) if queries else None,
        "replica_queries_per_request": round(sum(replica) / len(replica), 2) if replica else None,
        "requests_without_db_query": round(sum(1 for q in queries if q == 0) / len(queries), 3) if queries else None,
        "django_cache_gets": gets,
        "django_cache_hits": hits,
        "statuses": dict(statuses),
    }


def _round(value):
    return None if value is None else round(value, 2)


def summarise(records: dict, elapsed: float, cpu: dict | None, redis_before, redis_after) -> dict:
    all_rows = [row for rows in records.values() for row in rows]
    endpoints = {name: endpoint_summary(rows, elapsed) for name, rows in sorted(records.items())}
    normal = [row for name, rows in records.items() if not name.startswith("abuse:") for row in rows]
    overall = endpoint_summary(normal, elapsed)
    result = {"elapsed_s": round(elapsed, 2), "overall": overall, "endpoints": endpoints,
              "all_requests_including_abuse": len(all_rows)}
    served = len(all_rows)
    if cpu is not None and served:
        result["cpu_s"] = {tier: round(v, 3) for tier, v in cpu.items()}
        result["cpu_ms_per_request"] = {tier: round(v * 1000 / served, 3) for tier, v in cpu.items()}
    if redis_before and redis_after:
        hits = redis_after["keyspace_hits"] - redis_before["keyspace_hits"]
        misses = redis_after["keyspace_misses"] - redis_before["keyspace_misses"]
        commands = redis_after["total_commands_processed"] - redis_before["total_commands_processed"]
        result["redis"] = {
            "keyspace_hits": hits, "keyspace_misses": misses,
            "hit_rate": round(hits / (hits + misses), 3) if hits + misses else None,
            "commands_per_request": round(commands / served, 2) if served else None,
        }
    return result
