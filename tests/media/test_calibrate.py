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


OFFSET_TOLERANCE_S = 0.002  # the offset is found to the sample; AAC may shift it by its priming delay


def late(audio, seconds):
    """The audio ``seconds`` late, cut to its length (a copy whose audio track lags the video)."""
    n = int(round(seconds * RATE))
    return np.concatenate([np.zeros((audio.shape[0], n), audio.dtype), audio[:, :audio.shape[1] - n]], axis=1)


def fuma_permuted(a):  # raw = [X, W/√2, −Y, Z]
    w, y, z, x = a
    return np.stack([x, w / math.sqrt(2.0), -y, z])


def test_reference_is_the_rendered_w():
    _, audio = calibrate.render(burst_s=BURST, width=8, sample_rate=RATE)
    np.testing.assert_array_equal(calibrate.reference_w(burst_s=BURST, sample_rate=RATE), audio[0])


@pytest.mark.parametrize("delay", [0.2, 0.4, -0.1])
def test_delayed_audio_is_read_with_its_offset(written, delay):
    """A late (or early) track shifts every burst out of its measuring window unless the offset is removed first."""
    ambix = io.read_audio(written, layout="raw")
    raw = late(fuma_permuted(ambix), delay) if delay > 0 else fuma_permuted(ambix)[:, int(-delay * RATE):]
    c = calibrate.estimate(raw, RATE, burst_s=BURST)
    assert c.channel_map == "1*1.41421,-2,3,0" and c.normalisation == "fuma"
    assert c.offset_s == pytest.approx(delay, abs=OFFSET_TOLERANCE_S)
    assert c.correlation > 0.9 and c.residual < 0.01


def test_extra_channels_first_four_or_named(written, tmp_path, capsys):
    ambix = io.read_audio(written, layout="raw")
    head_locked = 0.05 * np.random.default_rng(0).standard_normal((2, ambix.shape[1])).astype(np.float32)
    c = calibrate.estimate(np.concatenate([ambix, head_locked]), RATE, burst_s=BURST)
    assert c.channel_map == "0,1,2,3" and c.channels == (0, 1, 2, 3)
    assert any("read the first four" in note for note in c.notes)
    # FOA after the head-locked pair: --channels names them
    c = calibrate.estimate(np.concatenate([head_locked, ambix]), RATE, burst_s=BURST, channels=(2, 3, 4, 5))
    assert c.channel_map == "2,3,4,5" and c.channels == (2, 3, 4, 5)
    with pytest.raises(InputError, match="--channels 0,1,2,9"):
        calibrate.estimate(np.concatenate([head_locked, ambix]), RATE, burst_s=BURST, channels=(0, 1, 2, 9))
    # the CLI on a 6-channel file (FLAC: a 6-channel AAC is 5.1, whose LFE channel 3 is low-passed), 0.4 s late
    frames = io.read_frames(written)
    path = tmp_path / "headlocked.mp4"
    io.write_av(path, frames, 16.0, audio=late(np.concatenate([ambix, head_locked]), 0.4), sample_rate=RATE,
                audio_codec="flac")
    assert main(["calibrate", "read", str(path), "--burst", str(BURST)]) == 0
    out = capsys.readouterr().out
    assert "audio offset +0.400 s" in out and "read the first four as FOA" in out and "channel map: 0,1,2,3" in out
    assert main(["calibrate", "read", str(path), "--burst", str(BURST), "--channels", "0,1,2,3"]) == 0
    assert "read the first four" not in capsys.readouterr().out


def test_not_foa_is_refused_with_its_residual(written):
    from avsa.spatial.ambisonics import rotate
    from avsa.spatial.sphere import yaw

    ambix = io.read_audio(written, layout="raw")
    turned = rotate(ambix, yaw(math.radians(30.0))).numpy()  # every dipole channel mixes two components
    with pytest.raises(MediaError, match=r"leaves a relative fit residual of 0\.\d\d .*not first-order Ambisonics"):
        calibrate.estimate(turned, RATE, burst_s=BURST, path="turned.wav")
    skewed = ambix * np.array([[1.0], [1.0], [1.0], [0.6]], np.float32)  # X at 0.6: no normalisation does that
    with pytest.raises(MediaError, match=r"different gains relative to W .*0\.6\d\d \(raw 3\)"):
        calibrate.estimate(skewed, RATE, burst_s=BURST, path="skewed.wav")
