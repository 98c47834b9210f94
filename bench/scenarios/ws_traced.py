"""The project's ASGI application instrumented for the WebSocket benchmarks: tracemalloc (what
an idle socket costs) or, with ``WS_GC_LOG`` set, the pause of every garbage collection and,
on SIGUSR2 / SIGWINCH, a probe of the heap (a full collection / realtime.heap's thaw; ws_gc.py).

``python -m bench.scenarios.ws_delivery --trace``: SIGUSR1 collects garbage and pickles a
tracemalloc snapshot to ``$WS_TRACE_OUT.<n>``, so that two snapshots can be compared.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import pickle
import signal
import time
import tracemalloc

if os.environ.get("WS_TRACE_OUT"):
    tracemalloc.start(1)

from config.asgi import application  # noqa: F401

_gc_started = _gc_cpu_started = 0.0


def _gc_timer(phase, info):
    """``python -m bench.scenarios.ws_delivery --gc-log PATH``: one line per collection of
    generation 2 (and any collection over 50 ms): generation, pause and thread CPU in ms, objects collected."""
    global _gc_started, _gc_cpu_started
    if phase == "start":
        _gc_started, _gc_cpu_started = time.perf_counter(), time.thread_time()
        return
    pause_ms = (time.perf_counter() - _gc_started) * 1000
    cpu_ms = (time.thread_time() - _gc_cpu_started) * 1000
    if info["generation"] == 2 or pause_ms > 50:
        with open(os.environ["WS_GC_LOG"], "a") as fh:
            fh.write(f"{time.time():.3f} gen{info['generation']} {pause_ms:.1f}ms cpu={cpu_ms:.1f}ms "
                     f"collected={info['collected']}\n")


if os.environ.get("WS_GC_LOG"):
    gc.callbacks.append(_gc_timer)

_count = 0


def _dump(*_):
    global _count
    _count += 1
    gc.collect()  # what stays is held, not garbage awaiting a collection
    snapshot = tracemalloc.take_snapshot()
    with open(f"{os.environ['WS_TRACE_OUT']}.{_count}", "wb") as fh:
        pickle.dump(snapshot, fh)


signal.signal(signal.SIGUSR1, _dump)


def _probe(signum, _frame):
    """One JSON line to ``$WS_GC_LOG``: the pause of a full collection now (SIGUSR2: what
    Python's own full collection would cost, frozen objects excluded) or of realtime.heap's
    thaw (SIGWINCH: everything walked, cycles left among frozen objects freed)."""
    from realtime import heap

    op = "thaw" if signum == signal.SIGWINCH else "collect"
    frozen_before = gc.get_freeze_count()
    started = time.perf_counter()
    if op == "thaw":
        found = heap.thaw_step()
    else:
        found = gc.collect()
    pause_ms = (time.perf_counter() - started) * 1000
    walked = gc.get_objects()
    kinds = collections.Counter(type(o).__qualname__ for o in walked).most_common(8)
    with open(os.path.join(os.environ["WS_GC_LOG"]), "a") as fh:
        fh.write(json.dumps({"probe": op, "pause_ms": round(pause_ms, 1), "found": found,
                             "frozen_before": frozen_before, "frozen_after": gc.get_freeze_count(),
                             "tracked": len(walked), "tracked_kinds": kinds}) + "\n")


if os.environ.get("WS_GC_LOG"):
    signal.signal(signal.SIGUSR2, _probe)
    signal.signal(signal.SIGWINCH, _probe)
