"""The client's IP address, from the peer address and a configured number of trusted proxies.

``NUM_PROXIES`` (0 by default) says how many proxies of ours stand in front of the app; the
client is the address that many hops from the right of ``X-Forwarded-For`` (each proxy
appends its peer), so addresses a client writes into the header itself are never believed.
Used by every per-IP rate limit and by what is logged about a request.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _normalized(raw: str) -> str | None:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address (normalised), or None when the trusted hop is not an IP address.

    With ``NUM_PROXIES = 0`` the peer (``REMOTE_ADDR``) is the client and ``X-Forwarded-For``
    is ignored.  With ``n > 0`` the n-th address from the right of ``X-Forwarded-For``; a
    header with fewer addresses (a request that came round a proxy) gives its left-most.
    """
    meta = getattr(request, "META", {})
    hops = int(settings.NUM_PROXIES)
    if hops > 0:
        forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
        addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
        if addresses:
            return _normalized(addresses[-min(hops, len(addresses))])
    return _normalized(meta.get("REMOTE_ADDR") or "")


def rate_limit_key(request) -> str:
    """The key per-IP limits count under: the address, its /64 for IPv6 (one host holds a
    whole /64), and one shared key for requests whose address is unknown."""
    ip = client_ip(request)
    if ip is None:
        return "unknown"
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return ip
