"""Google spatial-media metadata in MP4/MOV files: read and write.

Pure Python, by walking ISO-BMFF boxes:

- Spherical Video V1: a ``uuid`` box (``ffcc8263-f855-4a93-8814-587a02521fdd``)
  in the video ``trak`` holding RDF/XML (``GSpherical:Spherical``,
  ``ProjectionType``, ``StereoMode``).
- Spherical Video V2: ``st3d`` (stereo mode) and ``sv3d`` → ``proj`` →
  ``equi`` | ``cbmp`` (layout, padding) | ``mshp`` inside the video sample entry.
- Spatial Audio: ``SA3D`` inside the audio sample entry (ambisonic order,
  channel ordering ACN, normalization SN3D, channel map).

:func:`read_spherical` never raises on odd files: anything it cannot parse
is reported as absent (``None``).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SphericalInfo", "read_spherical", "inject_spherical", "SPHERICAL_V1_UUID"]

SPHERICAL_V1_UUID = bytes.fromhex("ffcc8263f8554a938814587a02521fdd")
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"sv3d", b"proj"}
_VISUAL_ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1", b"vp09", b"vp08", b"av01", b"mp4v", b"encv"}
_AUDIO_ENTRIES = {
    b"mp4a", b"Opus", b"fLaC", b"ac-3", b"ec-3", b"alac", b"ipcm", b"fpcm", b"lpcm", b"sowt", b"twos",
    b"in24", b"in32", b"fl32", b"fl64", b"enca", b"samr", b"raw ",
}
_STEREO_MODES = {0: "mono", 1: "top-bottom", 2: "left-right"}
_MAX_DEPTH = 12


@dataclass(frozen=True)
class SphericalInfo:
    """Spatial-media metadata of a file; fields are ``None`` where it says nothing.

    Attributes
    ----------
    projection : {"equirectangular", "cubemap", "mesh"} or None
        ``cubemap`` is V2's ``cbmp`` (YouTube's equi-angular cubemap).
    stereo_mode : {"mono", "top-bottom", "left-right"} or None
    cubemap_padding : int or None
        Pixels of padding from ``cbmp``.
    spatial_audio : bool or None
        True when an ``SA3D`` box is present.
    ambisonic_order : int or None
    channel_ordering : {"ACN"} or None
    normalization : {"SN3D"} or None
    channel_map : tuple of int or None
    """

    projection: str | None = None
    stereo_mode: str | None = None
    cubemap_padding: int | None = None
    spatial_audio: bool | None = None
    ambisonic_order: int | None = None
    channel_ordering: str | None = None
    normalization: str | None = None
    channel_map: tuple[int, ...] | None = None


# --------------------------------------------------------------------------- box walking


def _boxes(data: bytes, start: int, end: int):
    """Yield (type, box start, payload start, box end) of the boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos, pos + header, pos + size
        pos += size


def _entry_children_start(data: bytes, kind: bytes, payload: int) -> int | None:
    """Offset of the first child box of a sample entry (None: not a known entry)."""
    if kind in _VISUAL_ENTRIES:
        return payload + 78
    if kind in _AUDIO_ENTRIES:
        version = struct.unpack(">H", data[payload + 8 : payload + 10])[0]
        return payload + 28 + {1: 16, 2: 36}.get(version, 0)
    return None


def _top_level(f) -> list[tuple[bytes, int, int, int]]:
    """(type, start, payload start, end) of the top-level boxes, reading headers only."""
    f.seek(0, os.SEEK_END)
    file_end = f.tell()
    boxes, pos = [], 0
    while pos + 8 <= file_end and len(boxes) < 10000:
        f.seek(pos)
        head = f.read(16)
        size, kind = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:
            if len(head) < 16:
                break
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        elif size == 0:
            size = file_end - pos
        if size < header or pos + size > file_end or not re.fullmatch(rb"[ -~]{4}", kind):
            break
        boxes.append((kind, pos, pos + header, pos + size))
        pos += size
    return boxes


def _read_moov(path: Path) -> tuple[bytes, list] | None:
    with open(path, "rb") as f:
        top = _top_level(f)
        moov = [b for b in top if b[0] == b"moov"]
        if not moov or moov[0][3] - moov[0][1] > 256 * 1024 * 1024:
            return None
        _, start, _, end = moov[0]
        f.seek(start)
        return f.read(end - start), top


def _handler(data: bytes, trak_payload: int, trak_end: int) -> bytes | None:
    for kind, _, payload, end in _boxes(data, trak_payload, trak_end):
        if kind == b"mdia":
            for k2, _, p2, _e2 in _boxes(data, payload, end):
                if k2 == b"hdlr":
                    return data[p2 + 8 : p2 + 12]
    return None


def _sample_entries(data: bytes, trak_payload: int, trak_end: int, depth: int = 0):
    """Yield (type, start, payload, end, children start) of the sample entries of a trak."""
    for kind, start, payload, end in _boxes(data, trak_payload, trak_end):
        if kind == b"stsd":
            for k2, s2, p2, e2 in _boxes(data, payload + 8, end):
                children = _entry_children_start(data, k2, p2)
                if children is not None and children <= e2:
                    yield k2, s2, p2, e2, children
        elif kind in _CONTAINERS and depth < _MAX_DEPTH:
            yield from _sample_entries(data, payload, end, depth + 1)


# --------------------------------------------------------------------------- reading


def read_spherical(path: str | os.PathLike) -> SphericalInfo | None:
    """Read V1/V2 spherical-video and SA3D spatial-audio metadata.

    Parameters
    ----------
    path : str or os.PathLike
        An MP4/MOV-family file (anything else gives ``None``).

    Returns
    -------
    SphericalInfo or None
        ``None`` when the file has no such metadata or cannot be parsed.
    """
    try:
        found = _read_moov(Path(path))
        if found is None:
            return None
        data = found[0]
        fields: dict = {}
        for kind, _, payload, end in _boxes(data, 8, len(data)):
            if kind != b"trak":
                continue
            handler = _handler(data, payload, end)
            if handler == b"vide":
                _read_video_trak(data, payload, end, fields)
            elif handler == b"soun":
                _read_audio_trak(data, payload, end, fields)
        return SphericalInfo(**fields) if fields else None
    except (OSError, struct.error, ValueError, IndexError, UnicodeDecodeError):
        return None


def _read_video_trak(data: bytes, payload: int, end: int, fields: dict) -> None:
    for kind, _, p, e in _boxes(data, payload, end):
        if kind == b"uuid" and data[p : p + 16] == SPHERICAL_V1_UUID:
            xml = data[p + 16 : e].decode("utf-8", errors="replace")
            if re.search(r"<GSpherical:Spherical>\s*true", xml, re.I):
                projection = re.search(r"<GSpherical:ProjectionType>\s*([\w-]+)", xml)
                fields.setdefault("projection", (projection.group(1).lower() if projection else "equirectangular"))
            stereo = re.search(r"<GSpherical:StereoMode>\s*([\w-]+)", xml)
            if stereo:
                fields.setdefault("stereo_mode", stereo.group(1).lower())
    for _, _, _, e, children in _sample_entries(data, payload, end):
        for kind, _, p, e2 in _boxes(data, children, e):
            if kind == b"st3d" and e2 - p >= 5:
                fields["stereo_mode"] = _STEREO_MODES.get(data[p + 4])
            elif kind == b"sv3d":
                for k2, _, p2, e3 in _boxes(data, p, e2):
                    if k2 == b"proj":
                        _read_proj(data, p2, e3, fields)


def _read_proj(data: bytes, payload: int, end: int, fields: dict) -> None:
    for kind, _, p, e in _boxes(data, payload, end):
        if kind == b"equi":
            fields["projection"] = "equirectangular"
        elif kind == b"cbmp":
            fields["projection"] = "cubemap"
            if e - p >= 12:
                fields["cubemap_padding"] = struct.unpack(">I", data[p + 8 : p + 12])[0]
        elif kind == b"mshp":
            fields["projection"] = "mesh"


def _read_audio_trak(data: bytes, payload: int, end: int, fields: dict) -> None:
    for _, _, _, e, children in _sample_entries(data, payload, end):
        for kind, _, p, e2 in _boxes(data, children, e):
            if kind != b"SA3D" or e2 - p < 12:
                continue
            order, ordering, normalization, n = struct.unpack(">IBBI", data[p + 2 : p + 12])
            n = min(n, (e2 - p - 12) // 4)
            fields.update(
                spatial_audio=True,
                ambisonic_order=order,
                channel_ordering={0: "ACN"}.get(ordering, f"unknown ({ordering})"),
                normalization={0: "SN3D"}.get(normalization, f"unknown ({normalization})"),
                channel_map=struct.unpack(f">{n}I", data[p + 12 : p + 12 + 4 * n]),
            )


# --------------------------------------------------------------------------- writing


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, payload: bytes) -> bytes:
    return _box(kind, b"\0\0\0\0" + payload)


def _v1_uuid() -> bytes:
    xml = (
        '<?xml version="1.0"?><rdf:SphericalVideo xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:GSpherical="http://ns.google.com/videos/1.0/spherical/">'
        "<GSpherical:Spherical>true</GSpherical:Spherical><GSpherical:Stitched>true</GSpherical:Stitched>"
        "<GSpherical:StitchingSoftware>avsa</GSpherical:StitchingSoftware>"
        "<GSpherical:ProjectionType>equirectangular</GSpherical:ProjectionType></rdf:SphericalVideo>"
    )
    return _box(b"uuid", SPHERICAL_V1_UUID + xml.encode())


def _v2_boxes(projection: str, padding: int) -> bytes:
    if projection == "cubemap":
        mapping = _full_box(b"cbmp", struct.pack(">II", 0, padding))
    else:
        mapping = _full_box(b"equi", struct.pack(">IIII", 0, 0, 0, 0))
    proj = _box(b"proj", _full_box(b"prhd", struct.pack(">iii", 0, 0, 0)) + mapping)
    sv3d = _box(b"sv3d", _full_box(b"svhd", b"avsa\0") + proj)
    return _full_box(b"st3d", b"\0") + sv3d


def _sa3d(channels: int) -> bytes:
    payload = struct.pack(">BBIBBI", 0, 0, 1, 0, 0, channels) + struct.pack(f">{channels}I", *range(channels))
    return _box(b"SA3D", payload)


def _edit(data: bytes, start: int, end: int, appends: dict[int, bytes]) -> bytes:
    """Rebuild box data[start:end], appending bytes to the boxes that start at the keys.

    ``appends[s]`` goes after the last child of the box starting at offset s;
    the sizes of that box and of its ancestors are fixed up.
    """
    if not any(start <= k < end for k in appends):
        return data[start:end]
    size = struct.unpack(">I", data[start : start + 4])[0]
    header = 16 if size == 1 else 8
    kind = data[start + 4 : start + 8]
    pos = start + header
    children_start = pos + 8 if kind == b"stsd" else (_entry_children_start(data, kind, pos) or pos)
    out = bytearray(data[pos:children_start])
    pos = children_start
    if kind in _CONTAINERS or kind == b"stsd" or children_start != start + header:
        for _, s, _, e in _boxes(data, children_start, end):
            out += _edit(data, s, e, appends)
            pos = e
    out += data[pos:end]
    out += appends.get(start, b"")
    total = header + len(out)
    head = struct.pack(">I4s", 1, kind) + struct.pack(">Q", total) if header == 16 else struct.pack(">I4s", total, kind)
    return head + bytes(out)


def _shift_chunk_offsets(moov: bytearray, delta: int) -> None:
    def walk(start: int, end: int, depth: int) -> None:
        for kind, _, payload, e in _boxes(bytes(moov), start, end):
            if kind in (b"stco", b"co64"):
                n = struct.unpack(">I", moov[payload + 4 : payload + 8])[0]
                fmt, width = (">I", 4) if kind == b"stco" else (">Q", 8)
                for i in range(n):
                    at = payload + 8 + i * width
                    moov[at : at + width] = struct.pack(fmt, struct.unpack(fmt, moov[at : at + width])[0] + delta)
            elif kind in _CONTAINERS and depth < _MAX_DEPTH:
                walk(payload, e, depth + 1)

    walk(8, len(moov), 0)


def inject_spherical(
    path: str | os.PathLike,
    *,
    projection: str = "equirectangular",
    cubemap_padding: int = 0,
    ambisonic_channels: int | None = None,
) -> bool:
    """Add spherical-video (V1 + V2) and, optionally, SA3D metadata to an MP4/MOV in place.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by FFmpeg's MP4/MOV muxer.
    projection : {"equirectangular", "cubemap"}, keyword-only
        ``cubemap`` writes V2 ``cbmp`` only (V1 knows no cubemap).
    cubemap_padding : int, keyword-only
        Padding pixels recorded in ``cbmp``.
    ambisonic_channels : int or None, keyword-only
        Write an ``SA3D`` box (first order, ACN, SN3D, identity channel map)
        into the first audio track's sample entry.

    Returns
    -------
    bool
        False (file unchanged) when there is no ``moov`` or no video track.
    """
    p = Path(path)
    found = _read_moov(p)
    if found is None:
        return False
    data, top = found
    appends: dict[int, bytes] = {}
    done: set[bytes] = set()  # first video / first audio track only
    for kind, start, payload, end in _boxes(data, 8, len(data)):
        if kind != b"trak":
            continue
        handler = _handler(data, payload, end)
        entries = list(_sample_entries(data, payload, end))
        if handler == b"vide" and entries and handler not in done:
            done.add(handler)
            if projection == "equirectangular":
                appends[start] = _v1_uuid()
            appends[entries[0][1]] = _v2_boxes(projection, cubemap_padding)
        elif handler == b"soun" and entries and ambisonic_channels and handler not in done:
            done.add(handler)
            appends[entries[0][1]] = _sa3d(ambisonic_channels)
    if not appends:
        return False
    new_moov = bytearray(_edit(data, 0, len(data), appends))
    moov_box = next(b for b in top if b[0] == b"moov")
    if any(b[0] == b"mdat" and b[1] > moov_box[1] for b in top):
        _shift_chunk_offsets(new_moov, len(new_moov) - len(data))
    temporary = p.with_name(p.name + ".spherical.tmp")
    with open(p, "rb") as source, open(temporary, "wb") as target:
        shutil.copyfileobj(_limited(source, moov_box[1]), target)
        target.write(new_moov)
        source.seek(moov_box[3])
        shutil.copyfileobj(source, target)
    os.replace(temporary, p)
    return True


class _limited:
    """A file object that reads only its first ``n`` bytes (for copyfileobj)."""

    def __init__(self, f, n: int):
        self.f, self.left = f, n
        f.seek(0)

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size < 0 else min(size, self.left)
        chunk = self.f.read(size)
        self.left -= len(chunk)
        return chunk
