"""The home screen: one GraphQL request against the four REST calls it replaces, same data,
same process, through the whole middleware stack with Django's test client.

    .venv/bin/python -m bench.scenarios.graphql_home [--crossings 60] [--connections 40] [--rounds 200]

App CPU (process time) per screen, SQL queries, bytes on the wire, latency, warm and cold
cache, and GraphQL's cost per returned item.  Figures: docs/benchmarks/graphql.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time

os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"  # per-process database name and cache key prefix

REST_CALLS = ("/api/v1/me/", "/api/v1/crossings/?page_size={n}", "/api/v1/connections/?page_size={n}",
              "/api/v1/stories/feed/")


def _seed(crossings: int, connections: int):
    from connections.models import Message
    from tests.factories import make_connection, make_crossing, make_story, make_user

    me = make_user(display_name="Bench viewer")
    for i in range(crossings):
        other = make_user(display_name=f"Crossed {i}", bio="walks the dog at noon")
        make_crossing(me, other)
        if i < connections:
            conn = make_connection(other, me)
            for j in range(i % 4):
                Message.objects.create(connection=conn, sender_id=other.pk, body=f"message {j}")
            make_story(other, f"story of {i}")
            if i % 2:
                make_story(other, f"second story of {i}", visibility="public")
    make_story(me, "my own story")
    return me


def _wire_bytes(response) -> int:
    head = sum(len(name) + len(value) + 4 for name, value in response.items()) + len("HTTP/1.1 200 OK\r\n\r\n")
    return head + len(response.content)


class Screen:
    """One way of fetching the home screen: ``run()`` returns (bytes, items, status ok)."""

    def __init__(self, client, page: int, kind: str):
        """``kind``: rest (4 GETs), post (the document in a POST), persisted_post (its hash in a
        POST), persisted_get (its hash in a GET: the response cache stores and replays it)."""
        from config.graphql import PERSISTED_DIR

        self.client, self.page, self.kind = client, page, kind
        home = (PERSISTED_DIR / "home.graphql").read_text()
        variables = {"crossings": page, "connections": page}
        by_hash = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(home.encode()).hexdigest()}}
        if kind == "post":
            self.body = json.dumps({"query": home, "variables": variables})
        else:
            self.body = json.dumps({"extensions": by_hash, "variables": variables})
        self.params = {"extensions": json.dumps(by_hash), "variables": json.dumps(variables)}

    def run(self) -> tuple[int, int]:
        if self.kind == "rest":
            total = items = 0
            for path in REST_CALLS:
                response = self.client.get(path.format(n=self.page), HTTP_ACCEPT_ENCODING="gzip")
                assert response.status_code == 200, (path, response.status_code, response.content[:200])
                total += _wire_bytes(response)
                if "results" in (data := _json(response)):
                    items += len(data["results"])
            return total, items
        if self.kind == "persisted_get":
            response = self.client.get("/graphql/", self.params, HTTP_ACCEPT_ENCODING="gzip")
        else:
            response = self.client.post("/graphql/", self.body, content_type="application/json",
                                        HTTP_ACCEPT_ENCODING="gzip")
        data = _json(response)
        assert response.status_code == 200 and "errors" not in data, data
        d = data["data"]
        return _wire_bytes(response), len(d["crossings"]["items"]) + len(d["connections"]["items"]) + len(d["feed"])


def _json(response) -> dict:
    content = response.content
    if response.get("Content-Encoding") == "gzip":
        import gzip  # only gzip-encoded answers need it

        content = gzip.decompress(content)
    return json.loads(content)


def _queries(fn) -> int:
    from django.db import connections

    executed: list[str] = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    wrappers = [conn.execute_wrapper(count) for conn in connections.all()]
    for wrapper in wrappers:
        wrapper.__enter__()
    try:
        fn()
    finally:
        for wrapper in reversed(wrappers):
            wrapper.__exit__(None, None, None)
    return len(executed)


def measure(screen: Screen, rounds: int, cold: bool) -> dict:
    from django.core.cache import cache

    screen.run()  # warm the code paths (and, unless cold, the caches)
    cpu, wall = [], []
    for _ in range(rounds):
        if cold:
            cache.delete_pattern("*", itersize=1000)
        c0, w0 = time.process_time(), time.perf_counter()
        wire, items = screen.run()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    if cold:
        cache.delete_pattern("*", itersize=1000)
    queries = _queries(screen.run)
    wall.sort()
    return {"cpu_ms": round(statistics.median(cpu), 3), "wall_ms_p50": round(wall[len(wall) // 2], 3),
            "wall_ms_p95": round(wall[int(len(wall) * 0.95) - 1], 3), "queries": queries,
            "wire_bytes": wire, "items": items, "requests": 4 if screen.kind == "rest" else 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crossings", type=int, default=60)
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from accounts import services
    from bench.harness.common import write_result

    setup_test_environment()
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] = "100000000/minute"
    settings.REPLICA_ALIASES = []  # the mirror alias would point at the development database
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        me = _seed(args.crossings, args.connections)
        _session, access, _refresh = services.open_session(me)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {access}")
        figures: dict = {}
        # warm: steady state; warm_no_response_cache: the same with RESPONSE_CACHE_ENABLED off (every
        # answer is built, from the apps' cached reads); cold: the cache emptied before each screen.
        for cache_state in ("warm", "warm_no_response_cache", "cold"):
            settings.RESPONSE_CACHE_ENABLED = cache_state != "warm_no_response_cache"
            for page in (5, 20):
                rounds = args.rounds if cache_state.startswith("warm") else max(20, args.rounds // 4)
                row = {}
                for name in ("rest_4_calls", "graphql_post", "graphql_persisted_post", "graphql_persisted_get"):
                    screen = Screen(client, page, name.removeprefix("graphql_").replace("rest_4_calls", "rest"))
                    row[name] = measure(screen, rounds, cold=cache_state == "cold")
                    print(cache_state, page, name, row[name], flush=True)
                for name in ("graphql_post", "graphql_persisted_get"):
                    row[f"{name}_cpu_share_of_rest"] = round(row[name]["cpu_ms"] / row["rest_4_calls"]["cpu_ms"], 3)
                figures[f"{cache_state}_page_{page}"] = row
        settings.RESPONSE_CACHE_ENABLED = True
        per_item = {}
        for kind in ("rest_4_calls", "graphql_post"):
            small = figures["warm_no_response_cache_page_5"][kind]
            large = figures["warm_no_response_cache_page_20"][kind]
            extra = large["items"] - small["items"]
            per_item[kind] = {"cpu_ms_per_item": round((large["cpu_ms"] - small["cpu_ms"]) / extra, 4),
                              "bytes_per_item": round((large["wire_bytes"] - small["wire_bytes"]) / extra, 1)}
        figures["per_returned_item_warm_no_response_cache"] = per_item
        path = write_result(
            "graphql_home", figures,
            how="python -m bench.scenarios.graphql_home: the home screen (me, first page of crossings, accepted "
                "connections with unread counts, story feed) as 4 REST GETs vs one GraphQL request (POST with the "
                "document, POST with its hash, GET with its hash: response-cached), in one process through the "
                "whole middleware stack with Django's test client, "
                "in a throw-away database on the embedded PostgreSQL and Redis; CPU is process time per screen "
                "(median), bytes are headers + body (gzip when offered), queries counted on every alias",
            scale={"crossings": args.crossings, "connections": args.connections, "rounds": args.rounds},
        )
        print(f"wrote {path}")
    finally:
        from django.core.cache import cache
        from django.db import connections

        from core.cache.client import redis_client

        cache.delete_pattern("*")
        client_ = redis_client()
        keys = list(client_.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000))
        if keys:
            client_.delete(*keys)
        for conn in connections.all():
            if hasattr(conn, "close_pool"):
                conn.close_pool()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
