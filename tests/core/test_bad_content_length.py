"""A malformed Content-Length is the client's error: a 4xx with a message, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("length", ["abc", "-", "1e3"])
def test_a_malformed_content_length_gets_a_400_not_a_500(auth_client, length):
    response = auth_client.generic("POST", "/api/v1/locations/", b'{"pings": []}', content_type="application/json",
                                   CONTENT_LENGTH=length)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_request_with_a_sane_length_is_still_measured(auth_client):
    from django_prometheus.middleware import Metrics

    histogram = Metrics.get_instance().requests_body_bytes
    before = histogram._sum.get()
    auth_client.generic("POST", "/api/v1/locations/", b'{"pings": []}', content_type="application/json")
    assert histogram._sum.get() - before == len(b'{"pings": []}')
