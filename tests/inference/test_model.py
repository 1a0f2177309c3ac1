"""The public API: avsa.load, a saved model folder (no unpickling), avsa export."""

import json
import pickle

import numpy as np
import pytest
import torch

import avsa
from avsa.cli import main
from avsa.errors import AvsaError, InputError
from avsa.evaluate.results import Result, save_result
from avsa.inference.hub import CARD_NAME, CONFIG_NAME, MEAN_KEY, WEIGHTS_NAME


def forbid_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a saved model folder must load without unpickling")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_import_avsa_is_cheap_and_load_is_lazy():
    import subprocess
    import sys

    code = "import sys, avsa; print('torch' in sys.modules, 'avsa.inference' in sys.modules, callable(avsa.load))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"]


def test_saved_folder_loads_without_unpickling_with_identical_weights_and_embeddings(tiny_run, tmp_path,
                                                                                    monkeypatch):
    model = avsa.load(tiny_run, device="cpu")
    save_result(tiny_run, Result(task="avsa-binary", value=0.75, low=0.6, high=0.85, n=40, chance=0.5))
    folder = model.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME, CARD_NAME])
    foa = np.random.default_rng(0).standard_normal((4, 36000)) * 0.1
    frames = np.random.default_rng(1).integers(0, 255, (20, 32, 64, 3), dtype=np.uint8)
    emb, times = model.embed_audio(foa, 48000, hop=0.25)
    vemb, vtimes = model.embed_video(frames, 16.0, hop=0.25)

    forbid_unpickling(monkeypatch)
    again = avsa.load(folder, device="cpu")
    for key, value in model.pretrained.model.state_dict().items():
        reloaded = again.pretrained.model.state_dict()[key]
        assert reloaded.dtype == value.dtype and torch.equal(reloaded, value), key
    assert torch.equal(again.pretrained.mean, model.pretrained.mean)
    assert torch.equal(again.pretrained.std, model.pretrained.std)
    assert again.config == model.config and again.stage == model.stage
    emb2, times2 = again.embed_audio(torch.as_tensor(foa), 48000, hop=0.25)
    assert np.array_equal(emb, emb2) and np.array_equal(times, times2)
    assert np.array_equal(vemb, again.embed_video(frames, 16.0, hop=0.25)[0])
    assert emb.shape == (len(times), model.dim) and vemb.shape == (len(vtimes), model.dim)

    meta = json.loads((folder / CONFIG_NAME).read_text())
    assert meta["front_end"]["audio_convention"].startswith("ambiX") and meta["stage"] == "avsa"
    assert meta["training"]["n_clips"] == 8 and meta["results"][0]["task"] == "avsa-binary"
    from safetensors import safe_open

    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as f:
        assert MEAN_KEY in f.keys()
    card = (folder / CARD_NAME).read_text()
    assert card.startswith("---\nlibrary_name: avsa\nlicense: mit\n")
    assert "Self-Supervised Learning of Audio Representations From Audio-Visual Data Using Spatial Alignment" in card
    assert "| avsa-binary | accuracy | 75.0 % [60.0, 85.0] | 50.0 % | 40 |" in card
    assert str(model.config.data.cache) in card

    # re-saving a saved model keeps what its card said
    resaved = again.save_pretrained(tmp_path / "copy")
    assert json.loads((resaved / CONFIG_NAME).read_text())["results"] == meta["results"]


def test_save_refuses_a_non_empty_folder_and_the_export_command(tiny_run, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(tiny_run), "--out", str(out)]) == 0
    assert (out / WEIGHTS_NAME).is_file()
    assert main(["export", str(tiny_run), "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(tiny_run / "checkpoints" / "avsa.pt"), "--out", str(out), "--overwrite"]) == 0
    with pytest.raises(InputError, match="not empty"):
        avsa.load(out).save_pretrained(tmp_path / "exported")


def test_a_damaged_folder_is_a_clear_error(tiny_run, tmp_path):
    folder = avsa.load(tiny_run, device="cpu").save_pretrained(tmp_path / "m")
    (folder / WEIGHTS_NAME).write_bytes(b"garbage")
    with pytest.raises(AvsaError, match="safetensors"):
        avsa.load(folder)
    (folder / CONFIG_NAME).write_text('{"format": "something-else"}')
    with pytest.raises(AvsaError, match="not an avsa model config"):
        avsa.load(folder)


def test_embed_audio_asks_for_the_transpose_of_soundfile_arrays(tiny_run):
    model = avsa.load(tiny_run, device="cpu")
    with pytest.raises(InputError, match=r"foa\.T"):
        model.embed_audio(np.zeros((48000, 4)), 48000)


def test_localize_gives_a_finite_map_over_the_grid_and_its_peak(tiny_run):
    model = avsa.load(tiny_run, device="cpu")
    frames = np.random.default_rng(2).integers(0, 255, (12, 32, 64, 3), dtype=np.uint8)
    heat = model.localize(frames, np.random.default_rng(3).standard_normal((4, 60000)) * 0.1, 48000, grid=(8, 3))
    assert heat.scores.shape == heat.azimuth.shape == heat.elevation.shape == (3, 8)
    assert np.isfinite(heat.scores).all()
    best = int(heat.scores.argmax())
    assert heat.peak() == (heat.azimuth.flat[best], heat.elevation.flat[best])
    with pytest.raises(InputError, match="uint8"):
        model.localize(frames.astype(np.float32), np.zeros((4, 48000)), 48000)


def test_a_wider_mean_pooled_audio_encoder_saves_and_loads(synthetic_cache, tiny_trainer, tmp_path, monkeypatch):
    """The audio encoder's options travel in the saved folder: its map to the transformers' width is saved and
    loaded with the weights, and the pooling is the one trained."""
    run = tiny_trainer(synthetic_cache, tmp_path / "run", extra=["model.audio_width=0.25", "model.audio_pool=mean"])
    model = avsa.load(run, device="cpu")
    folder = model.save_pretrained(tmp_path / "model")
    forbid_unpickling(monkeypatch)
    again = avsa.load(folder, device="cpu")
    assert again.pretrained.model.audio_encoder.pool == "mean" and again.config.model.audio_width == 0.25
    state = again.pretrained.model.state_dict()
    assert "audio_proj.weight" in state
    for key, value in model.pretrained.model.state_dict().items():
        assert torch.equal(state[key], value), key
    foa = np.random.default_rng(0).standard_normal((4, 24000)) * 0.1
    assert np.array_equal(model.embed_audio(foa, 24000)[0], again.embed_audio(foa, 24000)[0])
