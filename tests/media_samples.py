"""Small media files built in code for the upload tests (no binaries in the repository):
images with metadata, pixel and frame bombs, and structurally valid MP4, QuickTime and WebM."""

from __future__ import annotations

import io
import struct

from PIL import Image

GPS_IFD = 0x8825


def image_bytes(fmt="PNG", size=(32, 24), mode="RGB", **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 0).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def jpeg_with_gps(size=(40, 20), orientation=6) -> bytes:
    """A JPEG whose EXIF holds a GPS position, a camera model and an orientation (6: rotate 90)."""
    exif = Image.Exif()
    exif[0x0110] = "SpyCam 3000"  # Model
    exif[0x0112] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 18.0)})
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format="JPEG", exif=exif, comment=b"secret note")
    return buffer.getvalue()


def pixel_bomb_png(size=(8000, 6000)) -> bytes:
    """48 megapixels in a few kilobytes (one bit per pixel, all zero)."""
    return image_bytes("PNG", size, mode="1")


def animated_gif(size=(3000, 3000), frames=50) -> bytes:
    """A looping GIF of ``frames`` copies of one encoded frame, assembled block by block (the
    writer would merge identical frames, and encoding 50 large ones takes seconds)."""
    buffer = io.BytesIO()
    Image.new("P", size, 1).save(buffer, format="GIF")
    single = buffer.getvalue()
    flags = single[10]
    offset = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    head = single[:offset]
    while single[offset] == 0x21:  # skip the writer's extensions up to the image descriptor
        offset += 2
        while single[offset]:
            offset += single[offset] + 1
        offset += 1
    image_block = single[offset:-1]  # descriptor and data, without the trailer
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = b"\x21\xf9\x04\x00\x04\x00\x00\x00" + image_block  # 40 ms a frame
    return head + loop + frame * frames + b"\x3b"


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _matrix() -> bytes:
    return struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def mp4_bytes(brand: bytes = b"isom", frame: bytes = b"\x00\x00\x00\x02\x09\x10") -> bytes:
    """A one-sample MP4: ftyp, moov (mvhd, trak with its sample tables), mdat."""
    ftyp = box(b"ftyp", brand + struct.pack(">I", 0x200) + brand + b"iso2mp41")
    mvhd = full_box(b"mvhd", struct.pack(">IIII", 0, 0, 1000, 40) + struct.pack(">IH", 0x10000, 0x100)
                    + b"\x00" * 10 + _matrix() + b"\x00" * 24 + struct.pack(">I", 2))
    tkhd = full_box(b"tkhd", struct.pack(">IIIII", 0, 0, 1, 0, 40) + b"\x00" * 8 + struct.pack(">HHHH", 0, 0, 0, 0)
                    + _matrix() + struct.pack(">II", 16 << 16, 16 << 16), flags=3)
    mdhd = full_box(b"mdhd", struct.pack(">IIII", 0, 0, 1000, 40) + struct.pack(">HH", 0x55C4, 0))
    hdlr = full_box(b"hdlr", struct.pack(">I", 0) + b"vide" + b"\x00" * 12 + b"video\x00")
    stsd = full_box(b"stsd", struct.pack(">I", 0))
    stts = full_box(b"stts", struct.pack(">III", 1, 1, 40))
    stsc = full_box(b"stsc", struct.pack(">IIII", 1, 1, 1, 1))
    stsz = full_box(b"stsz", struct.pack(">III", len(frame), 1, 0)[:8] + struct.pack(">I", 1))
    mdat = box(b"mdat", frame)
    def build(chunk_offset: int) -> bytes:
        stco = full_box(b"stco", struct.pack(">II", 1, chunk_offset))
        stbl = box(b"stbl", stsd + stts + stsc + stsz + stco)
        dinf = box(b"dinf", full_box(b"dref", struct.pack(">I", 1) + full_box(b"url ", b"", flags=1)))
        minf = box(b"minf", full_box(b"vmhd", b"\x00" * 8, flags=1) + dinf + stbl)
        trak = box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + minf))
        return ftyp + box(b"moov", mvhd + trak)
    head = build(0)
    return build(len(head) + 8) + mdat


def mov_bytes() -> bytes:
    return mp4_bytes(brand=b"qt  ")


def _ebml_size(n: int) -> bytes:
    return bytes([0x01]) + n.to_bytes(7, "big")


def ebml(element_id: int, payload: bytes) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big") + _ebml_size(len(payload)) + payload


def _uint(element_id: int, value: int) -> bytes:
    return ebml(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def webm_bytes() -> bytes:
    """An EBML header (DocType webm) and a Segment with Info, Tracks (one VP8 track), a Cluster."""
    header = ebml(0x1A45DFA3, _uint(0x4286, 1) + _uint(0x42F7, 1) + _uint(0x42F2, 4) + _uint(0x42F3, 8)
                  + ebml(0x4282, b"webm") + _uint(0x4287, 2) + _uint(0x4285, 2))
    info = ebml(0x1549A966, _uint(0x2AD7B1, 1_000_000) + ebml(0x4D80, b"tests") + ebml(0x5741, b"tests"))
    video = ebml(0xE0, _uint(0xB0, 16) + _uint(0xBA, 16))
    track = ebml(0xAE, _uint(0xD7, 1) + _uint(0x73C5, 1) + ebml(0x86, b"V_VP8") + _uint(0x83, 1) + video)
    tracks = ebml(0x1654AE6B, track)
    cluster = ebml(0x1F43B675, _uint(0xE7, 0) + ebml(0xA3, b"\x81\x00\x00\x80" + b"\x00" * 16))
    return header + ebml(0x18538067, info + tracks + cluster)
