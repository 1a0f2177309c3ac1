import numpy as np

from avsa.cli import main
from avsa.inference.pretrained import load_pretrained
from avsa.media.cache import Cache


def test_embed_cli_writes_one_npz_per_file_and_skips_bad_files(tiny_run, synthetic_cache, tmp_path, capsys):
    clip = Cache(synthetic_cache).clips("test")[0]
    audio = synthetic_cache / clip.audio
    video = synthetic_cache / clip.video
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"not audio at all")
    out = tmp_path / "emb"
    assert main(["embed", str(tiny_run), str(audio), str(bad), "--out", str(out), "--layout", "foa", "--hop", "0.5"]) == 0
    data = np.load(out / f"{audio.stem}.npz")
    p = load_pretrained(tiny_run)
    assert data["audio"].shape[1] == p.dim and len(data["audio_timestamps"]) == data["audio"].shape[0]
    assert "broken.flac" in capsys.readouterr().out
    assert main(["embed", str(tiny_run), str(video), "--out", str(tmp_path / "v"), "--modality", "video"]) == 0
    assert np.load(tmp_path / "v" / f"{video.stem}.npz")["video"].shape[1] == p.dim


def test_embed_refuses_to_overwrite_before_any_work(tiny_run, synthetic_cache, tmp_path, capsys):
    clip = Cache(synthetic_cache).clips("test")[0]
    audio = synthetic_cache / clip.audio
    out = tmp_path / "emb"
    out.mkdir()
    (out / f"{audio.stem}.npz").write_bytes(b"keep me")
    assert main(["embed", str(tiny_run), str(audio), "--out", str(out), "--hop", "0.5"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / f"{audio.stem}.npz").read_bytes() == b"keep me"
    assert main(["embed", str(tiny_run), str(audio), "--out", str(out), "--hop", "0.5", "--overwrite"]) == 0
    assert np.load(out / f"{audio.stem}.npz")["audio"].ndim == 2
    assert sorted(p.name for p in out.iterdir()) == [f"{audio.stem}.npz"]  # no temporaries left


def test_embed_never_writes_two_inputs_to_one_file(tiny_run, synthetic_cache, tmp_path, capsys):
    import shutil

    clips = Cache(synthetic_cache).clips("test")[:2]
    inputs = []
    for folder, clip in zip(("e1", "e2"), clips):
        (tmp_path / folder).mkdir()
        inputs.append(tmp_path / folder / "x.flac")
        shutil.copy(synthetic_cache / clip.audio, inputs[-1])
    out = tmp_path / "emb"
    assert main(["embed", str(tiny_run), *map(str, inputs), "--out", str(out), "--layout", "foa", "--hop", "0.5"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["e1__x.npz", "e2__x.npz"]
    assert not np.array_equal(np.load(out / "e1__x.npz")["audio"], np.load(out / "e2__x.npz")["audio"])
    assert main(["embed", str(tiny_run), str(inputs[0]), str(inputs[0]), "--out", str(tmp_path / "o2")]) == 1
    assert "given more than once" in capsys.readouterr().err


def test_output_names_are_distinct_and_keep_unique_stems(tmp_path):
    from avsa.inference.embed import output_names

    files = [tmp_path / "a" / "x.mp4", tmp_path / "a" / "x.wav", tmp_path / "b" / "x.mp4", tmp_path / "y.mp4"]
    assert output_names(files) == ["a__x.mp4.npz", "a__x.wav.npz", "b__x.npz", "y.npz"]
