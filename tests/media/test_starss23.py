"""STARSS23 layout: sources pair video and audio, labels become the cache's ground truth."""

import math

import pytest

from avsa.cli import main
from avsa.errors import MediaError
from avsa.media import starss23
from avsa.media.cache import Cache
from avsa.media.sources import find_sources

from standins import make_starss23


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return make_starss23(tmp_path_factory.mktemp("starss23") / "STARSS23", seconds=2.0)


def test_sources_pair_video_and_audio_and_splits(standin):
    sources = find_sources(standin)
    assert [(s.name, s.split) for s in sources] == [("fold3_room1_mix001", "train"), ("fold4_room1_mix002", "test")]
    for s in sources:
        assert s.audio.parent.parent.name == "foa_dev" and s.audio.suffix == ".wav"
        assert s.groundtruth.suffix == ".csv" and s.audio.stem == s.video.stem == s.groundtruth.stem


def test_labels_become_groundtruth(standin):
    path = standin / "metadata_dev" / "dev-train-sony" / "fold3_room1_mix001.csv"
    gt = starss23.load_groundtruth(path, duration_s=2.5)
    assert gt.fps == 10 and len(gt.frame_times_s) == 25
    speech = gt.at(0.05)  # frame 0: only the speech event (class 0) at 60°, 10°
    assert [(o.label, o.id) for o in speech] == [(starss23.CLASSES[0], 0)]
    assert math.degrees(speech[0].azimuth) == pytest.approx(60.0)
    assert math.degrees(speech[0].elevation) == pytest.approx(10.0)
    both = gt.at(1.0)  # frame 10: both (speech until frame 11, music from frame 8)
    assert sorted(o.id for o in both) == [0, 8000]
    assert [o.id for o in gt.at(1.95)] == [8000]
    assert gt.at(2.3) == []  # after the last labelled frame nothing is present


def test_bad_label_rows_name_the_file_and_line(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("0,1,0,10,5,100\n1,13,0,10,5,100\n")
    with pytest.raises(MediaError, match="x.csv: line 2: class 13"):
        starss23.read_labels(bad)
    bad.write_text("frame,class,source,azimuth,elevation,distance\n0,1,0,ten,5,100\n")
    with pytest.raises(MediaError, match="line 2"):
        starss23.read_labels(bad)
    bad.write_text("frame,class,source,azimuth,elevation\n3,1,0,10,5\n")  # header and 5 columns are tolerated
    assert starss23.read_labels(bad)[0].frame == 3


def test_prepare_and_oracle_detection(standin, tmp_path):
    cache = tmp_path / "cache"
    assert main(["prepare", str(standin), "--out", str(cache), "--width", "64", "--clip-seconds", "1"]) == 0
    c = Cache(cache)
    clips = {clip.clip_id: clip for clip in c.clips()}
    assert sorted(clips) == ["fold3_room1_mix001_c000", "fold3_room1_mix001_c001",
                             "fold4_room1_mix002_c000", "fold4_room1_mix002_c001"]
    assert {clip.split for clip in clips.values() if clip.clip_id.startswith("fold4")} == {"test"}
    assert all(abs(clip.validity - 1) < 0.1 for clip in clips.values())  # the wav is ambiX/SN3D
    second = c.groundtruth(clips["fold4_room1_mix002_c001"])  # clip 1: 1.0–2.0 s of the recording
    assert second.scene == "starss23" and len(second.frame_times_s) == 10
    # test recording: the music event is moved 90° (-120° → -30°) and sounds from frame 8 on
    music = [o for o in second.at(0.5) if o.label == "music"]
    assert len(music) == 1 and math.degrees(music[0].azimuth) == pytest.approx(-30.0)
    assert main(["detect", str(cache), "--detector", "oracle-sounding"]) == 0
    from avsa.data.detection.base import load_detections

    found = load_detections(cache / "detections" / "oracle-sounding" / "fold3_room1_mix001_c000.json").detections
    early = [d for d in found if d.time_s < 0.8]  # music sounds from frame 8 on
    assert early and {d.label for d in early} == {starss23.CLASSES[0]}
    assert all(math.degrees(d.azimuth) == pytest.approx(60.0) for d in early)


def test_standin_trains(tmp_path, tiny_trainer):
    """prepare → stats → detect (oracle-sounding: the labelled events) → train, on the STARSS23 layout."""
    root = make_starss23(tmp_path / "STARSS23", per_split=2, seconds=2.0, width=64)
    cache = tmp_path / "cache"
    assert main(["prepare", str(root), "--out", str(cache), "--width", "64", "--clip-seconds", "1"]) == 0
    assert len([c for c in Cache(cache).clips() if c.split == "train"]) == 4
    for features in ("mel", "iv"):
        assert main(["stats", str(cache), "--format", "ambi", "--features", features, "--windows", "8",
                     "--split", "train"]) == 0
    assert main(["detect", str(cache), "--detector", "oracle-sounding"]) == 0
    run = tiny_trainer(cache, tmp_path / "out", extra=("data.detector=oracle-sounding",))
    assert (run / "checkpoints" / "avsa.pt").is_file()
