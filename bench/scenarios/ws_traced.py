"""The project's ASGI application with tracemalloc on, for finding what an idle socket costs.

``python -m bench.scenarios.ws_delivery --trace``: SIGUSR1 collects garbage and pickles a
tracemalloc snapshot to ``$WS_TRACE_OUT.<n>``, so that two snapshots can be compared.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import tracemalloc

tracemalloc.start(1)

from config.asgi import application  # noqa: E402, F401

_count = 0


def _dump(*_):
    global _count
    _count += 1
    gc.collect()  # what stays is held, not garbage awaiting a collection
    snapshot = tracemalloc.take_snapshot()
    with open(f"{os.environ['WS_TRACE_OUT']}.{_count}", "wb") as fh:
        pickle.dump(snapshot, fh)


signal.signal(signal.SIGUSR1, _dump)
