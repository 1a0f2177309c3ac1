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


def test_pair_geometry_is_where_the_rotated_sound_field_puts_each_crop():
    """Crop i's centre seen from crop j is where a plane wave from crop i's centre lies once the sound field is
    turned so that crop j is the front (the audio's own rotation), and the world's up vector likewise."""
    from avsa.models.heads import crop_pair_geometry
    from avsa.spatial.ambisonics import encode, rotate_to_front
    from avsa.spatial.sphere import direction_vector

    g = torch.Generator().manual_seed(3)
    az = (torch.rand(4, generator=g) * 2 - 1) * torch.pi
    el = (torch.rand(4, generator=g) * 2 - 1) * 1.2
    geometry = crop_pair_geometry(torch.stack([az, el], -1)[None].double())[0]  # K x K x 6
    signal = torch.ones(8, dtype=torch.float64)
    for j in range(4):
        for i in range(4):
            wave = rotate_to_front(encode(signal, az[i], el[i]), az[j], el[j])  # (4, 8): ambiX W, Y, Z, X
            arrives = torch.stack([wave[3, 0], wave[1, 0], wave[2, 0]]) / wave[0, 0]  # SN3D: unit vector
            assert torch.allclose(geometry[j, i, :3].double(), arrives, atol=1e-5), (j, i)
        up = rotate_to_front(encode(signal, 0.0, torch.pi / 2), az[j], el[j])
        assert torch.allclose(geometry[j, 0, 3:].double(), torch.stack([up[3, 0], up[1, 0], up[2, 0]]), atol=1e-5)
        assert torch.allclose(geometry[j, j, :3], torch.tensor([1.0, 0, 0], dtype=geometry.dtype), atol=1e-6)
    assert torch.allclose(direction_vector(0.0, 0.0), torch.tensor([1.0, 0, 0]))


def test_relative_directions_only_in_video_to_audio_and_blind_to_turning_the_scene():
    """``relative_directions``: â follows where the crops look from each other, not where the scene's zero
    azimuth lies; v̂ never sees any direction; permuting the crops permutes the outputs."""
    model = tiny("avsa", direction_encoding=True, relative_directions=True).eval()
    assert model.v2a.encoder is None and model.a2v.encoder is not None and model.a2v.directions is None
    model.v2a.directions = None  # only the pair geometry left: it must not see the scene's azimuth origin
    video, audio = batch()
    d = torch.stack([torch.tensor([0.3, 2.0, -1.0, 3.0]), torch.tensor([0.2, -0.4, 0.5, 0.0])], -1).expand(2, 4, 2)
    turned = d + torch.tensor([1.234, 0.0])
    moved = d.clone()
    moved[:, 1, 0] += 0.8
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        o, o_turned, o_moved = (model(video, audio, directions=x) for x in (d, turned, moved))
        o_perm = model(video[:, perm], audio[:, perm], directions=d[:, perm])
    assert torch.allclose(o.audio_pred, o_turned.audio_pred, atol=1e-5)
    assert not torch.allclose(o.audio_pred, o_moved.audio_pred, atol=1e-4)
    assert torch.equal(o.video_pred, o_moved.video_pred)
    assert torch.allclose(o.audio_pred[:, perm], o_perm.audio_pred, atol=1e-5)
    with pytest.raises(InputError):
        model(video, audio)


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
