"""core.api.rest.JsonFirstNegotiation picks what DRF's own negotiation picks, and refuses what it refuses."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer, StaticHTMLRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.api.rest import JsonFirstNegotiation, OrjsonRenderer

ACCEPTS = [None, "", "*/*", " */* ", "application/json", "application/json; indent=4", "application/*",
           "text/html", "text/html, */*;q=0.1", "application/json, text/plain, */*", "image/png",
           "application/json;q=0", "APPLICATION/JSON"]
RENDERER_SETS = [[OrjsonRenderer], [OrjsonRenderer, BrowsableAPIRenderer], [StaticHTMLRenderer, JSONRenderer],
                 [JSONRenderer]]


def _choice(negotiation, accept, renderers, query=""):
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/x/{query}", **extra))
    try:
        renderer, media_type = negotiation.select_renderer(request, [cls() for cls in renderers])
    except NotAcceptable:
        return "406"
    except Http404:  # ?format= names no renderer of the view
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("renderers", RENDERER_SETS, ids=lambda r: "+".join(c.__name__ for c in r))
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=html", "?page_size=5"])
def test_the_same_choice_as_drf(accept, renderers, query):
    assert _choice(JsonFirstNegotiation(), accept, renderers, query) == _choice(
        DefaultContentNegotiation(), accept, renderers, query)


@pytest.mark.django_db
def test_an_api_client_that_accepts_no_json_gets_a_406(auth_client):
    response = auth_client.get("/api/v1/me/", HTTP_ACCEPT="text/html")
    assert response.status_code == 406
    assert response.json()["code"] == "not_acceptable"
    assert auth_client.get("/api/v1/me/", HTTP_ACCEPT="application/json").status_code == 200
