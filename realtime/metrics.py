"""Prometheus metrics of the WebSocket layer (per ASGI process; summed over live processes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OPEN_SOCKETS = Gauge("crossings_ws_open_sockets", "WebSockets open in this ASGI process",
                     multiprocess_mode="livesum")
EVENTS_DELIVERED = Counter("crossings_ws_events_delivered", "Events sent to sockets, by how (live, replay)",
                           ["how"])
DELIVERY_SECONDS = Histogram(
    "crossings_ws_delivery_seconds", "From an event's commit to its send on a socket (live events)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CAP_EVICTIONS = Counter("crossings_ws_cap_evictions", "Sockets closed (4409) because their user opened one too many")
GC_PAUSE_SECONDS = Histogram(
    "crossings_ws_gc_pause_seconds", "Scheduled garbage collections of the ASGI process (realtime.heap), by kind",
    ["kind"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GC_FROZEN_OBJECTS = Gauge("crossings_ws_gc_frozen_objects",
                          "Objects frozen out of garbage collection (gc.freeze), counted at each thaw",
                          multiprocess_mode="liveall")
CLOSES = Counter("crossings_ws_closes", "Sockets closed by the server, by close code", ["code"])


def register() -> None:
    """Nothing to do beyond importing this module: its metrics are in the default registry."""
