"""Encoders and full models: shapes for every input size and width, parameter
counts against formulas derived from the architecture (docs/system.md §3–5).

Full-model counts (width 1, D = 128, transformers depth 2 / ff 2048):
R(2+1)D-18 15,384,768; audio CNN 4,725,696 + 3,136·(C − 1); AVC (C = 4)
20,251,200; AVSA (C = 4) 32,992,064.
"""

import pytest
import torch

from avsa.errors import ConfigError, InputError
from avsa.models.audio import AUDIO_CHANNELS, AudioCNN
from avsa.models.build import build_model, parameter_count, parameter_table
from avsa.models.video import R2Plus1D18

# ---------------------------------------------------------------- formulas


def conv(cin, cout, *kernel, bias=False):
    n = cin * cout
    for k in kernel:
        n *= k
    return n + (cout if bias else 0)


def bn(c):
    return 2 * c  # weight + bias (running stats are buffers)


def linear(i, o):
    return i * o + o


def video_params(w=(64, 128, 256, 512)):
    total = conv(3, w[0], 3, 7, 7) + bn(w[0])  # stem
    cin = w[0]
    for stage, cout in enumerate(w):
        for block in range(2):
            c_in = cin if block == 0 else cout
            n = 0
            # two (2+1)D convs: spatial 1x3x3 + BN, temporal 3x1x1 + BN; middle width = cout
            n += conv(c_in, cout, 1, 3, 3) + bn(cout) + conv(cout, cout, 3, 1, 1) + bn(cout)
            n += conv(cout, cout, 1, 3, 3) + bn(cout) + conv(cout, cout, 3, 1, 1) + bn(cout)
            n += bn(cout)  # BN after the residual add
            if c_in != cout or (stage > 0 and block == 0):
                n += conv(c_in, cout, 1, 1, 1) + bn(cout)  # strided shortcut
            total += n
        cin = cout
    return total


def audio_params(c, w=(64, 128, 256, 512)):
    layers = [(c, w[0], 7), (w[0], w[0], 3), (w[0], w[0], 3), (w[0], w[1], 3), (w[1], w[1], 3),
              (w[1], w[2], 3), (w[2], w[2], 3), (w[2], w[3], 3), (w[3], w[3], 3)]
    return sum(conv(i, o, k, k) + bn(o) for i, o, k in layers)


def transformer_params(d, ff, depth):
    attention = linear(d, 3 * d) + linear(d, d)
    feedforward = linear(d, ff) + linear(ff, d)
    norms = 2 * 2 * d
    return depth * (attention + feedforward + norms)


# ------------------------------------------------------------ counts


def test_full_encoder_counts_match_formulas():
    assert parameter_count(R2Plus1D18()) == video_params() == 15_384_768
    for c in AUDIO_CHANNELS:
        assert parameter_count(AudioCNN(c)) == audio_params(c) == 4_725_696 + 3_136 * (c - 1)


@pytest.mark.parametrize("channels", [4, 7])
def test_full_model_counts_match_formulas(channels):
    v, a = video_params(), audio_params(channels)
    avc = build_model("avc", audio_channels=channels)
    assert parameter_count(avc) == v + a + 2 * linear(512, 128)
    avsa = build_model("avsa", audio_channels=channels)
    table = parameter_table(avsa)
    assert table["a2v"] == table["v2a"] == transformer_params(512, 2048, 2) == 6_304_768
    assert table["total"] == v + a + 2 * transformer_params(512, 2048, 2) + 4 * linear(512, 128)
    if channels == 4:
        assert table["total"] == 32_992_064 and parameter_count(avc) == 20_251_200


def test_tiny_counts_match_formulas():
    w = (16, 32, 64, 128)
    assert parameter_count(R2Plus1D18(width=0.25)) == video_params(w)
    assert parameter_count(AudioCNN(5, width=0.25)) == audio_params(5, w)
    avsa = build_model("avsa", audio_channels=2, width=0.25, transformer_ff=256)
    assert parameter_count(avsa) == (video_params(w) + audio_params(2, w) + 2 * transformer_params(128, 256, 2)
                                     + 4 * linear(128, 128))


def test_direction_encoding_adds_only_its_projection():
    off = build_model("avsa", audio_channels=4, width=0.25, transformer_ff=64)
    on = build_model("avsa", audio_channels=4, width=0.25, transformer_ff=64, direction_encoding=True)
    assert parameter_count(on) - parameter_count(off) == linear(16, 128)  # the V2A transformer's only
    leaky = build_model("avsa", audio_channels=4, width=0.25, transformer_ff=64, direction_encoding=True,
                        a2v_directions=True)
    assert parameter_count(leaky) - parameter_count(off) == 2 * linear(16, 128)


# ------------------------------------------------------------ shapes


@pytest.mark.parametrize("width", [0.125, 0.25, 0.5])
@pytest.mark.parametrize("size", [(8, 32, 32), (1, 17, 9), (3, 8, 40)])
def test_video_shapes(width, size):
    enc = R2Plus1D18(width=width)
    out = enc(torch.randn(2, 3, *size))
    assert out.shape == (2, round(512 * width)) == (2, enc.dim)


def test_video_full_shape_and_stage_resolutions():
    enc = R2Plus1D18(width=0.125)
    x = enc.stem(torch.randn(1, 3, 8, 112, 112))
    assert x.shape[2:] == (8, 56, 56)
    sizes = []
    for stage in enc.stages:
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(8, 8, 56, 56), (16, 4, 28, 28), (32, 2, 14, 14), (64, 1, 7, 7)]


@pytest.mark.parametrize("channels", AUDIO_CHANNELS)
@pytest.mark.parametrize("width", [0.125, 0.25])
def test_audio_shapes(channels, width):
    enc = AudioCNN(channels, width=width)
    assert enc(torch.randn(2, channels, 100, 128)).shape == (2, round(512 * width))
    assert enc(torch.randn(1, channels, 20, 8)).shape == (1, enc.dim)


def test_outputs_are_global_max_pools():
    """The encoder output is the max of the last feature map over every position."""
    enc = AudioCNN(1, width=0.125).eval()
    x = torch.randn(2, 1, 40, 32)
    fmap = enc.blocks(enc.stem(x))
    assert torch.allclose(enc(x), fmap.flatten(2).max(dim=2).values)
    venc = R2Plus1D18(width=0.125).eval()
    v = torch.randn(1, 3, 4, 16, 16)
    assert torch.allclose(venc(v), venc.stages(venc.stem(v)).flatten(2).max(dim=2).values)
    mean = AudioCNN(1, width=0.125, pool="mean").eval()
    mean.load_state_dict(enc.state_dict())  # pooling has no weights
    assert torch.allclose(mean(x), fmap.flatten(2).mean(dim=2), atol=1e-6)


def test_wider_audio_encoder_is_mapped_to_the_transformer_width():
    """An audio encoder of another size feeds the AVSA transformers through a linear map; equal sizes add no
    weights, so the paper-shaped checkpoints keep their keys."""
    equal = build_model("avsa", audio_channels=7, width=0.125, transformer_ff=32, dim=16)
    assert not any(k.startswith("audio_proj") for k in equal.state_dict())
    wide = build_model("avsa", audio_channels=7, video_width=0.125, audio_width=0.25, transformer_ff=32, dim=16)
    assert wide.audio_proj.weight.shape == (wide.video_encoder.dim, wide.audio_encoder.dim) == (64, 128)
    emb = wide(torch.randn(2, 4, 3, 4, 16, 16), torch.randn(2, 4, 7, 20, 16), other_audio=torch.randn(2, 4, 7, 20, 16))
    for t in (emb.video_target, emb.audio_target, emb.video_pred, emb.audio_pred, emb.other_audio_target,
              emb.other_video_pred):
        assert t.shape == (2, 4, 16)
    # the heads take encoder features as the encoders give them (evaluation and localization call heads())
    a = wide.audio_encoder(torch.randn(8, 7, 20, 16)).unflatten(0, (2, 4))
    v = wide.video_encoder(torch.randn(8, 3, 4, 16, 16)).unflatten(0, (2, 4))
    assert wide.heads(v, a).audio_target.shape == (2, 4, 16)


@pytest.mark.parametrize("channels", [1, 7])
def test_model_shapes_and_normalisation(channels):
    avc = build_model("avc", audio_channels=channels, width=0.125)
    out = avc(torch.randn(3, 3, 4, 16, 16), torch.randn(3, channels, 20, 16))
    assert out.video.shape == out.audio.shape == (3, 128)
    assert torch.allclose(out.video.norm(dim=-1), torch.ones(3), atol=1e-5)
    avsa = build_model("avsa", audio_channels=channels, width=0.125, transformer_ff=32, dim=16)
    emb = avsa(torch.randn(2, 4, 3, 4, 16, 16), torch.randn(2, 4, channels, 20, 16))
    for t in (emb.video_target, emb.audio_target, emb.video_pred, emb.audio_pred):
        assert t.shape == (2, 4, 16)
        assert torch.allclose(t.norm(dim=-1), torch.ones(2, 4), atol=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="in_channels"):
        AudioCNN(3)
    with pytest.raises(InputError, match=r"\(N, 4, T, F\)"):
        AudioCNN(4, width=0.125)(torch.randn(1, 2, 20, 16))
    with pytest.raises(InputError, match="video"):
        R2Plus1D18(width=0.125)(torch.randn(1, 1, 4, 16, 16))
    with pytest.raises(ConfigError, match="stage"):
        build_model("moco", audio_channels=4)
    with pytest.raises(InputError, match="pooling"):
        AudioCNN(4, pool="avg")
    with pytest.raises(ConfigError, match="divisible"):
        build_model("avsa", audio_channels=4, width=0.125, transformer_heads=7)
    avsa = build_model("avsa", audio_channels=4, width=0.125, transformer_ff=32, direction_encoding=True)
    with pytest.raises(InputError, match="directions"):
        avsa(torch.randn(1, 4, 3, 2, 8, 8), torch.randn(1, 4, 4, 16, 16))
