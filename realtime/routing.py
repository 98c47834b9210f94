"""WebSocket routes, mounted by config/asgi.py."""

from __future__ import annotations

from django.urls import path

from realtime.consumer import RealtimeConsumer

websocket_urlpatterns = [
    path("ws/v1/", RealtimeConsumer.as_asgi()),
]
