"""Story media: what a file really is (by its bytes, never its name), size limits, URLs.

Images are opened and verified with Pillow (JPEG, PNG, WebP, GIF); videos are recognised
by their container's magic bytes (MP4/QuickTime ``ftyp`` boxes, WebM's EBML header with a
``webm`` doctype).  Anything else is a 415, whatever its name or declared content type.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image, UnidentifiedImageError
from rest_framework import exceptions, status

from core.api.rest import PayloadTooLarge

IMAGE_FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png"),
                 "WEBP": ("image/webp", ".webp"), "GIF": ("image/gif", ".gif")}
# ISO base media brands that are still images (HEIF/AVIF), not videos.
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}


class UnsupportedMediaType(exceptions.APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "Media must be a JPEG, PNG, WebP or GIF image, or an MP4, QuickTime or WebM video."
    default_code = "unsupported_media_type"


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" or "video"
    mime: str
    extension: str


def max_upload_bytes() -> int:
    return max(settings.STORY_MAX_IMAGE_BYTES, settings.STORY_MAX_VIDEO_BYTES)


def _video(head: bytes) -> Sniffed | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        if brand == b"qt  ":
            return Sniffed("video", "video/quicktime", ".mov")
        return Sniffed("video", "video/mp4", ".mp4")
    if head[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in head[:4096]:
        return Sniffed("video", "video/webm", ".webm")
    return None


def _image(upload) -> Sniffed | None:
    upload.seek(0)
    try:
        with Image.open(upload) as image:
            fmt = image.format
            if fmt not in IMAGE_FORMATS:
                return None
            width, height = image.size
            if width * height > settings.STORY_MAX_IMAGE_PIXELS:
                raise UnsupportedMediaType(f"Images may have at most {settings.STORY_MAX_IMAGE_PIXELS} pixels.")
            image.verify()
    except UnsupportedMediaType:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        return None
    finally:
        upload.seek(0)
    mime, extension = IMAGE_FORMATS[fmt]
    return Sniffed("image", mime, extension)


def validate_upload(upload) -> Sniffed:
    """The media's real type, or 413 (too large for its kind) / 415 (not an image or video)."""
    if upload.size > max_upload_bytes():
        raise PayloadTooLarge(f"Media may be at most {max_upload_bytes()} bytes.")
    upload.seek(0)
    head = upload.read(4096)
    upload.seek(0)
    sniffed = _video(head) or _image(upload)
    if sniffed is None:
        raise UnsupportedMediaType()
    limit = settings.STORY_MAX_IMAGE_BYTES if sniffed.kind == "image" else settings.STORY_MAX_VIDEO_BYTES
    if upload.size > limit:
        raise PayloadTooLarge(f"{sniffed.kind.capitalize()}s may be at most {limit} bytes.")
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
