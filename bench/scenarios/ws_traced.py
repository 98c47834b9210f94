"""The project's ASGI application instrumented for the WebSocket benchmarks: tracemalloc (what
an idle socket costs) or, with ``WS_GC_LOG`` set, the pause of every garbage collection.

``python -m bench.scenarios.ws_delivery --trace``: SIGUSR1 collects garbage and pickles a
tracemalloc snapshot to ``$WS_TRACE_OUT.<n>``, so that two snapshots can be compared.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import time
import tracemalloc

if os.environ.get("WS_TRACE_OUT"):
    tracemalloc.start(1)

from config.asgi import application  # noqa: F401

_gc_started = 0.0


def _gc_timer(phase, info):
    """``python -m bench.scenarios.ws_delivery --gc-log PATH``: one line per collection of
    generation 2 (and any collection over 50 ms): generation, pause in ms, objects collected."""
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
        return
    pause_ms = (time.perf_counter() - _gc_started) * 1000
    if info["generation"] == 2 or pause_ms > 50:
        with open(os.environ["WS_GC_LOG"], "a") as fh:
            fh.write(f"{time.time():.3f} gen{info['generation']} {pause_ms:.1f}ms collected={info['collected']}\n")


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
