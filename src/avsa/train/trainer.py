"""The AVC → AVSA curriculum, from one CPU to many GPUs.

Commands (see ``avsa train --help``)::

    # tiny model on the synthetic world, one CPU
    avsa train --config tiny/foa-iv data.cache=demo_out/cache
    # one GPU, full scale
    avsa train --config full/foa-iv-objects data.cache=/data/yt360-cache
    # 8 GPUs on one node (batch sizes are global: split over the processes)
    torchrun --nproc_per_node=8 -m avsa.cli train --config full/foa-iv data.cache=...
    # resume a killed run where its last checkpoint left it
    avsa train --resume runs/foa-iv-20260101-120000

The run folder's layout and the checkpoint format are those of
:mod:`avsa.train.checkpoint`.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from contextlib import ExitStack, nullcontext
from pathlib import Path

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from avsa.errors import AvsaError, ConfigError
from avsa.models.build import STAGES
from avsa.models.losses import avc_loss, avsa_loss
from avsa.train import distributed as dist_utils
from avsa.train.checkpoint import (COMMIT_FILE, CONFIG_FILE, LAST, METRICS_FILE, RESUME_FREE_KEYS, TB_DIR,
                                   checkpoint_path, config_differences, git_commit, load_checkpoint, load_model,
                                   lock_run, next_run_dir, rng_state, save_checkpoint, set_rng_state)
from avsa.train.config import ENCODER_KEYS, TrainConfig, from_dict, stage_model, to_dict
from avsa.train.batches import TrainBatches, check_stages


class NonFiniteLossError(AvsaError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def make_run_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = Path(config.out) / f"{config.name}-{stamp}"
    suffix = 1
    while run.exists():
        suffix += 1
        run = Path(config.out) / f"{config.name}-{stamp}-{suffix}"
    return run


def lr_lambda(step: int, *, steps: int, warmup: int, schedule: str) -> float:
    """Multiplier of the base learning rate at ``step``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine" and steps > warmup:
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return 1.0


def compute_loss(stage: str, model, video, audio, directions, config: TrainConfig):
    """Forward one batch and return the loss result (``.loss`` and ``.metrics``)."""
    if stage == "avc":
        # video (B, 1, 3, T, H, W), audio (B, 1, C, T', F) -> one crop per clip
        out = model(video[:, 0], audio[:, 0])
        return avc_loss(out.video, out.audio, temperature=config.temperature)
    k = video.shape[1]
    other = audio[:, k:] if audio.shape[1] == 2 * k else None  # sound negatives (TrainBatches)
    out = model(video, audio[:, :k], directions=directions, other_audio=other)
    return avsa_loss(out, temperature=config.temperature, negatives=config.avsa.negatives,
                     within_clip=config.avsa.within_clip, sound_negatives=config.avsa.sound_negatives)


class WeightAverage:
    """An exponential moving average of a model's weights and buffers (``<stage>.ema``).

    The decay starts low and grows to ``decay`` (``min(decay, (1 + n) / (10 + n))`` after n updates), so
    the first steps' weights do not linger. Integer buffers (BatchNorm's batch counts) are copied.
    """

    def __init__(self, model: torch.nn.Module, decay: float, *, updates: int = 0):
        self.decay, self.updates = decay, updates
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            avg = self.state[k]
            if avg.is_floating_point():
                avg.lerp_(v.detach(), 1.0 - decay)
            else:
                avg.copy_(v)


class Trainer:
    """Runs the stages of one config in one run folder (rank 0 writes)."""

    def __init__(self, config: TrainConfig, run_dir: Path, info: dist_utils.DistInfo):
        self.config = config
        self.run_dir = Path(run_dir)
        self.info = info
        self.writer = None
        self.metrics_file = None
        self.audio_stats: dict = {}

    # ------------------------------------------------------------------ logging
    def _open_logs(self):
        if not self.info.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(self.config), sort_keys=False))
        (self.run_dir / COMMIT_FILE).write_text(git_commit() + "\n")
        self.metrics_file = open(self.run_dir / METRICS_FILE, "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / TB_DIR))
        except ImportError:  # tensorboard is a dependency, but keep training without it
            self.writer = None

    def _log(self, stage: str, step: int, metrics: dict[str, float]):
        if not self.info.is_main:
            return
        row = {"stage": stage, "step": step, **{k: float(v) for k, v in metrics.items()}}
        self.metrics_file.write(json.dumps(row) + "\n")
        self.metrics_file.flush()
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"{stage}/{k}", v, step)

    def _close_logs(self):
        if self.metrics_file is not None:
            self.metrics_file.close()
        if self.writer is not None:
            self.writer.close()

    # --------------------------------------------------------------- checkpoint
    def _save(self, name: str, stage: str, step: int, finished: bool, model, optimizer, scheduler, metrics,
              average: WeightAverage | None = None):
        if not self.info.is_main:
            return
        core = model.module if isinstance(model, DDP) else model
        weights = {"model": core.state_dict()} if average is None else {
            "model": average.state, "train_model": core.state_dict(), "ema_updates": average.updates}
        save_checkpoint(
            checkpoint_path(self.run_dir, name),
            {
                "config": to_dict(self.config),
                "commit": git_commit(),
                "stage": stage,
                "step": step,
                "finished": finished,
                **weights,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
                "audio_stats": self.audio_stats,
                "metrics": {k: float(v) for k, v in metrics.items()},
            },
        )

    def _init_model(self):
        """The model of ``config.init`` (a checkpoint of another run) for the first stage's encoders.

        Only the encoders are taken from it, so only what shapes them must agree: the audio channels and
        the model keys of :data:`ENCODER_KEYS` (the AVSA heads and transformers may differ).
        """
        saved, _, model = load_model(self.config.init)
        ours = (self.config.audio_channels, *(getattr(self.config.model, k) for k in ENCODER_KEYS))
        theirs = (saved.audio_channels, *(getattr(saved.model, k) for k in ENCODER_KEYS))
        if ours != theirs:
            raise ConfigError(
                f"init={self.config.init}: its encoders (audio channels, {', '.join(ENCODER_KEYS)} = {theirs}) "
                f"differ from this config's ({ours})"
            )
        return model

    def _resume_point(self):
        """(stage, checkpoint) to continue from, or (None, None) for a fresh run."""
        last = checkpoint_path(self.run_dir, LAST)
        if not last.exists():
            return None, None
        return None, load_checkpoint(last, map_location="cpu")

    # --------------------------------------------------------------------- run
    def run(self) -> Path:
        cfg, info = self.config, self.info
        check_stages(cfg, world_size=info.world_size)  # every stage's data, before any training
        torch.manual_seed(cfg.seed)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        _, resume = self._resume_point()
        if resume is not None and resume.get("finished") and resume["stage"] == cfg.stages[-1]:
            if info.is_main:
                print(f"{self.run_dir}: already finished ({resume['stage']} step {resume['step']}); nothing to do")
            return self.run_dir
        self._open_logs()
        previous = None  # model of the previous stage (for the curriculum)
        try:
            for stage in cfg.stages:
                if resume is not None and STAGES.index(resume["stage"]) > STAGES.index(stage):
                    continue  # this stage finished before the checkpoint
                ckpt = resume if resume is not None and resume["stage"] == stage else None
                if ckpt is None and previous is None and cfg.init:
                    previous = self._init_model()
                previous = self._run_stage(stage, ckpt, previous)
                resume = None
        finally:
            self._close_logs()
        return self.run_dir

    def _run_stage(self, stage: str, ckpt: dict | None, previous):
        cfg, info = self.config, self.info
        scfg = getattr(cfg, stage)
        device = info.device

        # -- model: AVSA starts from the AVC encoders, heads and transformers fresh
        if ckpt is not None:
            _, _, model = load_model(checkpoint_path(self.run_dir, LAST), payload=ckpt, config=cfg)
        else:
            model = stage_model(cfg, stage)
            if previous is not None:
                model.load_encoders_from(previous)
        model.to(device)
        if info.distributed and cfg.sync_batchnorm and cfg.model.norm == "batch":
            if device.type == "cuda":
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif info.is_main and stage == cfg.stages[0]:
                warnings.warn("SyncBatchNorm needs GPUs: on CPU each process normalises with its own "
                              "batch statistics (use model.norm=group for exact multi-process runs)")

        # -- optimiser and schedule
        if scfg.optimizer == "adam":
            optimizer = torch.optim.Adam(model.parameters(), lr=scfg.lr, weight_decay=scfg.weight_decay)
        else:
            optimizer = torch.optim.SGD(model.parameters(), lr=scfg.lr, momentum=0.9, weight_decay=scfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: lr_lambda(s, steps=scfg.steps, warmup=scfg.warmup_steps, schedule=scfg.schedule),
        )

        # -- resume
        start, average = 0, None
        if ckpt is not None:
            if ckpt.get("finished"):  # killed between stages: this one's checkpoints stay as they are
                self.audio_stats = ckpt.get("audio_stats", {})
                return model
            if "train_model" in ckpt:  # the checkpoint's model is the average; train on from the raw weights
                average = WeightAverage(model, scfg.ema, updates=int(ckpt["ema_updates"]))
                model.load_state_dict(ckpt["train_model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            set_rng_state(ckpt["rng"])
            start = int(ckpt["step"])
        if average is None and scfg.ema > 0:
            average = WeightAverage(model, scfg.ema)
        if info.distributed:
            model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

        # -- data: the batch of step s is fixed by (seed, stage, s), so resuming replays exactly
        batches = TrainBatches(cfg, stage=stage, start_step=start, rank=info.rank, world_size=info.world_size,
                               device=device)
        self.audio_stats = batches.audio_stats()

        # -- loop
        amp = cfg.amp and device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        autocast = torch.autocast("cuda", dtype=torch.float16) if amp else nullcontext()
        model.train()
        metrics: dict[str, float] = {}
        bar = tqdm(total=scfg.steps, initial=start, desc=f"{stage}", disable=not info.is_main, unit="step",
                   dynamic_ncols=True)
        t0, seen = time.perf_counter(), 0
        step = start
        for step in range(start, scfg.steps):
            video, audio, directions = next(batches)
            with autocast:
                result = compute_loss(stage, model, video, audio, directions, cfg)
            loss = result.loss
            if dist_utils.any_true(not torch.isfinite(loss).item(), info):
                bar.close()
                raise NonFiniteLossError(
                    f"{stage} step {step}: the loss is {loss.item()} (not finite); stopped. "
                    f"The last good checkpoint is {checkpoint_path(self.run_dir, LAST)} "
                    "— lower the learning rate or check the data, then resume with --resume"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if average is not None:
                average.update(model.module if isinstance(model, DDP) else model)
            seen += video.shape[0] * info.world_size
            done = step + 1
            if done % cfg.log_every == 0 or done == scfg.steps:
                elapsed = time.perf_counter() - t0
                metrics = {"loss": loss.item(), **{k: float(v) for k, v in result.metrics.items()},
                           "lr": scheduler.get_last_lr()[0], "samples_per_s": seen / max(elapsed, 1e-9),
                           "skipped_clips": float(batches.skipped)}
                metrics = dist_utils.mean_over_ranks(metrics, info)
                self._log(stage, done, metrics)
                bar.set_postfix({k: f"{metrics[k]:.3g}" for k in ("loss", "lr") if k in metrics})
                t0, seen = time.perf_counter(), 0
            if done % cfg.checkpoint_every == 0 and done < scfg.steps:
                self._save(LAST, stage, done, False, model, optimizer, scheduler, metrics, average)
            bar.update(1)
        bar.close()
        batches.close()
        self._save(stage, stage, scfg.steps, True, model, optimizer, scheduler, metrics, average)
        self._save(LAST, stage, scfg.steps, True, model, optimizer, scheduler, metrics, average)
        core = model.module if isinstance(model, DDP) else model
        if average is not None:  # the next stage starts from what the checkpoint holds
            core.load_state_dict(average.state)
        return core


def train(config: TrainConfig, *, run_dir: str | Path | None = None, new_run: bool = False) -> Path:
    """Run the curriculum of ``config``; returns the run folder.

    Rank 0 locks the run folder (:func:`~avsa.train.checkpoint.lock_run`) for the whole training. A
    ``run_dir`` that already holds a run is continued only with the same config (keys of
    :data:`~avsa.train.checkpoint.RESUME_FREE_KEYS` aside; ``stages`` may add later stages, whose
    sections the folder's run never used); ``new_run`` writes to the first free
    ``RUN_DIR-2``, ``RUN_DIR-3`` … instead.
    """
    info = dist_utils.setup(config.device)
    try:
        with ExitStack() as held:
            problem = None
            if info.is_main:
                try:
                    run_dir = _claim_run_dir(config, run_dir, new_run, held)
                except AvsaError as exc:
                    if not info.distributed:
                        raise
                    problem = exc
            if info.distributed:  # every rank must agree on the folder, and stop together
                obj = [str(run_dir), None if problem is None else str(problem)]
                torch.distributed.broadcast_object_list(obj, src=0)
                if problem is not None:
                    raise problem
                if obj[1] is not None:
                    raise AvsaError(obj[1])
                run_dir = Path(obj[0])
            return Trainer(config, Path(run_dir), info).run()
    finally:
        dist_utils.teardown()


def _claim_run_dir(config: TrainConfig, run_dir: str | Path | None, new_run: bool, held: ExitStack) -> Path:
    """Lock the folder this training writes (rank 0), checking that a run already there is this config's."""
    run_dir = make_run_dir(config) if run_dir is None else Path(run_dir)
    held.enter_context(lock_run(run_dir))
    saved_file = run_dir / CONFIG_FILE
    if not saved_file.is_file():
        return run_dir
    if new_run:
        held.close()
        run_dir = next_run_dir(run_dir)
        held.enter_context(lock_run(run_dir))
        print(f"--new-run: {saved_file.parent} already holds a run; writing {run_dir}")
        return run_dir
    try:
        saved = to_dict(from_dict(TrainConfig, yaml.safe_load(saved_file.read_text())))
    except (yaml.YAMLError, AvsaError) as exc:
        raise ConfigError(f"{saved_file}: cannot compare with the requested config ({exc}); "
                          "give another --run-dir or --new-run") from None
    differing = config_differences(saved, to_dict(config))
    done = list(saved.get("stages") or [])
    if list(config.stages[:len(done)]) == done:  # continuing the curriculum with later stages
        differing = [k for k in differing if k != "stages" and k.split(".")[0] not in set(config.stages) - set(done)]
    if differing:
        shown = ", ".join(f"{k} ({_value(saved, k)!r} there, {_value(to_dict(config), k)!r} now)"
                          for k in differing[:8])
        raise ConfigError(
            f"{run_dir} holds a run with another config; differing keys: {shown}"
            f"{' …' if len(differing) > 8 else ''}. Continue it with its own config "
            f"(avsa train --resume {run_dir}), pass --new-run to start {next_run_dir(run_dir).name} beside it, "
            f"or give another --run-dir (keys that may differ: {', '.join(RESUME_FREE_KEYS)})")
    return run_dir


def _value(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def resume(run_dir: str | Path) -> Path:
    """Continue a run from ``run_dir/checkpoints/last.pt`` with its saved config."""
    run_dir = Path(run_dir)
    cfg_file = run_dir / CONFIG_FILE
    if not cfg_file.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no config.yaml)")
    config = from_dict(TrainConfig, yaml.safe_load(cfg_file.read_text())).validate()
    return train(config, run_dir=run_dir)
