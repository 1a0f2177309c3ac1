"""`avsa calibrate`: write → a re-encoding that permutes, flips and rescales channels → read recovers the map."""

import math

import numpy as np
import pytest

from avsa.cli import main
from avsa.errors import InputError, MediaError
from avsa.media import calibrate, io
from avsa.media.cache import Cache
from avsa.media.layouts import apply_channel_map, format_channel_map, parse_channel_map

BURST = 0.25  # s per direction: 2 s of video
RATE = 24000


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrate") / "calibration.mp4"
    assert main(["calibrate", "write", str(out), "--burst", str(BURST), "--width", "64",
                 "--sample-rate", str(RATE)]) == 0
    return out


def reencode(source, out, channels):
    """The calibration video with its audio rewritten as ``channels(ambix)`` (a platform's re-encoding)."""
    frames = io.read_frames(source)
    ambix = io.read_audio(source, layout="raw")
    io.write_av(out, frames, 16.0, audio=channels(ambix), sample_rate=RATE, audio_codec="aac")
    return out, ambix


def test_written_file_reads_as_ambix(written):
    c = calibrate.read(written, burst_s=BURST)
    assert c.channel_map == "0,1,2,3" and c.layout == "ambix" and c.normalisation == "sn3d"
    info = io.probe(written)
    assert info.audio_channels == 4 and info.projection == "equirectangular"


def test_permuted_flipped_fuma_gain_is_recovered(written, tmp_path):
    # raw = [X, W/√2, −Y, Z]: X first, W at FuMa's −3 dB, Y sign-flipped
    def broken(a):
        w, y, z, x = a
        return np.stack([x, w / math.sqrt(2.0), -y, z])

    path, ambix = reencode(written, tmp_path / "platform.mp4", broken)
    c = calibrate.read(path, burst_s=BURST)
    # ambiX W = √2·raw1, Y = −raw2, Z = raw3, X = raw0
    assert c.channel_map == "1*1.41421,-2,3,0" and c.normalisation == "fuma" and c.layout is None
    recovered = apply_channel_map(io.read_audio(path, layout="raw"), c.channel_map)
    n = min(recovered.shape[1], ambix.shape[1])
    for k in range(4):
        corr = np.corrcoef(recovered[k, :n], ambix[k, :n])[0, 1]
        assert corr > 0.95, (k, corr)  # two lossy AAC generations
    # the printed map is what prepare takes: the clip passes the validity test with the source where it was
    src = tmp_path / "src"
    src.mkdir()
    path.rename(src / "platform.mp4")
    assert main(["prepare", str(src), "--out", str(tmp_path / "cache"), "--width", "64",
                 "--channel-map", c.channel_map, "--clip-seconds", "2"]) == 0
    clip = Cache(tmp_path / "cache").clips()[0]
    assert abs(clip.validity - 1) < 0.1


def test_named_presets_are_reported(written, tmp_path):
    def n3d(a):
        w, y, z, x = a
        return np.stack([w, math.sqrt(3.0) * y, math.sqrt(3.0) * z, math.sqrt(3.0) * x])

    path, _ = reencode(written, tmp_path / "n3d.mp4", n3d)
    c = calibrate.read(path, burst_s=BURST)
    assert c.layout == "n3d" and c.normalisation == "n3d"
    assert main(["calibrate", "read", str(path), "--burst", str(BURST)]) == 0


def test_six_channel_youtube_aac_is_recognised(written, tmp_path):
    def youtube(a):  # YouTube's AAC decoded raw: X, Y, W, 0, Z, 0 (two silent channels)
        w, y, z, x = a
        return np.stack([x, y, w, np.zeros_like(w), z, np.zeros_like(w)])

    path, _ = reencode(written, tmp_path / "youtube.mp4", youtube)
    c = calibrate.read(path, burst_s=BURST)
    assert (c.channel_map, c.layout, c.raw_channels) == ("2,1,4,0", "youtube-aac", 6)


def test_channel_map_text():
    assert parse_channel_map("0*1.414214,-2,3,1") == ((0, 1.414214), (2, -1.0), (3, 1.0), (1, 1.0))
    assert format_channel_map(parse_channel_map("2,1,4,-0")) == "2,1,4,-0"
    for bad in ("0,1,2", "0,1,2,x", "0,1,2,3*0"):
        with pytest.raises(InputError, match="channel-map"):
            parse_channel_map(bad)
    with pytest.raises(MediaError, match="f.wav: has 4 audio channels"):
        apply_channel_map(np.zeros((4, 10)), "0,1,2,5", path="f.wav")


def test_not_a_calibration_file(tmp_path):
    noise = np.random.default_rng(0).standard_normal((4, RATE * 2)).astype(np.float32) * 0.1
    with pytest.raises(MediaError, match="do not follow the calibration path"):
        calibrate.estimate(noise, RATE, burst_s=BURST, path="x.wav")
    with pytest.raises(MediaError, match="long"):
        calibrate.estimate(noise[:, :100], RATE, burst_s=BURST, path="x.wav")
