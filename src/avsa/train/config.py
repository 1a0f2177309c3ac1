"""The one typed configuration of ``avsa train``.

A config is a tree of dataclasses with documented defaults. It is read from
YAML, then overridden by ``key=value`` pairs with dotted keys
(``avsa.batch_size=8``); an unknown key or a value of the wrong type is a
:class:`~avsa.errors.ConfigError`. Components never receive this object: the
trainer unpacks it into explicit keyword arguments, and :func:`stage_model`
builds the model of a stage from it (training, resuming and every checkpoint
loaded for evaluation build their model there).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from avsa.audio_inputs import AUDIO_INPUTS, FEATURES, FORMATS
from avsa.data.crops import CROP_MODES, DEFAULT_ELEVATION_DEG
from avsa.errors import ConfigError
from avsa.models.audio import POOLS
from avsa.models.build import STAGES, build_model
from avsa.models.heads import AVCModel, AVSAModel
from avsa.models.losses import NEGATIVES
from avsa.train.norm import batchnorm_to_groupnorm

DEVICE_TYPES = ("cpu", "cuda")
"""The device types training runs on (``device`` is ``auto`` or one of them, with an index)."""
MIN_CROP_SIZE = 16
"""Smallest ``data.crop_size``: the video encoder halves the crop four times (stem, stages 3–5), so a
smaller crop reaches its last stage as a single position whose 3×3 convolutions see zero padding only.
(The encoder runs on any size ≥ 1 without an error; it cannot learn anything spatial from such crops.)"""
MIN_FRAMES = 8
"""Smallest ``data.n_frames``: stages 3–5 halve time three times; fewer frames reach them as one step."""



@dataclass
class DataConfig:
    """Where samples come from and how they are made (docs/system.md §1–4)."""

    cache: str = ""
    """Prepared cache folder (``avsa prepare``)."""
    split: str = "train"
    clips: str = ""
    """Optional clip list file (one clip id per line, e.g. ``avsa check --subset pass``): train on these only."""
    crops: str = "random"
    """Crop selection: ``random`` (baseline), ``objects`` (detections), ``audio`` (IV directions)."""
    detector: str = "oracle"
    """Name of the detections folder under ``CACHE/detections/`` used by ``crops=objects``."""
    format: str = "ambi"
    """Audio format: ``ambi`` (4 ch), ``mono`` (beam at the crop centre), ``stereo`` (Eq. 9)."""
    features: str = "mel"
    """Audio features: ``mel``, ``iv`` (ambi only, 7 ch), ``icf`` (stereo only, 5 ch)."""
    crop_size: int = 112
    n_frames: int = 8
    window_s: float = 1.0
    sample_rate: int = 24000
    fps: float = 16.0
    augment: bool = True
    crop_jitter_deg: float = 0.0
    """Training: move object/audio crop centres by ~|N(0, σ)| degrees (σ = this), so that a source
    exactly in front is no shortcut; evaluation crops are never jittered."""
    crop_jitter_warmup: float = 0.0
    """Training: fraction of each stage's steps over which the crop jitter grows linearly from 0 to
    ``crop_jitter_deg`` (exact centres first, which are learnt faster, then the displaced ones); 0: the
    full jitter from the first step."""
    random_elevation_deg: float = DEFAULT_ELEVATION_DEG
    """Training: random crops (and the random fill of quadrants without a detection) draw their
    elevation uniformly in ±this many degrees; evaluation crops keep ±30°."""
    normalize: bool = True
    """Normalise log-mel bands with ``CACHE/stats`` (run ``avsa stats`` first)."""
    num_workers: int | str = "auto"
    """Decoding worker processes per training process; ``auto`` sizes them to the machine's CPUs."""


@dataclass
class ModelConfig:
    """Encoder sizes and the AVSA heads (docs/system.md §3–5)."""

    video_width: float = 1.0
    """Width multiplier of R(2+1)D-18 (1.0 = 64/128/256/512 channels)."""
    audio_width: float = 1.0
    """Width multiplier of the audio CNN. Another output size than the video encoder's is mapped to it
    linearly before the AVSA transformers."""
    audio_pool: str = "max"
    """Global pooling of the audio CNN over time and frequency: ``max`` (the paper) or ``mean``."""
    dim: int = 128
    """Output size of every linear head."""
    transformer_depth: int = 2
    transformer_ff: int = 2048
    dropout: float = 0.1
    norm: str = "batch"
    """``batch`` (BatchNorm; SyncBatchNorm under DDP on GPUs) or ``group`` (per-sample GroupNorm)."""
    direction_encoding: bool = False
    """Add an encoding of each crop's direction to the transformer tokens (off in the paper)."""
    a2v_directions: bool = False
    """LEAKS THE LABEL; keep it off. With direction encoding, ``true`` also gives the audio→video transformer
    each audio token's direction — the rotation that audio was made with, which is exactly the pairing AVSA
    asks the model to find — so v̂ can say how a crop looking there looks (floor, sky, horizon) without
    listening. ``false`` (default): only the video→audio transformer gets directions, those of the video crops
    (what the camera knows). Kept for measuring the leak (docs/learning.md)."""
    relative_directions: bool = False
    """With direction encoding: the video→audio transformer's attention also knows where each video crop lies
    seen from each other crop (the camera knows it; the audio→video transformer never gets it)."""


ENCODER_KEYS = ("video_width", "audio_width", "audio_pool", "norm")
"""The :class:`ModelConfig` keys that shape the encoders (what one stage hands the next; the rest are heads)."""


@dataclass
class StageConfig:
    """One stage of the curriculum."""

    steps: int = 1000
    batch_size: int = 28
    """Clips per step, summed over all processes (AVSA: each clip gives 4 crops)."""
    optimizer: str = "adam"
    """``adam`` (the paper) or ``sgd`` (momentum 0.9)."""
    lr: float = 1e-4
    weight_decay: float = 1e-5
    warmup_steps: int = 0
    schedule: str = "constant"
    """``constant`` or ``cosine`` (after warm-up)."""
    negatives: str = "paper"
    """AVSA only: ``paper`` (other crops of the clip and all crops of other clips)
    or ``same-crop`` (the original code: only the same crop index of other clips)."""
    within_clip: float = 0.0
    """AVSA only: share w of a within-clip term, loss = w·CE(the clip's 4 crops) + (1 − w)·CE(negatives).
    0 is the paper's loss; the within-clip term lets AVSA leave chance in far fewer steps."""
    sound_negatives: float = 0.0
    """AVSA only: weight of a term that ranks each crop's own sound above another clip's sound rotated to the
    same crops (:func:`avsa.models.losses.sound_negatives_term`); 0 = off (the paper). What a sound field shows
    merely for being rotated to a direction is shared by both, so only the clip's own sound can win. Costs one
    more audio-encoder pass per step."""
    ema: float = 0.0
    """Decay of an exponential moving average of the weights (0 = off). When on, the stage's checkpoints hold
    the average as ``model`` (what evaluation, export and the next stage use) and the weights being trained as
    ``train_model`` (what a resumed run continues)."""


@dataclass
class TrainConfig:
    """Everything ``avsa train`` needs; saved in every run folder and checkpoint."""

    name: str = "run"
    out: str = "runs"
    """Parent folder of run folders; relative to the working directory."""
    seed: int = 0
    stages: list[str] = field(default_factory=lambda: ["avc", "avsa"])
    temperature: float = 0.07
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1`` …"""
    amp: bool = True
    """Mixed precision on CUDA (ignored on CPU)."""
    deterministic: bool = False
    """Deterministic algorithms, so a resumed run reproduces an uninterrupted one bit for bit."""
    sync_batchnorm: bool = True
    """Use SyncBatchNorm under DDP so statistics cover the global batch."""
    init: str = ""
    """Checkpoint of another run whose encoders start the first stage (e.g. AVSA from an AVC run)."""
    log_every: int = 10
    checkpoint_every: int = 100
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    avc: StageConfig = field(default_factory=lambda: StageConfig(batch_size=112))
    avsa: StageConfig = field(default_factory=lambda: StageConfig(batch_size=28))

    def validate(self) -> "TrainConfig":
        """Check value ranges and combinations; returns self."""
        d = self.data
        _one_of("stages", self.stages, STAGES, many=True)
        if not self.stages:
            raise ConfigError("stages: give at least one of 'avc', 'avsa'")
        if list(self.stages) != [s for s in STAGES if s in self.stages]:
            raise ConfigError(f"stages: {self.stages} must be in curriculum order avc, avsa")
        _one_of("data.crops", d.crops, CROP_MODES)
        _one_of("data.format", d.format, FORMATS)
        _one_of("data.features", d.features, FEATURES)
        _one_of("model.norm", self.model.norm, ("batch", "group"))
        _one_of("model.audio_pool", self.model.audio_pool, POOLS)
        if d.num_workers != "auto" and (isinstance(d.num_workers, bool) or not isinstance(d.num_workers, int)
                                        or d.num_workers < 0):
            raise ConfigError(f"data.num_workers: expected an integer >= 0 or 'auto', got {d.num_workers!r}")
        if (d.format, d.features) not in AUDIO_INPUTS:
            raise ConfigError(
                f"data.format={d.format!r} with data.features={d.features!r} is not a valid pair; "
                f"valid: {sorted(AUDIO_INPUTS)}"
            )
        for stage in STAGES:
            s: StageConfig = getattr(self, stage)
            if s.steps < 0 or s.batch_size < 2:
                raise ConfigError(f"{stage}: steps must be >= 0 and batch_size >= 2")
            if not (math.isfinite(s.lr) and s.lr >= 0 and s.weight_decay >= 0 and s.warmup_steps >= 0):
                raise ConfigError(f"{stage}: lr={s.lr}, weight_decay={s.weight_decay} and "
                                  f"warmup_steps={s.warmup_steps} must be finite and >= 0")
            _one_of(f"{stage}.schedule", s.schedule, ("constant", "cosine"))
            _one_of(f"{stage}.optimizer", s.optimizer, ("adam", "sgd"))
            _one_of(f"{stage}.negatives", s.negatives, NEGATIVES)
            if not 0.0 <= s.within_clip <= 1.0:
                raise ConfigError(f"{stage}.within_clip must lie in [0, 1], got {s.within_clip}")
            if not (math.isfinite(s.sound_negatives) and s.sound_negatives >= 0):
                raise ConfigError(f"{stage}.sound_negatives must be a finite weight >= 0, got {s.sound_negatives}")
            if not 0.0 <= s.ema < 1.0:
                raise ConfigError(f"{stage}.ema must lie in [0, 1) (0 = off), got {s.ema}")
        if isinstance(d.crop_size, bool) or not MIN_CROP_SIZE <= d.crop_size <= 1024:
            raise ConfigError(f"data.crop_size must lie in [{MIN_CROP_SIZE}, 1024] pixels, got {d.crop_size} "
                              f"(the video encoder halves a crop four times)")
        if isinstance(d.n_frames, bool) or not MIN_FRAMES <= d.n_frames <= 256:
            raise ConfigError(f"data.n_frames must lie in [{MIN_FRAMES}, 256], got {d.n_frames} "
                              f"(the video encoder halves time three times)")
        for key, value in (("data.window_s", d.window_s), ("data.fps", d.fps)):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key} must be a positive number, got {value}")
        if d.sample_rate <= 0:
            raise ConfigError(f"data.sample_rate must be a positive number of Hz, got {d.sample_rate}")
        if not 0.0 <= d.crop_jitter_deg <= 90.0:
            raise ConfigError(f"data.crop_jitter_deg must lie in [0, 90], got {d.crop_jitter_deg}")
        if not 0.0 <= d.crop_jitter_warmup <= 1.0:
            raise ConfigError(f"data.crop_jitter_warmup must lie in [0, 1] (a fraction of the stage's steps), "
                              f"got {d.crop_jitter_warmup}")
        if not (math.isfinite(d.random_elevation_deg) and 0.0 <= d.random_elevation_deg <= 90.0):
            raise ConfigError(f"data.random_elevation_deg must lie in [0, 90], got {d.random_elevation_deg}")
        if self.device != "auto" and self.device.split(":")[0] not in DEVICE_TYPES:
            raise ConfigError(f"device={self.device!r}: expected auto, cpu, cuda or cuda:<index>")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError("checkpoint_every and log_every must be >= 1")
        return self

    @property
    def audio_channels(self) -> int:
        """Input channels of the audio encoder for this format and features."""
        return AUDIO_INPUTS[(self.data.format, self.data.features)]


def stage_model(config: TrainConfig, stage: str) -> AVCModel | AVSAModel:
    """The model of one stage of ``config``, built from explicit arguments.

    Parameters
    ----------
    config : TrainConfig
        Its ``model`` section and audio input (``data.format``, ``data.features``) decide the model.
    stage : {"avc", "avsa"}

    Returns
    -------
    AVCModel or AVSAModel
        With GroupNorm in place of BatchNorm when ``model.norm`` is ``group``.
    """
    m = config.model
    model = build_model(
        stage,
        audio_channels=config.audio_channels,
        video_width=m.video_width,
        audio_width=m.audio_width,
        dim=m.dim,
        transformer_depth=m.transformer_depth,
        transformer_ff=m.transformer_ff,
        dropout=m.dropout,
        direction_encoding=m.direction_encoding,
        a2v_directions=m.a2v_directions,
        relative_directions=m.relative_directions,
        audio_pool=m.audio_pool,
    )
    if m.norm == "group":
        batchnorm_to_groupnorm(model)
    return model


def _one_of(key, value, allowed, many=False):
    values = value if many else [value]
    for v in values:
        if v not in allowed:
            raise ConfigError(f"{key}: {v!r} is not one of {', '.join(map(repr, allowed))}")


# ---------------------------------------------------------------- reading

def from_dict(cls, data: dict, *, where: str = ""):
    """Build dataclass ``cls`` from a nested dict; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key{'s' if len(unknown) > 1 else ''} "
            + ", ".join(repr(f"{where}{k}") for k in unknown)
            + f"; known keys{' of ' + where.rstrip('.') if where else ''}: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(hints[k], v, f"{where}{k}") for k, v in data.items()}
    return cls(**kwargs)


def _coerce(hint, value, key):
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=key + ".")
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1]
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(item, v, key) for v in value]
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = hint(value) if not isinstance(value, str) else hint(float(value))
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}") from None
        if hint is int and float(value) != number:
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def to_dict(config) -> dict:
    """The config as plain nested dicts (YAML- and checkpoint-safe)."""
    return dataclasses.asdict(config)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key=value`` strings (dotted keys; YAML-parsed values) to a nested dict.

    A ``#`` in a value is kept (``data.clips=lists/take #2.txt``): it never starts a
    YAML comment here (see :func:`parse_override_value`).
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        value = parse_override_value(raw, item)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return data


def parse_override_value(raw: str, item: str = "") -> object:
    """The value of one override: YAML (numbers, booleans, lists), but ``#`` never starts a comment.

    YAML would cut ``value #x`` at the ``#``; such a value is taken verbatim as a string (a typed key
    then refuses it by name, e.g. ``avsa.lr: expected float, got '0.1 #x'``). Quoted values parse as
    YAML (``key="a #b"``); a list or mapping with a comment-like ``#`` is refused.
    """
    if raw == "":
        return ""
    text = raw.strip()
    if not (text.startswith("#") or " #" in raw or "\t#" in raw):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item or raw!r}: not a valid value ({exc})") from None
    if text[:1] in ("'", '"'):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item or raw!r}: not a valid quoted value ({exc})") from None
    if text[:1] in ("[", "{"):
        raise ConfigError(f"override {item or raw!r}: ' #' inside a list or mapping is ambiguous; "
                          "quote the item that holds the '#'")
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML config (its ``base:`` chain resolved), apply overrides, validate.

    ``path`` may also name a packaged config, e.g. ``tiny/foa-iv`` (see :func:`packaged_configs`).
    """
    data: dict = {}
    if path is not None:
        data = read_config_file(resolve_config_path(path))
    data = apply_overrides(data, list(overrides))
    return from_dict(TrainConfig, data).validate()


def read_config_file(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """The nested mapping a YAML config file gives, its ``base:`` chain resolved.

    A file may name another with ``base: NAME`` (a path relative to the file's folder;
    ``.yaml`` is added when it has no suffix). The base is read first (its own base
    included) and the file's keys are merged over it, section by section; a list or
    value replaces the base's. An unknown base, a cycle of bases or a file that is not
    a mapping is a :class:`~avsa.errors.ConfigError` naming the file.
    """
    path = Path(path)
    if path.resolve() in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path.resolve()))
        raise ConfigError(f"{path}: the bases form a cycle ({cycle})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base: expected the name of a config file, got {base!r}")
    base_path = path.parent / base
    if not base_path.suffix:
        base_path = base_path.with_suffix(".yaml")
    if not base_path.is_file():
        raise ConfigError(f"{path}: base {base!r} not found ({base_path})")
    return _merge(read_config_file(base_path, (*_chain, path.resolve())), data)


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def packaged_configs() -> list[str]:
    """Names of the configs shipped with avsa (``full/<row>``, ``tiny/<row>``); bases (``_*.yaml``) are not listed."""
    return sorted(str(p.relative_to(CONFIG_DIR).with_suffix(""))
                  for p in CONFIG_DIR.glob("*/*.yaml") if not p.name.startswith("_"))


def resolve_config_path(path: str | Path) -> Path:
    """A file path as given, or the packaged config of that name."""
    path = Path(path)
    if path.is_file():
        return path
    packaged = CONFIG_DIR / Path(str(path)).with_suffix(".yaml")
    if packaged.is_file():
        return packaged
    raise ConfigError(
        f"{path}: config file not found (packaged configs: {', '.join(packaged_configs()) or 'none'})"
    )
