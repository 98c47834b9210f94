"""Uploaded media under ``manage.py serve`` (``make run``): nginx serves them in ``make cluster``
and production, a CDN when MEDIA_CDN_URL is set; whitenoise serves static files only.

A WSGI wrapper in front of Django: ``GET``/``HEAD`` of ``MEDIA_URL<name>`` answers the file
under ``MEDIA_ROOT`` (single byte ranges for video players), 404 for anything else: no
directory listing, no path outside the root (``..``, absolute paths, symlinks out), no hidden
file.  The headers are nginx's (deploy/nginx/crossings.conf.template): ``nosniff``, an inline
``Content-Disposition`` and a sandboxing CSP, so that an upload is shown, never run as a page.
"""

from __future__ import annotations

import mimetypes
import os
import re
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote

from django.conf import settings
from django.core.wsgi import get_wsgi_application

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
          ".gif": "image/gif", ".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm"}


class MediaFiles:
    def __init__(self, application, root: str | os.PathLike | None = None, prefix: str | None = None):
        self.application = application
        self.root = Path(root if root is not None else settings.MEDIA_ROOT).resolve()
        self.prefix = prefix if prefix is not None else settings.MEDIA_URL
        if not self.prefix.startswith("/"):  # MEDIA_URL on another host: nothing to serve here
            self.prefix = ""

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not self.prefix or not path.startswith(self.prefix):
            return self.application(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _answer(start_response, "405 Method Not Allowed", b"Method not allowed.\n",
                           [("Allow", "GET, HEAD")])
        file = self.resolve(path[len(self.prefix):])
        if file is None:
            return _answer(start_response, "404 Not Found", b"Not found.\n")
        return self.send(file, environ, start_response, head=method == "HEAD")

    def resolve(self, name: str) -> Path | None:
        """The regular file ``name`` names inside the root, or None."""
        name = unquote(name)
        parts = name.split("/")
        if not name or "\x00" in name or "\\" in name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        try:
            file = (self.root / name).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not file.is_relative_to(self.root) or not file.is_file():
            return None
        return file

    def send(self, file: Path, environ, start_response, head: bool):
        stat = file.stat()
        size = stat.st_size
        content_type = (_TYPES.get(file.suffix.lower()) or mimetypes.guess_type(file.name)[0]
                        or "application/octet-stream")
        headers = [
            ("Content-Type", content_type),
            ("Accept-Ranges", "bytes"),
            ("Last-Modified", formatdate(stat.st_mtime, usegmt=True)),
            ("Cache-Control", "public, max-age=3600"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Disposition", f'inline; filename="{file.name}"'),
            ("Content-Security-Policy", "default-src 'none'; sandbox"),
        ]
        start, end, status = 0, size - 1, "200 OK"
        wanted = environ.get("HTTP_RANGE", "")
        if wanted and size:
            match = _RANGE.match(wanted.strip())
            if match and (match.group(1) or match.group(2)):
                first, last = match.groups()
                if first:
                    start, end = int(first), min(int(last), size - 1) if last else size - 1
                else:  # the last N bytes
                    start, end = max(size - int(last), 0), size - 1
                if start > end or start >= size:
                    return _answer(start_response, "416 Range Not Satisfiable", b"",
                                   [("Content-Range", f"bytes */{size}")])
                status = "206 Partial Content"
                headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        length = max(end - start + 1, 0)
        headers.append(("Content-Length", str(length)))
        start_response(status, headers)
        if head:
            return [b""]
        return _read(file, start, length)


def _read(file: Path, start: int, length: int):
    with open(file, "rb") as fh:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk


def _answer(start_response, status: str, body: bytes, extra: list[tuple[str, str]] | None = None):
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                            ("X-Content-Type-Options", "nosniff"), *(extra or [])])
    return [body]


def application_with_media():
    """``manage.py serve``'s gunicorn app: Django behind :class:`MediaFiles`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    return MediaFiles(get_wsgi_application())
