"""A trained model as a folder in the Hugging Face Hub layout, read without unpickling anything.

::

    FOLDER/config.json          what the model is (:data:`CONFIG_NAME`, below)
    FOLDER/model.safetensors    the weights and the log-mel normalisation statistics (:data:`WEIGHTS_NAME`)
    FOLDER/README.md            the model card (:mod:`avsa.inference.card`)

``config.json``::

    {"format": "avsa-model-1", "library_name": "avsa", "avsa_version": "...",
     "stage": "avsa", "commit": "...", "step": 600,
     "config": {...the resolved TrainConfig...},
     "front_end": {"audio_convention": "ambiX (ACN order, SN3D)", "sample_rate": 24000, "window_s": 1.0,
                   "audio_format": "ambi", "audio_features": "iv", "normalized": true,
                   "fps": 16.0, "n_frames": 8, "crop_size": 112, "equirect_width": 512,
                   "embedding_dim": 512},
     "training": {"cache": "...", "split": "train", "n_clips": 80},
     "results": [{"task": ..., "metric": ..., "value": ..., "low": ..., "high": ..., "chance": ..., "n": ...}]}

``model.safetensors`` holds the model's state dict under its own keys, and
the statistics as :data:`MEAN_KEY` / :data:`STD_KEY` ``(C_mel, 128)`` when the
model was trained with normalised log-mel bands. Reading uses
:func:`safetensors.torch.load_file` and :func:`json.load` only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from avsa.errors import AvsaError, ConfigError
from avsa.media.outputs import check_output_folder, safe_output
from avsa.models.build import STAGES
from avsa.train.config import TrainConfig, from_dict, stage_model, to_dict

FORMAT = "avsa-model-1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
MEAN_KEY = "audio_stats.mean"
STD_KEY = "audio_stats.std"
AUDIO_CONVENTION = "ambiX (ACN order, SN3D)"


def is_saved_model(path: str | os.PathLike) -> bool:
    """True for a folder holding ``config.json`` and ``model.safetensors``."""
    p = Path(path)
    return p.is_dir() and (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()


def write_model_folder(folder: str | os.PathLike, *, meta: dict, state: dict[str, torch.Tensor],
                       mean: torch.Tensor | None, std: torch.Tensor | None, card: str,
                       overwrite: bool = False) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``README.md`` into ``folder``.

    Parameters
    ----------
    folder : path
        Created if missing; an existing non-empty folder needs ``overwrite``.
    meta : dict
        The content of ``config.json`` (JSON-serialisable); ``format`` is added.
    state : dict of str to torch.Tensor
        The model's state dict.
    mean, std : torch.Tensor (C_mel, 128) or None
        Log-mel normalisation statistics.
    card : str
        The model card (Markdown).
    overwrite : bool
        Write into a non-empty folder, replacing these three files.

    Returns
    -------
    Path of the folder.

    Raises
    ------
    InputError
        ``folder`` is a file, or not empty and ``overwrite`` is false.
    """
    from safetensors.torch import save_file

    out = check_output_folder(folder, overwrite=overwrite)
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}
    if mean is not None:
        tensors[MEAN_KEY] = mean.detach().cpu().float().contiguous()
        tensors[STD_KEY] = std.detach().cpu().float().contiguous()
    with safe_output(out / WEIGHTS_NAME, overwrite=True) as temporary:
        save_file(tensors, str(temporary), metadata={"format": "pt"})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # readable like the other files (the writer makes it owner-only)
    with safe_output(out / CONFIG_NAME, overwrite=True) as temporary:
        temporary.write_text(json.dumps({"format": FORMAT, **meta}, indent=1) + "\n")
    with safe_output(out / CARD_NAME, overwrite=True) as temporary:
        temporary.write_text(card)
    return out


def read_model_folder(folder: str | os.PathLike) -> tuple[dict, TrainConfig, str, torch.nn.Module,
                                                           torch.Tensor | None, torch.Tensor | None]:
    """Read a folder written by :func:`write_model_folder` (JSON and safetensors only).

    Returns
    -------
    meta : dict
        ``config.json`` as written.
    config : TrainConfig
    stage : {"avc", "avsa"}
    model : AVCModel or AVSAModel, weights loaded, on the CPU
    mean, std : torch.Tensor (C_mel, 128) or None

    Raises
    ------
    AvsaError
        A file that is not what it should be, or weights that do not fit the
        model the config describes; the message names the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(folder)
    config_path, weights_path = p / CONFIG_NAME, p / WEIGHTS_NAME
    try:
        meta = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AvsaError(f"{config_path}: not a readable avsa model config ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise AvsaError(f"{config_path}: not an avsa model config (format {found!r}, expected {FORMAT!r})")
    try:
        config = from_dict(TrainConfig, meta["config"]).validate()
        stage = meta["stage"]
    except KeyError as exc:
        raise AvsaError(f"{config_path}: no {exc.args[0]!r} entry") from None
    except ConfigError as exc:
        raise ConfigError(f"{config_path}: the saved config is invalid: {exc}") from None
    if stage not in STAGES:
        raise AvsaError(f"{config_path}: unknown stage {stage!r}")
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (OSError, SafetensorError) as exc:
        raise AvsaError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    mean, std = tensors.pop(MEAN_KEY, None), tensors.pop(STD_KEY, None)
    if (mean is None) != (std is None):
        raise AvsaError(f"{weights_path}: holds only one of {MEAN_KEY}, {STD_KEY}")
    model = stage_model(config, stage)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:400]
        raise AvsaError(f"{weights_path}: the weights do not fit the model {config_path} describes ({detail})") from None
    return meta, config, stage, model, mean, std


def model_meta(config: TrainConfig, stage: str, *, front_end: dict, info: dict) -> dict:
    """The content of ``config.json`` (see the module docstring) without ``format``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        avsa_version = version("avsa")
    except PackageNotFoundError:
        avsa_version = "unknown"
    return {"library_name": "avsa", "avsa_version": avsa_version, "stage": stage,
            "commit": info.get("commit", "unknown"), "step": info.get("step"),
            "config": to_dict(config), "front_end": front_end,
            "training": info.get("training", {}), "results": info.get("results", [])}
