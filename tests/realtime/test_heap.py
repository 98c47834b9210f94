"""The ASGI process's collection schedule (realtime.heap): freezing keeps long-lived objects out
of every later collection, garbage is collected before it could be frozen, a thaw frees what
died while frozen, and a live server runs the schedule once sockets are open."""

from __future__ import annotations

import asyncio
import gc
import re
import urllib.request
import weakref

import pytest

from accounts import services as account_services
from realtime import heap
from tests.factories import make_user
from tests.realtime.conftest import open_socket
from tests.waiting import DEADLINE_S, wait_until


class Node:
    """A container the collector tracks; ``link`` makes a reference cycle."""

    link: object = None


def _cycle() -> Node:
    node = Node()
    node.link = node
    return node


def _walked(obj) -> bool:
    """Whether the collector would walk ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def thawed():
    yield
    gc.unfreeze()


def test_a_freeze_step_frees_garbage_first_and_freezes_what_lives(thawed):
    live = _cycle()
    dead = _cycle()
    gone = weakref.ref(dead)
    del dead

    heap.freeze_step()

    assert gone() is None, "garbage present at a freeze step must be collected, not frozen"
    assert gc.get_freeze_count() > 0
    assert not _walked(live), "a survivor must be frozen out of later collections"


def test_a_cycle_that_dies_frozen_waits_for_the_thaw(thawed):
    zombie = _cycle()
    ref = weakref.ref(zombie)
    heap.freeze_step()
    del zombie

    gc.collect()
    assert ref() is not None, "a frozen cycle is not walked by an ordinary full collection"

    heap.thaw_step()
    assert ref() is None
    assert gc.get_freeze_count() > 0, "the thaw refreezes what still lives"


def test_the_schedule_freezes_and_thaws_on_time(thawed, settings):
    settings.WS_GC_FREEZE_S = 0.05
    settings.WS_GC_THAW_S = 0.2

    async def scenario() -> None:
        task = asyncio.ensure_future(heap.run())
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DEADLINE_S
            # A cycle made now dies while frozen; only the schedule's thaw can free it.
            zombie = _cycle()
            ref = weakref.ref(zombie)
            while gc.get_freeze_count() == 0 or _walked(zombie):
                assert loop.time() < deadline, "no freeze step ran"
                await asyncio.sleep(0.02)
            del zombie
            while ref() is not None:
                assert loop.time() < deadline, "no thaw step freed the frozen garbage"
                await asyncio.sleep(0.02)
        finally:
            task.cancel()

    asyncio.run(scenario())


def test_switched_off_the_schedule_freezes_nothing(thawed, settings):
    settings.WS_GC_FREEZE_S = 0
    asyncio.run(heap.run())
    assert gc.get_freeze_count() == 0


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_live_server_runs_the_schedule_once_sockets_are_open(gc_schedule_server, sockets):
    user = make_user()
    _session, token, _refresh = account_services.open_session(user, user_agent="pytest", ip="127.0.0.1")
    sockets.append(open_socket(gc_schedule_server.url, token))

    def metrics() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{gc_schedule_server.port}/metrics", timeout=30) as response:
            return response.read().decode()

    def thawed_and_frozen() -> bool:
        text = metrics()
        return (_metric(text, 'crossings_ws_gc_pause_seconds_count{kind="thaw"}') >= 1
                and _metric(text, 'crossings_ws_gc_pause_seconds_count{kind="freeze"}') >= 2
                and _metric(text, "crossings_ws_gc_frozen_objects") > 0)

    wait_until(thawed_and_frozen, what="the server's freeze and thaw steps in /metrics")
