"""Uploads are re-encoded pixels only (no EXIF/GPS), decoded only within pixel and frame
budgets, refused when truncated, and videos kept only when their container parses."""

from __future__ import annotations

import io
import os

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageFile

from accounts.models import User
from stories.models import Story
from tests import media_samples
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

STORIES = "/api/v1/stories/"
ME = "/api/v1/me/"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    return tmp_path


def _post(client, content: bytes, name="upload.bin", ctype="application/octet-stream"):
    return client.post(STORIES, {"media": SimpleUploadedFile(name, content, content_type=ctype)}, format="multipart")


def _stored(name: str) -> bytes:
    with default_storage.open(name) as f:
        return f.read()


def _assert_no_metadata(data: bytes):
    image = Image.open(io.BytesIO(data))
    assert not image.getexif(), dict(image.getexif())
    assert not {"exif", "icc_profile", "xmp", "comment"} & set(image.info), image.info
    for needle in (b"SpyCam", b"secret note", b"GPS", b"Exif\x00\x00"):
        assert needle not in data, needle


def test_a_story_photo_loses_its_gps_and_is_turned_upright(user):
    original = media_samples.jpeg_with_gps(size=(40, 20), orientation=6)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(media_samples.GPS_IFD)  # the fixture has GPS
    response = _post(client_for(user), original, "holiday.jpg", "image/jpeg")
    assert response.status_code == 201, response.content
    story = Story.objects.get()
    data = _stored(story.media.name)
    _assert_no_metadata(data)
    assert Image.open(io.BytesIO(data)).size == (20, 40)  # orientation 6 applied to the pixels
    assert story.media_type == "image/jpeg" and story.media_bytes == len(data)


def test_an_avatar_loses_its_gps(user):
    response = client_for(user).patch(ME, {"avatar": SimpleUploadedFile("me.jpg", media_samples.jpeg_with_gps(),
                                                                         content_type="image/jpeg")},
                                      format="multipart")
    assert response.status_code == 200, response.content
    _assert_no_metadata(_stored(User.objects.get(pk=user.pk).avatar.name))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_other_formats_are_re_encoded_in_their_own_format(user, fmt):
    exif = Image.Exif()
    exif[0x0110] = "SpyCam 3000"
    content = media_samples.image_bytes(fmt, (30, 10), exif=exif)
    response = _post(client_for(user), content)
    assert response.status_code == 201, response.content
    data = _stored(Story.objects.get().media.name)
    assert Image.open(io.BytesIO(data)).format == fmt
    assert b"SpyCam" not in data


def test_a_pixel_bomb_is_refused_before_it_is_decoded(user, monkeypatch):
    bomb = media_samples.pixel_bomb_png((8000, 6000))  # 48 MP in a few kB
    assert len(bomb) < 20_000

    def no_decoding(self):
        raise AssertionError("decoded a pixel bomb")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    response = _post(client_for(user), bomb, "bomb.png", "image/png")
    assert response.status_code == 413, response.content
    assert "pixels" in response.json()["detail"]
    assert not Story.objects.exists()


def test_an_animation_counts_the_pixels_of_every_frame(user):
    gif = media_samples.animated_gif((3000, 3000), frames=50)  # 9 MP a frame, 450 MP in all
    response = _post(client_for(user), gif, "anim.gif", "image/gif")
    assert response.status_code == 413, response.content
    assert not Story.objects.exists()


def test_an_animation_has_a_frame_limit(user, settings):
    settings.STORY_MAX_IMAGE_FRAMES = 10
    response = _post(client_for(user), media_samples.animated_gif((8, 8), frames=11))
    assert response.status_code == 413 and "frames" in response.json()["detail"]
    frames = [Image.new("L", (8, 8), n * 20) for n in range(10)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    ok = _post(client_for(user), buffer.getvalue())
    assert ok.status_code == 201, ok.content
    assert Image.open(io.BytesIO(_stored(Story.objects.get().media.name))).n_frames == 10  # still animated


def test_a_truncated_image_is_a_400(user):
    noisy = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    data = buffer.getvalue()
    response = _post(client_for(user), data[: len(data) // 2], "cut.png", "image/png")
    assert response.status_code == 400, response.content
    assert "truncated" in str(response.json())
    assert not Story.objects.exists()


@pytest.mark.parametrize("content", [
    media_samples.mp4_bytes()[:32] + os.urandom(4000),
    media_samples.box(b"ftyp", b"isom\x00\x00\x02\x00isom") + b"\x00\x00\x10\x00mdat" + b"x" * 100,  # mdat overruns
    media_samples.box(b"ftyp", b"isom\x00\x00\x02\x00isom") + media_samples.box(b"mdat", b"x" * 64),  # no moov
    media_samples.mp4_bytes() + b"trailing junk",
    media_samples.webm_bytes()[:40] + os.urandom(500),
], ids=["random-after-ftyp", "box-overruns-file", "no-moov", "trailing-junk", "webm-header-then-junk"])
def test_videos_whose_container_does_not_parse_are_refused(user, content):
    response = _post(client_for(user), content, "clip.mp4", "video/mp4")
    assert response.status_code == 415, response.content
    assert not Story.objects.exists()


@pytest.mark.parametrize(("content", "mime"), [
    (media_samples.mp4_bytes(), "video/mp4"),
    (media_samples.mov_bytes(), "video/quicktime"),
    (media_samples.webm_bytes(), "video/webm"),
], ids=["mp4", "quicktime", "webm"])
def test_small_real_videos_are_accepted(user, content, mime):
    response = _post(client_for(user), content, "clip.bin")
    assert response.status_code == 201, response.content
    assert response.json()["media_type"] == mime
