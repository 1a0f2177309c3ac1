"""AVSA translation transformers, curriculum weight loading, and learning on learnable data."""

import pytest
import torch

from avsa.errors import ConfigError, InputError
from avsa.models.build import build_model
from avsa.models.losses import avc_loss, avsa_loss

TINY = dict(width=0.125, transformer_ff=32, dim=16)


def tiny(stage, channels=1, **kw):
    torch.manual_seed(0)
    return build_model(stage, audio_channels=channels, **{**TINY, **kw})


def batch(b=2, k=4, c=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, 3, 2, 16, 16, generator=g), torch.randn(b, k, c, 16, 16, generator=g)


def test_translation_is_crop_equivariant_without_direction_encoding():
    """Permuting the crops of a clip permutes every output the same way (attention over a set)."""
    model = tiny("avsa").eval()
    video, audio = batch()
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        out = model(video, audio)
        out_p = model(video[:, perm], audio[:, perm])
    for name in ("video_target", "audio_target", "video_pred", "audio_pred"):
        assert torch.allclose(getattr(out, name)[:, perm], getattr(out_p, name), atol=1e-5), name


def test_prediction_of_a_crop_depends_on_the_other_crops():
    """v̂_k comes from the audio of all K crops (attention), not from a_k alone."""
    model = tiny("avsa").eval()
    video, audio = batch()
    changed = audio.clone()
    changed[:, 3] = torch.randn_like(changed[:, 3])
    with torch.no_grad():
        a, b = model(video, audio), model(video, changed)
    assert not torch.allclose(a.video_pred[:, 0], b.video_pred[:, 0], atol=1e-4)
    assert torch.allclose(a.audio_target[:, 0], b.audio_target[:, 0])  # target head is per crop
    assert torch.allclose(a.audio_pred, b.audio_pred)  # V2A sees only video


def test_direction_encoding_uses_directions():
    """By default only the video crops' directions enter (V2A): the audio predictions move, v̂ does not."""
    video, audio = batch()
    d1 = torch.zeros(2, 4, 2)
    d2 = d1.clone()
    d2[:, 1, 0] = 1.5
    model = tiny("avsa", direction_encoding=True).eval()
    with torch.no_grad():
        o1, o2 = model(video, audio, directions=d1), model(video, audio, directions=d2)
    assert not torch.allclose(o1.audio_pred[:, 1], o2.audio_pred[:, 1], atol=1e-4)
    assert torch.allclose(o1.video_pred, o2.video_pred)  # the audio side is not told its rotation
    assert torch.allclose(o1.video_target, o2.video_target)
    # the leaking option, kept for measuring the leak, hands the audio tokens their directions
    leaky = tiny("avsa", direction_encoding=True, a2v_directions=True).eval()
    with torch.no_grad():
        o1, o2 = leaky(video, audio, directions=d1), leaky(video, audio, directions=d2)
    assert not torch.allclose(o1.video_pred[:, 1], o2.video_pred[:, 1], atol=1e-4)


def test_directions_only_in_video_to_audio_leave_the_video_predictions_to_the_audio():
    """a2v_directions=False: v̂ ignores the crop directions (only the sound predicts a crop's look); â uses them."""
    model = tiny("avsa", direction_encoding=True, a2v_directions=False).eval()
    assert model.a2v.directions is None and model.v2a.directions is not None
    video, audio = batch()
    d1 = torch.zeros(2, 4, 2)
    d2 = d1.clone()
    d2[:, 1] = torch.tensor([1.5, -0.7])
    with torch.no_grad():
        o1, o2 = model(video, audio, directions=d1), model(video, audio, directions=d2)
    assert torch.equal(o1.video_pred, o2.video_pred)
    assert not torch.allclose(o1.audio_pred[:, 1], o2.audio_pred[:, 1], atol=1e-4)
    with pytest.raises(InputError):
        model(video, audio)  # the video→audio transformer still needs the directions


def test_load_encoders_from_avc_copies_encoders_only():
    avc = tiny("avc", channels=4)
    torch.manual_seed(1)
    avsa = build_model("avsa", audio_channels=4, **TINY)
    heads_before = {k: v.clone() for k, v in avsa.state_dict().items() if "encoder." not in k}
    loaded = avsa.load_encoders_from(avc)
    assert set(loaded) == {k for k in avc.state_dict() if "encoder." in k}
    for k, v in avc.state_dict().items():
        if "encoder." in k:
            assert torch.equal(avsa.state_dict()[k], v), k
    for k, v in avsa.state_dict().items():
        if "encoder." not in k:
            assert torch.equal(v, heads_before[k]), k
    # a DDP-wrapped state dict ("module." prefix) loads too
    wrapped = {"module." + k: v for k, v in avc.state_dict().items()}
    assert len(avsa.load_encoders_from(wrapped)) == len(loaded)


def test_partial_or_mismatched_load_fails_loudly_and_loads_nothing():
    avc = tiny("avc", channels=4)
    avsa = tiny("avsa", channels=4)
    before = {k: v.clone() for k, v in avsa.state_dict().items()}
    state = dict(avc.state_dict())
    state.pop("audio_encoder.stem.1.weight")
    with pytest.raises(ConfigError, match="missing"):
        avsa.load_encoders_from(state)
    with pytest.raises(ConfigError, match="shapes differ"):
        avsa.load_encoders_from(tiny("avc", channels=7))
    with pytest.raises(ConfigError, match="missing"):
        avsa.load_encoders_from({"video_head.weight": torch.zeros(1)})
    for k, v in avsa.state_dict().items():
        assert torch.equal(v, before[k]), k


def learnable_batch(b=4, k=4, seed=0):
    """Audio of crop (b, k) = a fixed function of its video, so the pairs are learnable."""
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(b, k, 3, 2, 16, 16, generator=g)
    audio = video[:, :, :1, 0] + 0.1 * torch.randn(b, k, 1, 16, 16, generator=g)  # B x K x 1 x 16 x 16
    return video, audio


@pytest.mark.parametrize("stage", ["avc", "avsa"])
def test_a_few_steps_lower_the_loss(stage):
    model = tiny(stage, dropout=0.0) if stage == "avsa" else tiny(stage)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    video, audio = learnable_batch()

    def loss_fn():
        if stage == "avc":
            out = model(video.flatten(0, 1), audio.flatten(0, 1))
            return avc_loss(out.video, out.audio)
        return avsa_loss(model(video, audio))

    first = loss_fn()
    for _ in range(12):
        result = loss_fn()
        opt.zero_grad()
        result.loss.backward()
        opt.step()
    last = loss_fn()
    assert last.loss.item() < 0.7 * first.loss.item()
    key = "avc_acc" if stage == "avc" else "avsa_acc"
    assert last.metrics[key] > first.metrics[key]


def test_training_and_evaluation_share_the_avsa_heads():
    """forward = encoders + heads; the alignment and score surfaces read the same embeddings."""
    from avsa.models.heads import AVSAModel

    torch.manual_seed(0)
    m = AVSAModel(audio_channels=7, video_width=0.125, audio_width=0.125, transformer_ff=32,
                  direction_encoding=True).eval()
    video, audio = torch.randn(2, 4, 3, 4, 16, 16), torch.randn(2, 4, 7, 100, 128)
    directions = torch.rand(2, 4, 2)
    with torch.no_grad():
        out = m(video, audio, directions=directions)
        v = m.video_encoder(video.flatten(0, 1)).unflatten(0, (2, 4))
        a = m.audio_encoder(audio.flatten(0, 1)).unflatten(0, (2, 4))
        e = m.heads(v, a, directions=directions)
        for name in ("video_target", "audio_target", "video_pred", "audio_pred"):
            torch.testing.assert_close(getattr(out, name), getattr(e, name))
        spatial = m.spatial_scores(e)
        torch.testing.assert_close(spatial.diagonal(dim1=1, dim2=2), m.alignment(e))
        clip = m.clip_scores(e)  # (B, K, B): the own clip's entry is the alignment of that crop
        torch.testing.assert_close(clip[torch.arange(2), :, torch.arange(2)], m.alignment(e))
        with pytest.raises(InputError):
            m.heads(v, a)  # direction encoding needs the directions
