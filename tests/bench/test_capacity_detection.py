"""The detection row of the capacity plan: workers, database CPU and the shared store lock
from the CPU per ping measured by bench/scenarios/crossings_shards.py."""

from __future__ import annotations

import pytest

from bench.harness import capacity

DOC = {"measured_at": "2026-12-02T04:00:00Z",
       "figures": {"app_cpu_us_per_ping_2_shards": 50.0, "db_cpu_us_per_ping_2_shards": 30.0,
                   "serial_store_us_per_ping": 20.0}}


def test_detection_plan_at_one_million_users():
    plan = capacity.detection_plan(1_000_000, DOC)
    assert plan["pings_per_s"] == 33_000  # one ping per user every 30 s
    assert plan["vcpu"]["workers"] == pytest.approx(2.4, abs=0.05)  # 33 000 x 50 us / 0.7
    assert plan["shards"] == 3  # one single-threaded worker per shard
    assert plan["vcpu"]["db"] == pytest.approx(1.4, abs=0.05)
    assert plan["store_lock_busy"] == pytest.approx(0.66) and plan["fits"]


def test_stores_that_would_fill_the_minute_are_flagged():
    slow = {**DOC, "figures": {**DOC["figures"], "serial_store_us_per_ping": 40.0}}
    assert not capacity.detection_plan(1_000_000, slow)["fits"]  # 33 000 x 40 us = 1.32 s a second
    assert capacity.detection_plan(100_000, slow)["fits"]


def test_detection_table_without_a_measurement(monkeypatch):
    monkeypatch.setattr(capacity, "read_result", lambda name: None)
    assert "no measurement" in capacity.detection_table()
    monkeypatch.setattr(capacity, "read_result", lambda name: DOC)
    text = capacity.detection_table()
    assert "| detection | 3,300 pings/s: 1 shard (worker" in text and "33,000 pings/s: 3 shards" in text
