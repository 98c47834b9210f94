"""The response cache keys on the query parameters a view reads, nothing else: junk
parameters (``?x=1``, ``?x=2``, ...) cannot fill Redis with entries of one page."""

from __future__ import annotations

import inspect
import re

import pytest
from django.core.cache import cache
from django.urls import get_resolver

from tests.conftest import client_for
from tests.factories import make_connection, make_crossing, make_user

pytestmark = pytest.mark.django_db

CACHED_READS = ["/api/v1/crossings/", "/api/v1/connections/", "/api/v1/stories/feed/"]


def _entries(user) -> int:
    client = cache.client.get_client()
    return len(list(client.scan_iter(match=cache.make_key(f"rc:{user.pk}:*"), count=1000)))


@pytest.fixture
def viewer():
    viewer = make_user(display_name="Viewer")
    for n in range(3):
        other = make_user(display_name=f"Other {n}")
        make_crossing(viewer, other)
        make_connection(viewer, other)
    return viewer


@pytest.mark.parametrize("path", CACHED_READS)
def test_junk_parameters_map_to_one_entry(viewer, path):
    client = client_for(viewer)
    first = client.get(path)
    assert first.status_code == 200
    assert _entries(viewer) == 1
    for n in range(1, 41):
        response = client.get(path, {"x": str(n), f"junk{n}": "y"})
        assert response.status_code == 200
        assert response.content == first.content  # served from the one entry, no junk in its links
    many = "&".join(f"x={n}" for n in range(1, 1001))
    assert client.get(f"{path}?{many}").content == first.content
    assert _entries(viewer) == 1


def test_known_parameters_still_key_their_own_entries(viewer):
    client = client_for(viewer)
    small = client.get("/api/v1/crossings/", {"page_size": "1"})
    assert len(small.json()["results"]) == 1
    assert "x=" not in (client.get("/api/v1/crossings/", {"page_size": "1", "x": "9"}).json()["next"] or "")
    full = client.get("/api/v1/crossings/")
    assert len(full.json()["results"]) == 3
    assert _entries(viewer) == 2
    incoming = client.get("/api/v1/connections/", {"status": "incoming", "zz": "1"})
    assert incoming.status_code == 200 and incoming.json()["results"] == []
    assert _entries(viewer) == 3


def _cached_views():
    seen = []

    def walk(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns)
                continue
            view_class = getattr(pattern.callback, "view_class", None)
            if getattr(view_class, "response_cache", False) and view_class not in seen:
                seen.append(view_class)

    walk(get_resolver().url_patterns)
    return seen


def test_every_cached_view_names_the_parameters_it_reads():
    views = _cached_views()
    assert len(views) >= 4
    for view_class in views:
        source = inspect.getsource(view_class)
        read = set(re.findall(r"query_params\.get\(\s*[\"'](\w+)[\"']", source))
        declared = set(getattr(view_class, "response_cache_params", ()))
        assert read <= declared, (view_class, read - declared)
        if "paginat" in source.lower():  # a paginator reads cursor and page_size itself
            assert {"cursor", "page_size"} <= declared, view_class
