"""Ingest is visible to operators: /metrics counts stored pings by result."""

import re
from datetime import timedelta

import pytest

from tests.conftest import client_for

BERLIN = (52.52, 13.405)
POTSDAM = (52.39, 13.06)  # ~27 km away: 5 minutes later is implausibly fast


def _counter(api, result: str) -> float:
    body = api.get("/metrics").content.decode()
    match = re.search(rf'^crossings_pings_ingested_total{{result="{result}"}} ([0-9.e+]+)$', body, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.django_db
def test_ingested_pings_are_counted_once(api, user, now):
    before = {r: _counter(api, r) for r in ("accepted", "implausible")}
    client = client_for(user)
    body = {"pings": [
        {"lat": BERLIN[0], "lng": BERLIN[1], "recorded_at": (now - timedelta(minutes=5)).isoformat()},
        {"lat": POTSDAM[0], "lng": POTSDAM[1], "recorded_at": now.isoformat()},
    ]}
    assert client.post("/api/v1/locations/", body, format="json").status_code == 201
    assert client.post("/api/v1/locations/", body, format="json").status_code == 201  # a client's retry
    assert _counter(api, "accepted") - before["accepted"] == 1
    assert _counter(api, "implausible") - before["implausible"] == 1
