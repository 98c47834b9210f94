"""Middleware that only browser pages need, skipped for token-authenticated API requests.

A request under ``API_PATH_PREFIXES`` (``/api/``) carries a bearer token, no session cookie; it
renders no template, posts no form and serves no static file.  Sessions, CSRF, the lazy
``request.user`` of ``AuthenticationMiddleware``, messages, WhiteNoise and the admin's login
throttle and CSP do nothing for it, yet each costs CPU on every request: a quarter of the
middleware time of a ping in the closed-loop profile (docs/benchmarks/performance.md).

``WebOnlyMiddleware`` subclasses stand in ``MIDDLEWARE`` where such a run of middleware
stood; each builds its run from ``settings.WEB_ONLY_MIDDLEWARE[segment]`` in the same order,
runs it for every other request (admin, GraphQL, health, docs pages) as before, and hands API
requests straight to the next middleware.  Nothing an API response carries changes: the
security, static files, gzip, common, clickjacking and cache middleware stay in
``MIDDLEWARE`` for every request.  Django's admin checks look for the session, auth and
messages middleware in ``MIDDLEWARE`` only; ``check_web_only_middleware`` (core.E001) looks
for them here instead.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string


def is_api(request) -> bool:
    return request.path_info.startswith(settings.API_PATH_PREFIXES)


class WebOnlyMiddleware:
    """Runs the middleware of ``settings.WEB_ONLY_MIDDLEWARE[segment]`` except for API requests."""

    segment = ""

    def __init__(self, get_response):
        self.get_response = get_response
        handler = get_response
        view_hooks = []
        # As django.core.handlers.base.BaseHandler.load_middleware builds its chain (sync only).
        for path in reversed(settings.WEB_ONLY_MIDDLEWARE[self.segment]):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            for hook in ("process_exception", "process_template_response"):
                if hasattr(instance, hook):
                    raise ImproperlyConfigured(f"{path} has {hook}: keep it in MIDDLEWARE, not in WEB_ONLY_MIDDLEWARE")
            if hasattr(instance, "process_view"):
                view_hooks.insert(0, instance.process_view)
            handler = convert_exception_to_response(instance)
        self.web = handler
        self.view_hooks = view_hooks

    def __call__(self, request):
        if is_api(request):
            return self.get_response(request)
        return self.web(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_api(request):
            return None
        for hook in self.view_hooks:
            response = hook(request, view_func, view_args, view_kwargs)
            if response is not None:
                return response
        return None


class WebOnlyRequestMiddleware(WebOnlyMiddleware):
    """Static files, sessions, CSRF, auth and messages (the middle of ``MIDDLEWARE``)."""

    segment = "request"


class WebOnlyAdminMiddleware(WebOnlyMiddleware):
    """The admin's login throttle and Content-Security-Policy (the end of ``MIDDLEWARE``)."""

    segment = "admin"


WEB_PAGES_NEED = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)


@checks.register(checks.Tags.admin, checks.Tags.security)
def check_web_only_middleware(app_configs=None, **kwargs):
    """The middleware of browser pages (what admin.E408-E410 and security.W003 look for) must
    run for them: in MIDDLEWARE, or in a WEB_ONLY_MIDDLEWARE segment whose entry is active."""
    active = list(settings.MIDDLEWARE)
    for cls in (WebOnlyRequestMiddleware, WebOnlyAdminMiddleware):
        if f"{cls.__module__}.{cls.__qualname__}" in active:
            active += settings.WEB_ONLY_MIDDLEWARE.get(cls.segment, [])
    return [
        checks.Error(f"{path} must be in MIDDLEWARE or an active WEB_ONLY_MIDDLEWARE segment: the admin "
                     f"and other browser pages need it.", id="core.E001")
        for path in WEB_PAGES_NEED if path not in active
    ]
