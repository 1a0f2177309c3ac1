"""User-named outputs: an existing file is kept unless ``--overwrite``; a failed write never deletes it."""

import numpy as np
import pytest

from avsa.cli import main
from avsa.errors import InputError, MediaError
from avsa.media import io
from avsa.media.outputs import NAME_MAX_BYTES, check_output, safe_output, temporary_name

PRECIOUS = b"the user's own file, not ours to delete\n" * 100
CALIBRATE = ["--burst", "0.1", "--width", "32", "--sample-rate", "24000"]


def precious(path):
    path.write_bytes(PRECIOUS)
    return path


def test_calibrate_write_refuses_an_existing_video(tmp_path, capsys):
    victim = precious(tmp_path / "victim.mp4")
    assert main(["calibrate", "write", str(victim), *CALIBRATE]) == 1
    assert victim.read_bytes() == PRECIOUS
    err = capsys.readouterr().err
    assert str(victim) in err and "--overwrite" in err
    assert [p.name for p in tmp_path.iterdir()] == ["victim.mp4"]


def test_calibrate_write_that_fails_keeps_the_existing_file(tmp_path, capsys):
    victim = precious(tmp_path / "victim.wav")  # a .wav cannot hold the video: the write fails
    assert main(["calibrate", "write", str(victim), *CALIBRATE, "--overwrite"]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert victim.read_bytes() == PRECIOUS
    assert [p.name for p in tmp_path.iterdir()] == ["victim.wav"]  # no temporary left behind


def test_calibrate_write_overwrite_replaces(tmp_path):
    victim = precious(tmp_path / "victim.mp4")
    assert main(["calibrate", "write", str(victim), *CALIBRATE, "--overwrite"]) == 0
    assert io.probe(victim).audio_channels == 4
    assert [p.name for p in tmp_path.iterdir()] == ["victim.mp4"]


def test_calibrate_write_into_a_folder_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    assert main(["calibrate", "write", str(folder), *CALIBRATE]) == 1
    err = capsys.readouterr().err
    assert str(folder) in err and "is a folder" in err and "Traceback" not in err


def test_write_av_failure_keeps_the_existing_file(tmp_path):
    victim = precious(tmp_path / "victim.mp4")
    frames = np.zeros((2, 16, 32, 3), np.uint8)
    with pytest.raises(MediaError, match="cannot write"):
        io.write_av(victim, frames, 8.0, video_codec="mpeg1video", audio=np.zeros((4, 800), np.float32),
                    sample_rate=8000, audio_codec="pcm_s16le")  # PCM does not fit an MP4
    assert victim.read_bytes() == PRECIOUS
    with pytest.raises(InputError, match="already exists"):
        io.write_av(victim, frames, 8.0, overwrite=False)
    assert victim.read_bytes() == PRECIOUS
    io.write_av(victim, frames, 8.0)
    assert io.probe(victim).n_frames == 2


def test_write_audio_failure_keeps_the_existing_file(tmp_path):
    victim = precious(tmp_path / "victim.m4a")
    with pytest.raises((MediaError, InputError)):
        io.write_audio(victim, np.zeros((4, 800), np.float32), 8000, codec="pcm_s16le")
    assert victim.read_bytes() == PRECIOUS
    assert [p.name for p in tmp_path.iterdir()] == ["victim.m4a"]


def test_check_refuses_existing_csv_and_list(tmp_path, capsys):
    media = tmp_path / "media"
    media.mkdir()
    table = precious(tmp_path / "table.csv")
    assert main(["check", str(media), "--csv", str(table)]) == 1
    assert table.read_bytes() == PRECIOUS and "--overwrite" in capsys.readouterr().err
    listing = precious(tmp_path / "list.txt")
    assert main(["check", str(media), "--subset", "all", "--out", str(listing)]) == 1
    assert listing.read_bytes() == PRECIOUS


def test_synth_refuses_a_non_empty_folder_and_a_file(tmp_path, capsys):
    kept = precious(tmp_path / "holiday.mp4")
    assert main(["synth", "--out", str(tmp_path), "--videos", "1", "--duration", "1", "--width", "64"]) == 1
    assert kept.read_bytes() == PRECIOUS and sorted(p.name for p in tmp_path.iterdir()) == ["holiday.mp4"]
    assert "--overwrite" in capsys.readouterr().err
    assert main(["synth", "--out", str(kept), "--videos", "1", "--duration", "1", "--width", "64"]) == 1
    assert "is a file" in capsys.readouterr().err and kept.read_bytes() == PRECIOUS


def test_report_refuses_a_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    kept = precious(out / "report.md")
    assert main(["report", str(tmp_path / "run"), "--out", str(out)]) == 1
    assert kept.read_bytes() == PRECIOUS and "--overwrite" in capsys.readouterr().err


def test_safe_output_cleans_only_its_temporary(tmp_path):
    victim = precious(tmp_path / "a.bin")
    with pytest.raises(RuntimeError):
        with safe_output(victim, overwrite=True) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("the writer failed")
    assert victim.read_bytes() == PRECIOUS and [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    with safe_output(victim, overwrite=True) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".bin"
        temporary.write_bytes(b"new")
    assert victim.read_bytes() == b"new"
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path)


def test_temporary_names_of_long_names_stay_short(tmp_path):
    for stem in ("x" * 250, "猫" * 80):
        name = temporary_name(tmp_path / f"{stem}.mp4").name
        assert len(name.encode()) < NAME_MAX_BYTES - len(".spherical.tmp") and name.endswith(".mp4")
