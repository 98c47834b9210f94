"""The Django admin's own defences: login attempts limited per IP and per account with the
API's Redis limits (``auth_ip``, ``auth_phone``), and a Content-Security-Policy on its pages.

Both are middleware, active only under the admin's URL prefix.  Guarantees: docs/security.md.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from django.urls import NoReverseMatch, reverse

from accounts.throttling import phone_key
from core.api.throttling import IPRateThrottle, RedisRateThrottle


@functools.lru_cache(maxsize=8)
def _admin_paths(urlconf) -> tuple[str, str] | None:
    """(index, login) paths of the admin under this URLconf; None where it is not mounted."""
    try:
        return reverse("admin:index", urlconf=urlconf), reverse("admin:login", urlconf=urlconf)
    except NoReverseMatch:
        return None


class AdminAccountThrottle(RedisRateThrottle):
    """Admin login attempts per account (the phone typed in), counted with the API's logins."""

    scope = "auth_phone"

    def get_cache_key(self, request, view):
        return phone_key(request.POST.get("username"))


class AdminLoginThrottleMiddleware:
    """Answers 429 (with Retry-After) to admin login attempts over the per-IP or per-account limit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        paths = _admin_paths(getattr(request, "urlconf", None) or settings.ROOT_URLCONF)
        if request.method == "POST" and paths is not None and request.path == paths[1]:
            for throttle in (IPRateThrottle(), AdminAccountThrottle()):
                if not throttle.allow_request(request, None):
                    wait = max(1, int(throttle.wait() or 1))
                    response = HttpResponse("Too many login attempts; try again later.\n", status=429,
                                            content_type="text/plain; charset=utf-8")
                    response["Retry-After"] = str(wait)
                    return response
        return self.get_response(request)


def _origin(url: str) -> str:
    """The origin of an absolute URL (a CDN for static files), or '' for a path on this site."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def admin_csp() -> str:
    """The policy: scripts, styles, fonts and images only from this site (or its static host);
    no inline or eval'd script, no plugins, no framing, forms post only here."""
    static = _origin(settings.STATIC_URL)
    media = _origin(getattr(settings, "MEDIA_CDN_URL", "") or settings.MEDIA_URL)
    own = " ".join(filter(None, ["'self'", static]))
    images = " ".join(filter(None, ["'self'", static, media, "data:"]))
    return "; ".join([
        "default-src 'self'",
        f"script-src {own}",
        f"style-src {own}",
        f"img-src {images}",
        f"font-src {own}",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",  # the admin's related-object popups are windows, not frames
    ])


class AdminContentSecurityPolicyMiddleware:
    """Adds the Content-Security-Policy header to every admin page."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = admin_csp()

    def __call__(self, request):
        response = self.get_response(request)
        paths = _admin_paths(getattr(request, "urlconf", None) or settings.ROOT_URLCONF)
        if paths is not None and request.path.startswith(paths[0]) and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
