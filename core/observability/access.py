"""Who may read the operational endpoints (``/metrics``, ``/health/ready/``).

A client whose address (``core.api.client_ip``) is in ``METRICS_ALLOWED_NETWORKS`` (loopback
by default), or one that presents ``METRICS_TOKEN`` as a bearer token.  Everyone else gets a
403: these pages describe the deployment (pool sizes, replicas, queue lengths, detector lag).
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import cache, wraps

from django.conf import settings
from django.http import JsonResponse

from core.api.client_ip import client_ip


@cache
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _token_matches(request) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return False
    scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


def allowed(request) -> bool:
    """True for an allowed network or the right token."""
    if _token_matches(request):
        return True
    ip = client_ip(request)
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def operators_only(view):
    """Answer 403 to clients that are neither on an allowed network nor hold the token."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not allowed(request):
            return JsonResponse({"detail": "Not available from your network."}, status=403)
        return view(request, *args, **kwargs)

    return wrapped
