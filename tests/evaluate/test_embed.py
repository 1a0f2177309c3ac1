import numpy as np

from avsa.cli import main
from avsa.evaluate.pretrained import load_pretrained
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
    assert main(["embed", str(tiny_run), str(video), "--out", str(out), "--modality", "video",
                 "--projection", "equirect"]) == 0
    assert np.load(out / f"{video.stem}.npz")["video"].shape[1] == p.dim
