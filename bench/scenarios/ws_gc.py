"""Garbage collection of one ASGI process holding many sockets: the pause of a full collection
with Python's default collector and with realtime.heap's freezing, and what closed sockets
leave frozen until the next thaw.

    python -m bench.scenarios.ws_gc [--sockets 10000] [--churn 2000]

For each policy (``WS_GC_FREEZE_S=0``: Python's collector alone; realtime.heap freezing every
``--freeze-s``, 2 s as deployed) one uvicorn process (the project's app, bench/scenarios/ws_traced.py)
gets ``--sockets`` sockets; once the freezing has run, SIGUSR2 times a full ``gc.collect()`` in the server (what
each automatic full collection costs).  Then ``--churn`` more sockets connect, live through two
freeze steps and close; SIGWINCH times realtime.heap's thaw (everything walked) and counts the
cyclic garbage it frees per closed socket (what freezing holds back until the thaw).
Figures: docs/benchmarks/realtime.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import servers
from bench.harness.common import BASE_DIR, write_result
from bench.scenarios.ws_delivery import start_clients
from bench.scenarios.ws_sockets import Uvicorn

PY = sys.executable


def _probe(server: Uvicorn, log: Path, signum: int, deadline_s: float = 300) -> dict:
    """Signal the server and wait (bounded) for its probe line."""
    before = len(log.read_text().splitlines()) if log.exists() else 0
    os.kill(server.proc.pid, signum)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        lines = [line for line in (log.read_text().splitlines() if log.exists() else [])[before:]
                 if line.startswith("{")]
        if lines:
            return json.loads(lines[-1])
        time.sleep(0.5)
    raise RuntimeError("the server wrote no probe line in time")


def _close(clients) -> None:
    procs, go, release, results, _reports = clients
    go.set()
    release.set()
    for _ in procs:
        results.get(timeout=300)
    for proc in procs:
        proc.join(60)


def measure(env: dict, tokens: list[str], sockets: int, churn: int, freeze_s: float) -> dict:
    log = Path(tempfile.NamedTemporaryFile(prefix="ws-gc-", suffix=".log", delete=False).name)
    server_env = {**env, "UVICORN_WS_PER_MESSAGE_DEFLATE": "false", "WS_GC_LOG": str(log),
                  "WS_GC_FREEZE_S": str(freeze_s), "WS_GC_THAW_S": "1000000"}
    server = Uvicorn(server_env, "websockets-sansio", app="bench.scenarios.ws_traced:application")
    settle = 2 * freeze_s + 3 if freeze_s else 3
    try:
        held = start_clients(server.url, tokens[:sockets], 2)
        time.sleep(settle)  # two freeze steps (the bench's own pacing, not a test wait)
        full = _probe(server, log, signal.SIGUSR2)
        rss_held = server.memory()["rss"]
        extra = start_clients(server.url, tokens[sockets:sockets + churn], 1)
        time.sleep(settle)
        _close(extra)
        time.sleep(settle)
        rss_churned = server.memory()["rss"]
        thaw = _probe(server, log, signal.SIGWINCH)
        rss_thawed = server.memory()["rss"]
        _close(held)
    finally:
        server.stop()
        log.unlink(missing_ok=True)
    return {
        "sockets": sum(r["opened"] for r in held[4]), "walked_kinds": full["tracked_kinds"],
        "full_collection_ms": full["pause_ms"], "tracked_objects": full["tracked"], "frozen": full["frozen_after"],
        "thaw_ms": thaw["pause_ms"], "thaw_freed_objects": thaw["found"],
        "freed_per_closed_socket": round(thaw["found"] / max(1, churn), 1),
        "rss_held_mb": round(rss_held / 2**20, 1), "rss_after_churn_mb": round(rss_churned / 2**20, 1),
        "rss_after_thaw_mb": round(rss_thawed / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=10000)
    parser.add_argument("--churn", type=int, default=2000, help="sockets opened and closed after the first")
    parser.add_argument("--freeze-s", type=float, default=2.0)
    parser.add_argument("--policy", choices=("both", "default", "freeze"), default="both")
    args = parser.parse_args(argv)
    servers.start()
    env = servers.env(RATE_LIMIT_USER="1000000/minute", ACCESS_TOKEN_TTL_S="7200", DB_POOL_MIN_SIZE="1",
                      DB_POOL_MAX_SIZE="10")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    servers.migrate()
    seed_out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    subprocess.run([PY, "-m", "bench.scenarios.ws_sockets", "--sockets", str(args.sockets + args.churn),
                    "--pairs", "0", "--seed-out", seed_out], cwd=BASE_DIR, env=env, check=True)
    tokens = json.loads(Path(seed_out).read_text())["tokens"]
    os.unlink(seed_out)
    load0 = os.getloadavg()[0]
    figures = {}
    if args.policy in ("both", "default"):
        figures["python_default"] = measure(env, tokens, args.sockets, args.churn, 0.0)
    if args.policy in ("both", "freeze"):
        figures["freeze"] = measure(env, tokens, args.sockets, args.churn, args.freeze_s)
    figures["load_average_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    how = (f"One uvicorn process (the project's app) holding {args.sockets} sockets, first with Python's "
           f"collector alone (WS_GC_FREEZE_S=0), then with realtime.heap freezing every {args.freeze_s} s.  "
           "full_collection_ms: a gc.collect() timed inside the server once the sockets are held (the pause of "
           f"each automatic full collection).  Then {args.churn} more sockets connect, live through two freeze "
           "steps and close; thaw_ms / thaw_freed_objects: realtime.heap.thaw_step timed in the server and the "
           "cyclic garbage it freed (held back by freezing until a thaw).")
    path = write_result("ws_gc", figures, how, scale={"sockets": args.sockets, "churn": args.churn})
    print(json.dumps(figures, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
