"""Uploaded media under `make run` (core/media_files.py, the app `manage.py serve` runs): a story
uploaded through the API answers at its media_url with its type and nginx's safe headers; no
listing, no path out of MEDIA_ROOT, byte ranges for video players."""

from __future__ import annotations

import io
import os
import sys
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from core import media_files
from core.management.commands import serve
from tests import media_samples

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MEDIA_CDN_URL = ""


@pytest.fixture
def app():
    """What `manage.py serve` gives gunicorn: Django behind the media files."""
    return media_files.application_with_media()


def call(app, path: str, method: str = "GET", **headers) -> tuple[str, dict[str, str], bytes]:
    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO(),
                     "wsgi.errors": sys.stderr, **{f"HTTP_{k.upper()}": v for k, v in headers.items()}}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(response_headers)

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


def upload(auth_client, content: bytes) -> dict:
    response = auth_client.post("/api/v1/stories/", {
        "media": SimpleUploadedFile("clip.bin", content, content_type="application/octet-stream"),
        "caption": "look", "visibility": "public"}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.parametrize(("content", "mime"), [
    (media_samples.image_bytes("PNG"), "image/png"),
    (media_samples.mp4_bytes(), "video/mp4"),
], ids=["png", "mp4"])
def test_an_uploaded_story_answers_at_its_media_url(auth_client, app, settings, content, mime):
    story = upload(auth_client, content)
    assert story["media_url"].startswith("/media/stories/")
    status, headers, body = call(app, story["media_url"])
    assert status == "200 OK"
    assert headers["Content-Type"] == mime
    name = story["media_url"][len(settings.MEDIA_URL):]
    with default_storage.open(name) as stored:
        assert body == stored.read()
    assert headers["Content-Length"] == str(len(body))
    # Shown, never sniffed into HTML, never run as a page (the same headers as nginx).
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"] == f'inline; filename="{os.path.basename(name)}"'
    assert "sandbox" in headers["Content-Security-Policy"]


def test_byte_ranges_and_head_for_video_players(auth_client, app):
    content = media_samples.mp4_bytes()
    url = upload(auth_client, content)["media_url"]
    status, headers, body = call(app, url, range="bytes=4-11")
    assert status == "206 Partial Content"
    assert body == content[4:12] and headers["Content-Range"] == f"bytes 4-11/{len(content)}"
    status, headers, body = call(app, url, range="bytes=-5")
    assert status == "206 Partial Content" and body == content[-5:]
    status, headers, _ = call(app, url, range=f"bytes={len(content)}-")
    assert status == "416 Range Not Satisfiable" and headers["Content-Range"] == f"bytes */{len(content)}"
    status, headers, body = call(app, url, method="HEAD")
    assert status == "200 OK" and body == b"" and headers["Content-Length"] == str(len(content))
    status, _, _ = call(app, url, method="POST")
    assert status == "405 Method Not Allowed"


def test_missing_files_directories_and_paths_outside_are_404(auth_client, app, settings, tmp_path):
    url = upload(auth_client, media_samples.image_bytes("PNG"))["media_url"]
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the web")
    directory = os.path.dirname(url) + "/"
    (tmp_path / "media" / ".hidden").write_text("dot file")
    os.symlink(secret, tmp_path / "media" / "link.jpg")
    for path in (
        "/media/stories/2020/01/01/none.jpg",  # missing
        directory, "/media/", "/media/stories",  # no directory listing
        "/media/../secret.txt", "/media/%2e%2e/secret.txt", "/media/stories/..%2f..%2fsecret.txt",
        f"/media/{secret}", "/media//" + str(secret).lstrip("/"),  # absolute paths
        "/media/link.jpg",  # a symlink out of MEDIA_ROOT
        "/media/.hidden", "/media/x%00.jpg", "/media/stories\\..\\..\\secret.txt",
    ):
        status, headers, body = call(app, path)
        assert status == "404 Not Found", path
        assert b"not for the web" not in body and b"<a href" not in body, path
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_other_paths_reach_django(app):
    assert call(app, "/health/")[0] == "200 OK"


def test_serve_runs_the_media_app_unless_a_cdn_or_another_storage_serves_media(settings):
    assert serve.serves_media_itself()
    settings.MEDIA_CDN_URL = "https://cdn.example.com/m/"
    assert not serve.serves_media_itself()
    settings.MEDIA_CDN_URL = ""
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage"}}
    assert not serve.serves_media_itself()


def test_a_media_url_on_another_host_serves_nothing_here():
    def django(environ, start_response):
        start_response("200 OK", [])
        return [b"django"]

    inner = media_files.MediaFiles(django, prefix="https://media.example.com/")
    assert call(inner, "/media/anything.jpg")[2] == b"django"
