"""The app's URLs plus the uploaded media, for the browser tests' live server (in production
media come from the storage's own host: MEDIA_CDN_URL)."""

from django.conf import settings
from django.urls import re_path
from django.views.static import serve

from config.urls import handler404
from config.urls import urlpatterns as app_urls

__all__ = ["handler404", "urlpatterns"]


def media(request, path):
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [*app_urls, re_path(r"^media/(?P<path>.+)$", media)]
