"""Test-only endpoints served by the cluster's app instances (``probe:application``).

The cluster tests need a write and a read of one user's own data through the real stack
(nginx, gunicorn, token authentication, the router) and a cache write/read, whatever the
domain apps expose at the time.  These views are mounted beside the project's URLs only
in the test topology; production never imports this module.

The read is raw SQL through the router's choice of database, tagged with the user's id, so
that the tests can count in each PostgreSQL server's log which server served it.
"""

from __future__ import annotations

import os
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import router  # noqa: E402
from django.urls import include, path  # noqa: E402
from rest_framework import serializers  # noqa: E402
from rest_framework.decorators import api_view, authentication_classes, permission_classes  # noqa: E402
from rest_framework.permissions import AllowAny  # noqa: E402
from rest_framework.response import Response  # noqa: E402

from accounts.models import User  # noqa: E402


@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def create_user(request):
    from accounts import services

    phone = f"+1202555{uuid.uuid4().int % 10_000:04d}"
    while User.objects.filter(phone=phone).exists():
        phone = f"+1202555{uuid.uuid4().int % 10_000:04d}"
    user = User.objects.create_user(phone, "correct-horse-battery", display_name="probe")
    _session, access, _refresh = services.open_session(user, user_agent="cluster-test", ip="127.0.0.1")
    return Response({"id": str(user.pk), "access": access}, status=201)


class NameIn(serializers.Serializer):
    display_name = serializers.CharField(max_length=50)


@api_view(["GET", "PATCH"])
def me(request):
    user_id = uuid.UUID(str(request.user.pk))
    if request.method == "PATCH":
        data = NameIn(data=request.data)
        data.is_valid(raise_exception=True)
        User.objects.filter(pk=user_id).update(display_name=data.validated_data["display_name"])
    alias = router.db_for_read(User)
    rows = list(User.objects.raw(
        f"SELECT id, display_name FROM users WHERE id = %s /* probe-read {user_id} */", [user_id]
    ).using(alias))
    return Response({"display_name": rows[0].display_name if rows else None, "db": alias})


@api_view(["GET", "PUT"])
@authentication_classes([])
@permission_classes([AllowAny])
def kv(request, key):
    if request.method == "PUT":
        cache.set(f"probe:{key}", request.data.get("value"), 600)
        return Response({"ok": True})
    return Response({"value": cache.get(f"probe:{key}")})


@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
def connect(request):
    """An accepted connection between two probe users (the chat the WebSocket tests use)."""
    from connections.models import Connection, ConnectionStatus
    from connections.selectors import CONN_NS
    from core.cache import keys as cachekeys

    a, b = uuid.UUID(request.data["a"]), uuid.UUID(request.data["b"])
    low, high = sorted([a, b])
    conn = Connection.objects.create(user_low_id=low, user_high_id=high, requester_id=a,
                                     status=ConnectionStatus.ACCEPTED)
    cachekeys.bump_many([(CONN_NS, low), (CONN_NS, high)])
    return Response({"id": str(conn.pk)}, status=201)


urlpatterns = [
    path("_probe/users/", create_user),
    path("_probe/connect/", connect),
    path("_probe/me/", me),
    path("_probe/kv/<str:key>/", kv),
    path("", include(settings.ROOT_URLCONF)),
]

settings.ROOT_URLCONF = __name__

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
