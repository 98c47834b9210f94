"""The edge: through nginx, per-IP limits count the address nginx saw (NUM_PROXIES=1), so a
rotating X-Forwarded-For written by the client does not escape the registration limit; media
are served with nosniff and an inline Content-Disposition."""

from __future__ import annotations

import http.client
import json
import uuid

import pytest
import requests

from deploy.cluster.topology import Topology
from tests.cluster.conftest import AUTH_IP_LIMIT

pytestmark = pytest.mark.cluster


def _register_from(cluster: Topology, source: str, forwarded: str) -> int:
    """POST an (invalid) registration from the loopback address ``source``: the per-IP limit
    counts it before the body is validated, and nothing is hashed or stored."""
    conn = http.client.HTTPConnection("127.0.0.1", cluster.nginx_port, timeout=30, source_address=(source, 0))
    try:
        # A different (invalid) number each time: only the per-IP limit can stop them.
        body = json.dumps({"phone": f"not-a-phone-{uuid.uuid4().hex}"})
        conn.request("POST", "/api/v1/auth/register/", body=body,
                     headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_forged_forwarded_header_does_not_escape_the_registration_limit(cluster):
    # Addresses of their own: other tests and runs cannot have counted on them this hour.
    octet = uuid.uuid4().int % 200 + 20
    source, neighbour = f"127.0.{octet}.7", f"127.0.{octet}.8"
    statuses = [_register_from(cluster, source, f"198.51.100.{n}") for n in range(AUTH_IP_LIMIT)]
    assert 429 not in statuses, statuses
    assert _register_from(cluster, source, "203.0.113.200") == 429
    # Another client behind the same nginx keeps its own allowance: the app sees real addresses.
    assert _register_from(cluster, neighbour, "198.51.100.1") == 400


def test_media_are_served_inline_and_never_sniffed(cluster):
    media = cluster.root / "app" / "media" / "edge-test"
    media.mkdir(parents=True, exist_ok=True)
    (media / "0f0e.jpg").write_bytes(b"<html><script>alert(1)</script></html>")
    response = requests.get(f"{cluster.nginx_url}/media/edge-test/0f0e.jpg", timeout=30)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == 'inline; filename="0f0e.jpg"'
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Type"] == "image/jpeg"
