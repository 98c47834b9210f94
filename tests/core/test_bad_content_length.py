"""A malformed Content-Length is the client's error: a 4xx with a message, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("length", ["abc", "-", "1e3"])
def test_a_malformed_content_length_gets_a_400_not_a_500(auth_client, length):
    response = auth_client.generic("POST", "/api/v1/locations/", b'{"pings": []}', content_type="application/json",
                                   CONTENT_LENGTH=length)
    assert response.status_code == 400
    assert response.json()["detail"]

