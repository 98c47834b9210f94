"""Uploaded images, re-encoded: the stored file is pixels only (EXIF orientation applied, every
metadata block such as GPS, camera, ICC, XMP and comments dropped), and nothing is decoded
before its size is known to fit the pixel and frame budgets.  Used for stories and avatars.
Design: docs/security.md ("Uploads").
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from django.core.files.base import ContentFile
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png"),
           "WEBP": ("image/webp", ".webp"), "GIF": ("image/gif", ".gif")}


class ImageRefused(ValueError):
    """Why an upload is not an image we keep; ``status`` is the HTTP answer (400, 413, 415)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CleanImage:
    content: ContentFile  # the re-encoded file, with ``.image`` (its Pillow header) like DRF's
    format: str
    mime: str
    extension: str
    width: int
    height: int
    frames: int


def _frame_count(image) -> int:
    return int(getattr(image, "n_frames", 1) or 1)


def _clean_frame(frame, fmt: str) -> Image.Image:
    """One frame's pixels, upright, in a mode the format can write, with no metadata."""
    frame = ImageOps.exif_transpose(frame) or frame
    if "transparency" in frame.info and frame.mode != "RGBA":
        frame = frame.convert("RGBA")  # the transparent colour lives in the metadata dropped below
    if fmt == "JPEG":
        frame = frame.convert("RGB") if frame.mode not in ("L", "RGB", "CMYK") else frame.copy()
    elif fmt == "WEBP" or (fmt == "GIF" and frame.mode not in ("P", "L")):
        frame = frame.convert("RGBA")
    else:
        frame = frame.copy()
    frame.info = {}
    return frame


def _encode(frames: list[Image.Image], fmt: str, durations: list[int], loop) -> bytes:
    out = io.BytesIO()
    options: dict[str, object] = {}
    if fmt == "JPEG":
        options = {"quality": 90, "optimize": True}
    elif fmt == "WEBP":
        options = {"quality": 90}
    elif fmt == "PNG":
        options = {"optimize": False}
    if len(frames) > 1:
        options.update(save_all=True, append_images=frames[1:], duration=durations, loop=loop or 0)
    frames[0].save(out, format=fmt, **options)
    return out.getvalue()


def reencode(upload, *, max_pixels: int, max_frames: int, name: str = "image") -> CleanImage | None:
    """The upload as a clean image of the same format, or None when it is not one of ours.

    Raises :class:`ImageRefused`: 413 above ``max_pixels`` (width x height x frames, checked
    from the header before anything is decoded) or ``max_frames``; 400 when the data is
    truncated or corrupt.
    """
    upload.seek(0)
    try:
        image = Image.open(upload)
    except Image.DecompressionBombError:
        raise ImageRefused(f"Images may have at most {max_pixels} pixels.", 413) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    with image:
        fmt = image.format
        if fmt not in FORMATS:
            return None
        width, height = image.size
        try:
            frames = _frame_count(image)
        except (OSError, ValueError, SyntaxError, EOFError):
            raise ImageRefused("The image is truncated or corrupt.", 400) from None
        if frames > max_frames:
            raise ImageRefused(f"Animated images may have at most {max_frames} frames.", 413)
        if width * height * frames > max_pixels:
            raise ImageRefused(f"Images may have at most {max_pixels} pixels (all frames together).", 413)
        try:
            cleaned, durations = [], []
            for frame in ImageSequence.Iterator(image):
                frame.load()
                durations.append(int(frame.info.get("duration", 100) or 100))
                cleaned.append(_clean_frame(frame, fmt))
            loop = image.info.get("loop")
            data = _encode(cleaned, fmt, durations, loop)
        except Image.DecompressionBombError:
            raise ImageRefused(f"Images may have at most {max_pixels} pixels.", 413) from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise ImageRefused("The image is truncated or corrupt.", 400) from None
    mime, extension = FORMATS[fmt]
    base = os.path.splitext(os.path.basename(name or "image"))[0] or "image"
    content = ContentFile(data, name=base + extension)
    content.image = Image.open(io.BytesIO(data))  # type: ignore[attr-defined]  # header only, as DRF's ImageField
    return CleanImage(content, fmt, mime, extension, cleaned[0].width, cleaned[0].height, len(cleaned))
