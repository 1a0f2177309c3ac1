"""Runs and checkpoints: the run folder's layout, the one checkpoint format, the one loader.

A run folder (written by :class:`~avsa.train.trainer.Trainer`)::

    RUN/config.yaml              the resolved config (:data:`CONFIG_FILE`)
    RUN/commit.txt               git commit of the code (:data:`COMMIT_FILE`)
    RUN/metrics.jsonl            one line per logged step (:data:`METRICS_FILE`)
    RUN/tb/                      TensorBoard logs (:data:`TB_DIR`)
    RUN/checkpoints/last.pt      every ``checkpoint_every`` steps and when a stage ends
    RUN/checkpoints/<stage>.pt   when stage ``avc`` / ``avsa`` ends (:func:`checkpoint_path`)
    RUN/eval/                    evaluation results (:data:`EVAL_DIR`, :mod:`avsa.evaluate.results`)
    RUN/train.lock               held by the training writing the folder (:data:`LOCK_FILE`, :func:`lock_run`)

One training writes a run folder at a time: :func:`lock_run` takes an
exclusive ``flock`` on ``RUN/train.lock`` and writes the holder (pid, host,
start time) into it; a second ``avsa train`` on the folder stops at once naming
the holder. The kernel drops the lock when its process dies, so the lock of a
killed run is taken over (with a warning naming the dead holder). Resuming a
folder compares its ``config.yaml`` with the requested config
(:func:`config_differences`); only the keys of :data:`RESUME_FREE_KEYS` may
differ.

:func:`load_model` is the one way from a checkpoint file to its config, stage
and model: resuming a run, initialising from another run, and every
evaluation (through :func:`avsa.inference.pretrained.load_pretrained`) use it.

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

import fcntl
import json
import os
import socket
import subprocess
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from avsa.errors import AvsaError, ConfigError
from avsa.models.build import STAGES
from avsa.train.config import TrainConfig, from_dict, stage_model

FORMAT = "avsa-checkpoint-1"
CONFIG_FILE = "config.yaml"
COMMIT_FILE = "commit.txt"
METRICS_FILE = "metrics.jsonl"
TB_DIR = "tb"
CHECKPOINTS_DIR = "checkpoints"
EVAL_DIR = "eval"
LAST = "last"
"""The name of the checkpoint written every ``checkpoint_every`` steps (``checkpoints/last.pt``)."""
LOCK_FILE = "train.lock"
RESUME_FREE_KEYS = ("device", "data.num_workers", "log_every", "checkpoint_every", "name", "out")
"""Config keys that may differ between a run folder's ``config.yaml`` and a training that continues it:
where it runs (``device``, ``data.num_workers``), how often it logs and saves, and the keys that only
name a new folder (the folder is given). Every other key changes what is trained."""


class RunLockedError(AvsaError):
    """Another training holds the run folder."""


@contextmanager
def lock_run(run: str | os.PathLike) -> Iterator[Path]:
    """Hold ``RUN/train.lock`` for the duration of the block (the folder is created).

    Raises
    ------
    RunLockedError
        Another process holds it; the message names its pid, host and start time.
    """
    run = Path(run)
    if run.exists() and not run.is_dir():
        raise ConfigError(f"{run}: is a file, not a run folder")
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunLockedError(
                f"{run}: another training is writing this run folder ({_describe_holder(path)}); "
                "wait for it to finish, stop it, or give another --run-dir") from None
        previous = _describe_holder(path, stale=True)
        if previous:
            warnings.warn(f"{path}: taking over the lock of a training that ended without releasing it "
                          f"({previous})", stacklevel=3)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # released cleanly: the next holder has nothing to warn about
    finally:
        os.close(fd)  # closing drops the flock


def _describe_holder(path: Path, *, stale: bool = False) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    if not text:
        return "" if stale else "holder unknown"
    try:
        h = json.loads(text)
        return f"pid {h['pid']} on {h['host']}, started {h['started']}"
    except (ValueError, KeyError, TypeError):
        return f"unreadable holder {text[:80]!r}"


def config_differences(saved: dict, requested: dict, *, free: tuple[str, ...] = RESUME_FREE_KEYS) -> list[str]:
    """Dotted keys whose values differ between two config dicts (keys in ``free`` left out)."""
    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(saved), flat(requested)
    return sorted(k for k in set(a) | set(b) if k not in free and a.get(k) != b.get(k))


def next_run_dir(run: str | os.PathLike) -> Path:
    """``RUN-2``, ``RUN-3`` …: the first numbered sibling of ``run`` that does not exist."""
    run = Path(run)
    n = 2
    while run.with_name(f"{run.name}-{n}").exists():
        n += 1
    return run.with_name(f"{run.name}-{n}")


def checkpoint_path(run: str | os.PathLike, stage: str) -> Path:
    """``RUN/checkpoints/<stage>.pt``; ``stage`` is ``avc``, ``avsa`` or :data:`LAST`."""
    return Path(run) / CHECKPOINTS_DIR / f"{stage}.pt"


def find_checkpoint(target: str | os.PathLike) -> Path:
    """A checkpoint file as given, or the one of a run folder: its ``avsa.pt``, else ``avc.pt``, else ``last.pt``.

    Raises
    ------
    AvsaError
        For a run folder with none of them.
    """
    path = Path(target)
    if not path.is_dir():
        return path
    for stage in (*reversed(STAGES), LAST):
        if checkpoint_path(path, stage).is_file():
            return checkpoint_path(path, stage)
    raise AvsaError(f"{target}: run folder without checkpoints/avsa.pt, avc.pt or last.pt")


def run_of(target: str | os.PathLike) -> Path:
    """The run folder of a checkpoint path or run folder (where ``eval/`` results go)."""
    path = Path(target)
    if path.is_dir():
        return path
    if path.parent.name == CHECKPOINTS_DIR:
        return path.parent.parent
    return path.parent


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


def load_model(path: str | os.PathLike, *, payload: dict | None = None,
               config: TrainConfig | None = None) -> tuple[TrainConfig, str, torch.nn.Module]:
    """The config, stage and model (weights loaded, on the CPU) of a checkpoint.

    Parameters
    ----------
    path : path
        The checkpoint file (named in errors).
    payload : dict, optional
        The checkpoint already loaded with :func:`load_checkpoint` (else it is loaded from ``path``).
    config : TrainConfig, optional
        Build the model from this config instead of the checkpoint's own: resuming a run builds the
        model of its ``config.yaml``.

    Returns
    -------
    config : TrainConfig
        ``config`` if given, else the checkpoint's validated config.
    stage : {"avc", "avsa"}
    model : AVCModel or AVSAModel

    Raises
    ------
    AvsaError
        If the saved config is not a valid config, or the model does not take
        the saved weights (a checkpoint edited or assembled by hand, or a
        ``config.yaml`` edited since); the message names the file and the first
        mismatching weights.
    """
    path = Path(path)
    payload = load_checkpoint(path) if payload is None else payload
    try:
        saved = from_dict(TrainConfig, payload["config"]).validate() if config is None else config
        stage = payload["stage"]
    except (KeyError, TypeError) as exc:
        raise AvsaError(f"{path}: checkpoint without a usable config or stage ({type(exc).__name__}: {exc})") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: the checkpoint's config is invalid: {exc}") from None
    if stage not in STAGES:
        raise AvsaError(f"{path}: checkpoint of unknown stage {stage!r}")
    model = stage_model(saved, stage)
    described = "its config describes" if config is None else f"of {run_of(path) / CONFIG_FILE}"
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        detail = " ".join(str(exc).split())[:400]
        raise AvsaError(f"{path}: its weights do not fit the model {described} ({detail})") from None
    return saved, stage, model
