"""The ASGI entry point (uvicorn, started by ``manage.py serve`` beside gunicorn): WebSockets
at ``/ws/v1/`` go to the realtime consumer, plain HTTP to Django (gunicorn serves REST)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

# The routes import models: only once get_asgi_application() has set Django up.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    "websocket": URLRouter(websocket_urlpatterns),
})
