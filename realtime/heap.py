"""Garbage collection in an ASGI process holding thousands of sockets: short pauses only.

A full collection walks every tracked object and stops the event loop meanwhile (10 000
sockets: ~1 s quiet, 5 s on a busy machine).  So the process freezes what has lived a while
(``gc.freeze``: never walked again) every ``WS_GC_FREEZE_S`` after collecting the rest, and
thaws and walks everything only every ``WS_GC_THAW_S``.  Design and figures: docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from django.conf import settings

from realtime.metrics import GC_FROZEN_OBJECTS, GC_PAUSE_SECONDS

logger = logging.getLogger(__name__)


def freeze_step() -> int:
    """Collect what is not frozen yet (young objects and those since the last step: short),
    then freeze the survivors.  Returns how many unreachable objects were found."""
    started = time.perf_counter()
    found = gc.collect()
    gc.freeze()
    GC_PAUSE_SECONDS.labels("freeze").observe(time.perf_counter() - started)
    return found


def thaw_step() -> int:
    """Unfreeze and collect everything: what closed sockets left in cycles among frozen
    objects is freed here (the one long pause, once per ``WS_GC_THAW_S``), then refreeze."""
    started = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    GC_PAUSE_SECONDS.labels("thaw").observe(time.perf_counter() - started)
    # Counting walks every frozen object (a linked list): done here only, beside the full walk;
    # on every freeze step it was itself the stall (docs/benchmarks/realtime.md).
    GC_FROZEN_OBJECTS.set(gc.get_freeze_count())
    return found


def enabled() -> bool:
    return settings.WS_GC_FREEZE_S > 0


async def run() -> None:
    """The process's collection schedule (a task of the hub; one per ASGI process)."""
    if not enabled():
        return
    loop = asyncio.get_running_loop()
    freeze_step()  # the app's own start-up heap: modules, URL patterns, settings
    thawed_at = loop.time()
    while True:
        await asyncio.sleep(settings.WS_GC_FREEZE_S)
        try:
            if settings.WS_GC_THAW_S > 0 and loop.time() - thawed_at >= settings.WS_GC_THAW_S:
                found = thaw_step()
                thawed_at = loop.time()
                logger.info("realtime: full collection freed %d objects, %d frozen", found, gc.get_freeze_count())
            else:
                freeze_step()
        except Exception:  # never let the schedule die: the default collector still runs
            logger.exception("realtime: collection step failed")
