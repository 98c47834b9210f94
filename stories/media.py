"""Story media: what a file really is (by its bytes, never its name), size limits, URLs.

Images (JPEG, PNG, WebP, GIF) are re-encoded without metadata (core.uploads.images); videos
are kept when their container parses (MP4/QuickTime or WebM: core.uploads.video).  Anything
else is a 415, whatever its name or declared content type.  Design: docs/security.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from rest_framework import exceptions, status

from core.api.rest import PayloadTooLarge
from core.uploads import images, video


class UnsupportedMediaType(exceptions.APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "Media must be a JPEG, PNG, WebP or GIF image, or an MP4, QuickTime or WebM video."
    default_code = "unsupported_media_type"


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" or "video"
    mime: str
    extension: str
    content: File | None = None  # what to store: the re-encoded image (None: the upload itself)


def max_upload_bytes() -> int:
    return max(settings.STORY_MAX_IMAGE_BYTES, settings.STORY_MAX_VIDEO_BYTES)


def _image(upload) -> Sniffed | None:
    try:
        clean = images.reencode(upload, max_pixels=settings.STORY_MAX_IMAGE_PIXELS,
                                max_frames=settings.STORY_MAX_IMAGE_FRAMES, name=upload.name)
    except images.ImageRefused as exc:
        if exc.status == 413:
            raise PayloadTooLarge(str(exc)) from None
        raise exceptions.ValidationError({"media": [str(exc)]}) from None
    finally:
        upload.seek(0)
    if clean is None:
        return None
    return Sniffed("image", clean.mime, clean.extension, clean.content)


def validate_upload(upload) -> Sniffed:
    """The media's real type (and, for an image, the clean file to store), or 413 (too large
    for its kind), 415 (not an image or video) or 400 (a truncated or corrupt image)."""
    if upload.size > max_upload_bytes():
        raise PayloadTooLarge(f"Media may be at most {max_upload_bytes()} bytes.")
    found = video.parse_container(upload)
    if found is not None:
        if upload.size > settings.STORY_MAX_VIDEO_BYTES:
            raise PayloadTooLarge(f"Videos may be at most {settings.STORY_MAX_VIDEO_BYTES} bytes.")
        return Sniffed("video", found.mime, found.extension)
    if upload.size > settings.STORY_MAX_IMAGE_BYTES:
        # Not a video, and too large for an image: refused unread.
        raise PayloadTooLarge(f"Images may be at most {settings.STORY_MAX_IMAGE_BYTES} bytes.")
    sniffed = _image(upload)
    if sniffed is None:
        raise UnsupportedMediaType()
    return sniffed


def media_url(name: str) -> str | None:
    """Public URL of a media file: on the CDN host when MEDIA_CDN_URL is set."""
    if not name:
        return None
    if settings.MEDIA_CDN_URL:
        return urljoin(settings.MEDIA_CDN_URL.rstrip("/") + "/", name)
    return default_storage.url(name)


def delete_media(names) -> None:
    """Delete stored files; a file already gone is not an error (the sweep may run twice)."""
    for name in names:
        if name:
            try:
                default_storage.delete(name)
            except FileNotFoundError:
                pass
