"""Uploaded videos: accepted only when the container parses, never by magic bytes alone.

MP4/QuickTime (ISO base media): a walk over the top-level boxes from ``ftyp`` to the end of
the file, every size sane, a ``moov`` holding an ``mvhd`` and media data (``mdat``).  WebM:
an EBML header whose DocType is ``webm``, then a Segment with Info and Tracks before any
Cluster.  Anything else, such as arbitrary bytes behind an ``ftyp`` box, is refused.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

# ISO base media brands that are still images (HEIF/AVIF), not videos.
IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}
_BOX_TYPE = re.compile(rb"[A-Za-z0-9 \xa9_-]{4}")
_MAX_BOXES = 10_000
_EBML, _DOCTYPE, _SEGMENT = 0x1A45DFA3, 0x4282, 0x18538067
_INFO, _TRACKS, _CLUSTER = 0x1549A966, 0x1654AE6B, 0x1F43B675
# Top-level children of a WebM Segment (SeekHead, Info, Tracks, Cluster, Cues, Chapters,
# Attachments, Tags, Void, CRC-32).
_SEGMENT_CHILDREN = {0x114D9B74, _INFO, _TRACKS, _CLUSTER, 0x1C53BB6B, 0x1043A770, 0x1941A469,
                     0x1254C367, 0xEC, 0xBF}
_UNKNOWN_SIZE = -1


@dataclass(frozen=True)
class Video:
    mime: str
    extension: str


class _Bad(Exception):
    pass


def _read(f, offset: int, count: int) -> bytes:
    f.seek(offset)
    return f.read(count)


def _boxes(f, start: int, end: int):
    """(type, payload offset, box end) of each box in [start, end); raises _Bad on a bad size."""
    offset, count = start, 0
    while offset < end:
        count += 1
        if count > _MAX_BOXES or end - offset < 8:
            raise _Bad("box header")
        size, kind = struct.unpack(">I4s", _read(f, offset, 8))
        header = 8
        if size == 1:
            if end - offset < 16:
                raise _Bad("large size")
            (size,) = struct.unpack(">Q", _read(f, offset + 8, 8))
            header = 16
        elif size == 0:
            size = end - offset  # to the end of the file
        if not _BOX_TYPE.fullmatch(kind) or size < header or offset + size > end:
            raise _Bad(f"box {kind!r} of size {size}")
        yield kind, offset + header, offset + size
        offset += size


def _iso_bmff(f, length: int) -> Video | None:
    if length < 16 or _read(f, 4, 4) != b"ftyp":
        return None
    try:
        boxes = list(_boxes(f, 0, length))
        kind, payload, end = boxes[0]
        if kind != b"ftyp" or not 16 <= end <= 4096:
            return None
        brand = _read(f, payload, 4)
        if brand in IMAGE_BRANDS:
            return None
        kinds = [box[0] for box in boxes]
        if kinds.count(b"moov") != 1 or b"mdat" not in kinds:
            return None
        _kind, moov_payload, moov_end = boxes[kinds.index(b"moov")]
        children = [child[0] for child in _boxes(f, moov_payload, moov_end)]
        if b"mvhd" not in children or b"trak" not in children:
            return None
    except _Bad:
        return None
    if brand == b"qt  ":
        return Video("video/quicktime", ".mov")
    return Video("video/mp4", ".mp4")


def _vint(f, offset: int, *, is_id: bool) -> tuple[int, int]:
    """An EBML variable-length integer at ``offset``: (value, bytes used)."""
    first = _read(f, offset, 1)
    if not first or first[0] == 0:
        raise _Bad("vint")
    width = 8 - first[0].bit_length() + 1
    if width > (4 if is_id else 8):
        raise _Bad("vint width")
    raw = _read(f, offset, width)
    if len(raw) != width:
        raise _Bad("vint truncated")
    value = int.from_bytes(raw, "big")
    if is_id:
        return value, width
    value &= (1 << (7 * width)) - 1
    if value == (1 << (7 * width)) - 1:
        return _UNKNOWN_SIZE, width
    return value, width


def _element(f, offset: int, end: int) -> tuple[int, int, int]:
    """(id, data offset, data end) of the EBML element at ``offset``."""
    element_id, used = _vint(f, offset, is_id=True)
    size, size_used = _vint(f, offset + used, is_id=False)
    data = offset + used + size_used
    data_end = end if size == _UNKNOWN_SIZE else data + size
    if data > end or data_end > end:
        raise _Bad("element size")
    return element_id, data, data_end


def _webm(f, length: int) -> Video | None:
    if length < 8 or _read(f, 0, 4) != b"\x1a\x45\xdf\xa3":
        return None
    try:
        element_id, data, header_end = _element(f, 0, length)
        if element_id != _EBML or header_end - data > 256:
            return None
        doctype = None
        offset = data
        while offset < header_end:
            child, child_data, child_end = _element(f, offset, header_end)
            if child == _DOCTYPE:
                doctype = _read(f, child_data, child_end - child_data)
            offset = child_end
        if doctype != b"webm":
            return None
        segment, offset, segment_end = _element(f, header_end, length)
        if segment != _SEGMENT:
            return None
        seen = set()
        for _ in range(_MAX_BOXES):
            if offset >= segment_end:
                break
            child, _child_data, child_end = _element(f, offset, segment_end)
            if child not in _SEGMENT_CHILDREN:
                return None
            if child == _CLUSTER:
                break
            seen.add(child)
            offset = child_end
        if not {_INFO, _TRACKS} <= seen:
            return None
    except _Bad:
        return None
    return Video("video/webm", ".webm")


def parse_container(upload) -> Video | None:
    """The video's type when its container parses (MP4/QuickTime or WebM), else None."""
    length = upload.size
    try:
        return _iso_bmff(upload, length) or _webm(upload, length)
    finally:
        upload.seek(0)
