"""Spherical-video / spatial-audio boxes: written by write_av, read back, robust to odd files."""

from __future__ import annotations

import struct

import av
import numpy as np
import pytest

from avsa.media import io, metadata


def _frames(width=128, height=64, n=8):
    return np.full((n, height, width, 3), 90, np.uint8)


@pytest.mark.parametrize("projection, width", [("equirectangular", 128), ("cubemap", 96)])
def test_written_metadata_reads_back_and_file_still_decodes(tmp_path, projection, width):
    path = tmp_path / "sphere.mp4"
    audio = np.zeros((4, 24000), np.float32)
    io.write_av(path, _frames(width), 16.0, audio=audio, sample_rate=24000, projection=projection)
    info = metadata.read_spherical(path)
    assert info.projection == projection and info.stereo_mode == "mono"
    assert info.spatial_audio and info.ambisonic_order == 1
    assert (info.channel_ordering, info.normalization, info.channel_map) == ("ACN", "SN3D", (0, 1, 2, 3))
    # FFmpeg parses the SA3D box we wrote: it reports an ambisonic channel layout.
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.layout.name.startswith("ambisonic")
        assert sum(1 for _ in container.decode(video=0)) == 8
    assert io.probe(path).projection == projection


def test_v1_xml_box_is_written_for_equirect(tmp_path):
    path = tmp_path / "v1.mp4"
    io.write_av(path, _frames(), 16.0)
    data = path.read_bytes()
    at = data.find(metadata.SPHERICAL_V1_UUID)
    assert at > 0 and b"<GSpherical:ProjectionType>equirectangular" in data[at : at + 1000]


def test_no_metadata_when_not_spherical(tmp_path):
    path = tmp_path / "flat.mp4"
    io.write_av(path, _frames(), 16.0, spherical=False)
    assert metadata.read_spherical(path) is None
    assert io.probe(path).projection is None


def test_chunk_offsets_are_shifted_when_moov_comes_first(tmp_path):
    """A faststart-style file (moov before mdat): injected boxes must not break sample offsets."""
    path = tmp_path / "fast.mp4"
    frames = np.stack([np.full((64, 128, 3), 20 * i, np.uint8) for i in range(8)])
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 128, 64, "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert path.read_bytes().find(b"moov") < path.read_bytes().find(b"mdat")
    assert metadata.inject_spherical(path)
    assert metadata.read_spherical(path).projection == "equirectangular"
    back = io.read_frames(path)
    np.testing.assert_allclose(back.reshape(8, -1).mean(1), 20 * np.arange(8), atol=3)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00" * 7,
        np.random.default_rng(1).bytes(5000),
        struct.pack(">I4s", 0xFFFFFFF0, b"moov") + b"\x00" * 64,  # size beyond the file
        struct.pack(">I4s", 24, b"moov") + struct.pack(">I4s", 3, b"trak") + b"\x00" * 12,  # box smaller than a header
        struct.pack(">I4s", 1, b"moov") + struct.pack(">Q", 2) + b"\x00" * 8,  # bad 64-bit size
    ],
)
def test_odd_files_give_none(tmp_path, content):
    path = tmp_path / "odd.mp4"
    path.write_bytes(content)
    assert metadata.read_spherical(path) is None
    assert metadata.read_spherical(tmp_path / "missing.mp4") is None
