"""One builder for both stages' models, from explicit keyword arguments.

``python -m avsa.models.build`` prints the parameter counts of the full
models (width 1) for every audio input size, and of the tiny CPU versions.
"""

from __future__ import annotations

import argparse

from torch import nn

from avsa.audio_inputs import AUDIO_CHANNELS
from avsa.errors import ConfigError
from avsa.models.heads import AVCModel, AVSAModel

STAGES = ("avc", "avsa")


def build_model(stage: str, *, audio_channels: int, width: float = 1.0, video_width: float | None = None,
                audio_width: float | None = None, dim: int = 128, transformer_depth: int = 2,
                transformer_heads: int = 8, transformer_ff: int = 2048, dropout: float = 0.1,
                direction_encoding: bool = False, a2v_directions: bool = False,
                relative_directions: bool = False, audio_pool: str = "max") -> AVCModel | AVSAModel:
    """The model of one curriculum stage.

    Parameters
    ----------
    stage : {"avc", "avsa"}
    audio_channels : int, keyword-only
        Audio feature channels: 1 (mono), 2 (stereo), 4 (ambi), 5 (stereo+ICF), 7 (ambi+IV).
    width : float, keyword-only
        Width multiplier of both encoders (1.0 = paper; 0.25 = tiny CPU).
    video_width, audio_width : float, optional, keyword-only
        Per-encoder overrides of ``width``.
    dim : int, keyword-only
        Output size D of every linear head (128).
    transformer_depth, transformer_heads, transformer_ff : int, keyword-only
        AVSA translation transformers: layers (2), attention heads (8),
        feed-forward width (2048 at full scale). Width = encoder output size.
    dropout : float, keyword-only
        Transformer dropout (0.1).
    direction_encoding : bool, keyword-only
        AVSA: add crop-direction encodings to the transformer tokens.
    a2v_directions : bool, keyword-only
        With ``direction_encoding``: to the audio→video transformer's too, which hands each audio token its
        rotation (the label); default False: only the video→audio one.
    relative_directions : bool, keyword-only
        With ``direction_encoding``: the video→audio transformer's attention knows where each video crop lies
        seen from each other.
    audio_pool : {"max", "mean"}, keyword-only
        The audio encoder's global pooling (the paper's max).

    Returns
    -------
    AVCModel or AVSAModel
    """
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {STAGES}, got {stage!r}")
    vw = width if video_width is None else video_width
    aw = width if audio_width is None else audio_width
    if stage == "avc":
        return AVCModel(audio_channels=audio_channels, video_width=vw, audio_width=aw, dim=dim, audio_pool=audio_pool)
    return AVSAModel(audio_channels=audio_channels, video_width=vw, audio_width=aw, dim=dim,
                     transformer_depth=transformer_depth, transformer_heads=transformer_heads,
                     transformer_ff=transformer_ff, dropout=dropout, direction_encoding=direction_encoding,
                     a2v_directions=a2v_directions, relative_directions=relative_directions, audio_pool=audio_pool)


def parameter_count(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (elements) of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_table(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level child (encoders, heads, transformers) plus ``total``."""
    table = {name: parameter_count(child) for name, child in model.named_children()}
    table["total"] = parameter_count(model)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--transformer-ff", type=int, default=2048)
    args = parser.parse_args(argv)
    print(f"width {args.width}, transformer feed-forward {args.transformer_ff}")
    for stage in STAGES:
        for channels in AUDIO_CHANNELS:
            model = build_model(stage, audio_channels=channels, width=args.width, transformer_ff=args.transformer_ff)
            parts = ", ".join(f"{k} {v:,}" for k, v in parameter_table(model).items())
            print(f"{stage:5s} C={channels}: {parts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
