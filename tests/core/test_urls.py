"""The API's URL list: every named route is reached by its own URL (none is shadowed by one
listed before it, whatever order the apps' routes are listed in), under the v1 namespace."""

from __future__ import annotations

import uuid

from django.urls import get_resolver, resolve, reverse
from django.urls.resolvers import URLResolver

SAMPLES = {"uuid": uuid.UUID("0190e6a0-0000-7000-8000-000000000001"), "int": 7, "str": "sample", "slug": "sample",
           "path": "sample"}


def _v1_routes():
    v1 = next(p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.namespace == "v1")
    return [p for p in v1.url_patterns if getattr(p, "name", None)]


def test_every_api_route_resolves_to_itself():
    routes = _v1_routes()
    assert len(routes) > 25  # every app's routes are in the list
    for route in routes:
        converters = getattr(route.pattern, "converters", {})
        kwargs = {name: SAMPLES[type(conv).__name__.lower().removesuffix("converter")]
                  for name, conv in converters.items()}
        url = reverse(f"v1:{route.name}", kwargs=kwargs)
        match = resolve(url)
        assert (match.view_name, match.kwargs) == (f"v1:{route.name}", kwargs), url

