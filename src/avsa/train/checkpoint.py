"""The one checkpoint format of avsa.

A checkpoint is a dict of tensors and plain Python values only, so it loads
with ``torch.load(..., weights_only=True)``:

``format``      "avsa-checkpoint-1"
``config``      the resolved :class:`~avsa.train.config.TrainConfig` as a dict
``commit``      git commit of the code that wrote it ("unknown" outside git)
``stage``       "avc" or "avsa" — the stage the weights belong to
``step``        optimisation steps finished in that stage
``finished``    whether the stage ran to its last step
``model``       model state dict (unwrapped from DDP)
``optimizer``, ``scheduler``   their state dicts
``rng``         {"torch": ByteTensor, "cuda": [ByteTensor, ...]}
``metrics``     last logged metrics (floats)
``audio_stats`` per-band log-mel normalisation {"mean", "std" (C_mel, 128) tensors,
                "format", "features"}, or {} when training ran unnormalised

Writes are atomic: a temporary file in the same folder, fsync, then
``os.replace``, so a run killed at any moment leaves the previous checkpoint
intact.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import torch

from avsa.errors import AvsaError

FORMAT = "avsa-checkpoint-1"


def git_commit() -> str:
    """The current git commit of the avsa source tree, or ``"unknown"``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        )
        if out.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5,
            ).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def rng_state() -> dict:
    """Torch RNG states (CPU and every CUDA device) as tensors."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` atomically to ``path`` (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, **payload}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise AvsaError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        # torch's own message may advise retrying with weights_only=False, i.e. running the file's
        # code: never pass that on for a file that failed to load as plain data.
        raise AvsaError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}): the file is truncated, corrupt or "
            "not an avsa checkpoint. avsa loads checkpoints as plain data only and never executes code "
            "from one; use a checkpoint written by avsa train"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise AvsaError(f"{path}: not an avsa checkpoint (format {payload.get('format') if isinstance(payload, dict) else None!r})")
    return payload
