import numpy as np
import pytest
import torch

from avsa.errors import AvsaError, InputError
from avsa.inference.pretrained import load_pretrained
from avsa.train.checkpoint import load_checkpoint
from avsa.train.config import stage_model


def test_loaded_model_reproduces_the_trained_weights_and_embeddings(tiny_run):
    p = load_pretrained(tiny_run)
    assert p.stage == "avsa" and p.checkpoint.endswith("avsa.pt") and p.mean.shape == (4, 128)
    payload = load_checkpoint(tiny_run / "checkpoints" / "avsa.pt")
    for key, value in payload["model"].items():
        assert torch.equal(p.model.state_dict()[key].cpu(), value), key
    reference = stage_model(p.config, "avsa")
    reference.load_state_dict(payload["model"])
    reference.eval()
    audio = torch.randn(3, 7, 100, 128)
    _, a = p.encode(None, audio)
    torch.testing.assert_close(a, reference.audio_encoder(audio))


def test_audio_embedding_shapes_timestamps_and_determinism(tiny_run):
    p = load_pretrained(tiny_run)
    foa = np.random.default_rng(0).standard_normal((4, 48000 * 2)).astype(np.float32) * 0.1
    emb, t = p.audio_embedding(foa, 48000, hop_s=0.25)
    assert emb.shape == (5, p.dim) and np.allclose(t, 0.5 + 0.25 * np.arange(5))
    again, _ = p.audio_embedding(foa, 48000, hop_s=0.25)
    assert np.array_equal(emb, again)
    with pytest.raises(InputError, match="stereo-trained model"):
        p.audio_embedding(foa[:2], 48000)
    with pytest.raises(InputError, match="needs 4 channels"):
        p.audio_embedding(foa[:3], 48000, layout="foa")


def test_rotated_foa_input_equals_rotating_first(tiny_run):
    # foa_input featurises every direction from one analysis of each signal; rotating, formatting and
    # featurising each direction's FOA instead must agree up to float32 rounding: measured at most
    # 1.6e-4 (normalised units) on noise, asserted with 12x margin.
    from avsa.data.samples import audio_format
    from avsa.spatial import ambisonics

    p = load_pretrained(tiny_run)
    g = torch.Generator().manual_seed(0)
    az, el = torch.rand(5, 4, generator=g) * 6 - 3, torch.rand(5, 4, generator=g) - 0.5
    for foa in (0.1 * torch.randn(1, 1, 4, 24000, generator=g), 0.1 * torch.randn(5, 1, 4, 24000, generator=g)):
        ours = p.foa_input(foa, az, el)
        direct = p.audio_input(audio_format(ambisonics.rotate_to_front(foa, az, el), p.fmt))
        assert ours.shape == direct.shape == (5, 4, 7, 100, 128)
        torch.testing.assert_close(ours, direct, atol=2e-3, rtol=0)
    assert p.foa_input(foa[:, 0]).shape == (5, 7, 100, 128)  # no rotation: as recorded


def test_video_embedding_views(tiny_run):
    p = load_pretrained(tiny_run)
    frames = np.random.default_rng(1).integers(0, 255, (30, 48, 64, 3), dtype=np.uint8)
    emb, t = p.video_embedding(frames, 30.0, hop_s=0.25)
    assert emb.shape[1] == p.dim and len(t) == emb.shape[0] == 3
    assert np.allclose(t, (np.arange(3) * 4 + 4) / 16)
    emb2, _ = p.video_embedding(frames, 30.0, hop_s=0.25, view="crop", azimuth=1.0)
    again, _ = p.video_embedding(frames, 30.0, hop_s=0.25, view="crop", azimuth=1.0)
    assert emb2.shape == emb.shape and np.isfinite(emb2).all() and np.array_equal(emb2, again)
    emb3, _ = p.video_embedding(frames, 30.0, hop_s=0.25, view="perspective")
    assert emb3.shape == emb.shape
    with pytest.raises(InputError, match="uint8"):
        p.video_embedding(frames.astype(np.float32), 30.0)


def test_run_folder_without_checkpoints_is_a_clear_error(tmp_path):
    with pytest.raises(AvsaError, match="without checkpoints"):
        load_pretrained(tmp_path)
