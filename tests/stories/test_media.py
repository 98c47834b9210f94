"""Story media: real content only (415 otherwise), size limits (413), storage, CDN URLs, sweep."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from stories.models import Story
from tests import media_samples
from tests.factories import make_story

pytestmark = pytest.mark.django_db

URL = "/api/v1/stories/"


def png_bytes(size=(32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


MP4 = media_samples.mp4_bytes()
MOV = media_samples.mov_bytes()
WEBM = media_samples.webm_bytes()


def upload(client, content: bytes, name: str, content_type: str, **fields):
    return client.post(URL, {"media": SimpleUploadedFile(name, content, content_type=content_type), **fields},
                       format="multipart")


def _stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return [os.path.join(d, f) for d, _s, files in os.walk(root) for f in files] if os.path.isdir(root) else []


@pytest.mark.parametrize(("content", "kind", "mime"), [
    (png_bytes(), "image", "image/png"),
    (MP4, "video", "video/mp4"),
    (MOV, "video", "video/quicktime"),
    (WEBM, "video", "video/webm"),
], ids=["png", "mp4", "quicktime", "webm"])
def test_real_media_is_stored(auth_client, settings, content, kind, mime):
    # The declared name and type are ignored: only the bytes count.
    response = upload(auth_client, content, "whatever.bin", "application/octet-stream", caption="look",
                      visibility="public")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == kind and body["media_type"] == mime and body["caption"] == "look"
    assert body["media_url"].startswith(settings.MEDIA_URL)
    story = Story.objects.get()
    assert default_storage.exists(story.media.name)
    with default_storage.open(story.media.name) as stored:
        data = stored.read()
    assert story.media_bytes == len(data)
    if kind == "video":
        assert data == content  # videos are stored as sent; images re-encoded (tests/security/test_uploads.py)


def test_media_url_points_at_the_cdn(auth_client, settings):
    settings.MEDIA_CDN_URL = "https://cdn.example.com/m/"
    body = upload(auth_client, png_bytes(), "a.png", "image/png").json()
    assert body["media_url"].startswith("https://cdn.example.com/m/stories/")
    story_id = body["id"]
    assert auth_client.get(f"{URL}{story_id}/").json()["media_url"] == body["media_url"]


@pytest.mark.parametrize(("content", "name", "ctype"), [
    (b"<html>not an image</html>", "cat.jpg", "image/jpeg"),
    (b"GIF89a" + b"\x00" * 10, "bad.gif", "image/gif"),
    (b"%PDF-1.7\n" + b"x" * 100, "doc.mp4", "video/mp4"),
    (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100, "photo.heic", "image/heic"),  # HEIF still: not supported
    (MP4[:24] + b"\x00" * 2000, "junk.mp4", "video/mp4"),  # an ftyp box and nothing that parses
], ids=["html-as-jpeg", "broken-gif", "pdf-as-mp4", "heic", "junk-after-ftyp"])
def test_fake_or_unsupported_media_is_a_415_and_stored_nowhere(auth_client, settings, content, name, ctype):
    response = upload(auth_client, content, name, ctype)
    assert response.status_code == 415, response.content
    assert "detail" in response.json()
    assert not Story.objects.exists()
    assert _stored_files(settings) == []


def test_oversized_media_is_a_413(auth_client, settings):
    settings.STORY_MAX_IMAGE_BYTES = 1000
    settings.STORY_MAX_VIDEO_BYTES = 3000
    big_png = png_bytes((200, 200)) + b"\x00" * 1000
    assert len(big_png) > 1000
    assert upload(auth_client, big_png, "a.png", "image/png").status_code == 413
    assert upload(auth_client, MP4, "a.mp4", "video/mp4").status_code == 201  # a video may be larger
    assert upload(auth_client, MP4 + b"\x00" * 3000, "a.mp4", "video/mp4").status_code == 413
    # Far above every limit: refused from Content-Length, before the body is parsed.
    huge = upload(auth_client, b"\x00" * (3000 + 70 * 1024), "a.mp4", "video/mp4")
    assert huge.status_code == 413 and "detail" in huge.json()
    assert Story.objects.count() == 1
    assert len(_stored_files(settings)) == 1


def test_text_and_media_together_is_a_400(auth_client):
    assert upload(auth_client, png_bytes(), "a.png", "image/png", text="hi").status_code == 400


def test_sweep_deletes_expired_stories_and_their_media(auth_client, user, settings,
                                                       django_capture_on_commit_callbacks):
    name = Story.objects.get(pk=upload(auth_client, png_bytes(), "a.png", "image/png").json()["id"]).media.name
    live = make_story(user, "live")
    Story.objects.exclude(pk=live.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("sweep_expired", "--only", "stories", stdout=io.StringIO())
    assert list(Story.objects.values_list("pk", flat=True)) == [live.pk]
    assert not default_storage.exists(name)


def test_deleting_a_story_deletes_its_media(auth_client, settings, django_capture_on_commit_callbacks):
    story_id = upload(auth_client, png_bytes(), "a.png", "image/png").json()["id"]
    name = Story.objects.get(pk=story_id).media.name
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(f"{URL}{story_id}/").status_code == 204
    assert not default_storage.exists(name)


def test_place_is_coarsened_on_the_way_in(auth_client):
    response = auth_client.post(URL, {"text": "here", "visibility": "public", "lat": 52.520008, "lng": 13.404954},
                                format="json")
    assert response.status_code == 201
    assert "lat" not in response.json() and "place_lat" not in response.json()
    story = Story.objects.get()
    assert story.place_cell and (story.place_lat, story.place_lng) != (52.520008, 13.404954)
    import h3

    assert h3.cell_to_latlng(story.place_cell) == (story.place_lat, story.place_lng)


def test_erasing_an_account_deletes_its_media(auth_client, user, django_capture_on_commit_callbacks):
    from accounts import services as account_services

    name = Story.objects.get(pk=upload(auth_client, png_bytes(), "a.png", "image/png").json()["id"]).media.name
    with django_capture_on_commit_callbacks(execute=True):
        account_services.erase_user(user.pk)
    assert not Story.objects.exists()
    assert not default_storage.exists(name)


def test_s3_compatible_storage_is_configured_by_settings(settings):
    """The S3 backend (django-storages + boto3) builds its URLs from the AWS_* settings; with
    MEDIA_CDN_URL set, story media point at the CDN instead.  No S3 server is contacted."""
    from django.core.files.storage import storages

    from stories.media import media_url

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage"}}
    settings.AWS_STORAGE_BUCKET_NAME = "crossings-media"
    settings.AWS_S3_ENDPOINT_URL = "https://s3.example.net"
    settings.AWS_S3_REGION_NAME = "eu-central-1"
    settings.AWS_QUERYSTRING_AUTH = False
    storage = storages["default"]
    assert type(storage).__name__ == "S3Storage"
    assert media_url("stories/2026/11/26/x.jpg") == "https://s3.example.net/crossings-media/stories/2026/11/26/x.jpg"
    settings.MEDIA_CDN_URL = "https://cdn.example.com"
    assert media_url("stories/2026/11/26/x.jpg") == "https://cdn.example.com/stories/2026/11/26/x.jpg"
