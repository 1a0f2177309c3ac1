"""Paper-style tables and training curves from run folders (``avsa report``).

::

    avsa report runs/baseline runs/foa-iv-objects runs/stereo-icf --out report
    avsa report runs/a runs/b --out report --name "log-mel" --name "FOA-IV"

Rows are runs (training variants), columns are tasks, read from each run's
``eval/<task>.json`` (:mod:`avsa.evaluate.results`). Every cell is the value
in percent with its 95 % interval, ``83.1 [80.2, 85.9]``; a missing result is
``—``. The tables follow the paper:

- in-domain AVC/AVSA accuracies (paper Tables I–II), AVSA contrastive also per
  crop kind;
- action recognition (Table III): synthetic motion, UCF101, HMDB51, frozen and
  fine-tuned, video and clip accuracy;
- acoustic scene classification (Table IV): synthetic FOA and binaural
  scenes, EigenScape;
- audio-visual scene classification (Table V): TAU audio, video, fusion;
- localization, and every unknown task name under "Other results".

A table is written only when some run has one of its columns. ``DIR`` gets
``report.md``, one CSV per table (value, low, high in percent and n), one PNG of
training curves per run (loss and contrastive accuracies vs. step from
``metrics.jsonl``, stage boundary and chance levels marked) and copies of the
run's ``crops.png`` / ``localization.png``, so the folder is self-contained.

Python API: :func:`write_report` (everything), :func:`load_runs` and
:func:`build_tables` (the table data, reused by :mod:`avsa.experiments`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from avsa.errors import AvsaError, InputError
from avsa.evaluate.results import PERCENT_METRICS, Result, load_results
from avsa.models.build import STAGES
from avsa.train.checkpoint import CONFIG_FILE, EVAL_DIR, METRICS_FILE
from avsa.train.config import TrainConfig, from_dict

MISSING = "—"
PICTURES = ("crops.png", "localization.png")
AUDIO_NAMES = {("ambi", "mel"): "log-mel", ("ambi", "iv"): "FOA-IV", ("mono", "mel"): "beamforming",
               ("stereo", "mel"): "stereo", ("stereo", "icf"): "stereo + ICF"}


# ------------------------------------------------------------------ table layout
@dataclass(frozen=True)
class TaskSpec:
    """One family of columns: a base task name, its header, and optional detail sub-columns."""

    base: str
    header: str
    details: tuple[tuple[str, str, str], ...] = ()
    """(details key, sub-key or "", header suffix): extra columns read from ``Result.details``."""


@dataclass(frozen=True)
class TableSpec:
    key: str
    title: str
    tasks: tuple[TaskSpec, ...]


_KINDS = tuple(("per_kind", kind, f"{kind} crops") for kind in ("object", "random", "audio"))
_CLIP = (("clip_accuracy", "", "clip"),)
TABLES = (
    TableSpec("indomain", "In-domain AVC and AVSA accuracy (%) (paper Tables I–II)", (
        TaskSpec("avc-binary", "AVC binary"),
        TaskSpec("avsa-binary", "AVSA binary"),
        TaskSpec("avc-contrastive", "AVC contrastive", _KINDS),
        TaskSpec("avsa-contrastive", "AVSA contrastive", _KINDS),
        TaskSpec("avsa-contrastive-other-audio", "AVSA contrastive, another clip's sound (control)"),
        TaskSpec("avsa-sound-dependent", "AVSA decided by the sound (AVSA − control, points)"),
        TaskSpec("avsa-contrastive-jittered", "AVSA contrastive, ground truth jittered 15°", _KINDS),
        TaskSpec("avsa-contrastive-other-audio-jittered", "control, ground truth jittered 15°"),
        TaskSpec("avsa-sound-dependent-jittered", "decided by the sound, ground truth jittered 15°"),
        TaskSpec("avsa-contrastive-new-world", "AVSA contrastive, new world"),
        TaskSpec("avsa-contrastive-other-audio-new-world", "control, new world"),
        TaskSpec("avsa-sound-dependent-new-world", "decided by the sound, new world"),
    )),
    TableSpec("action", "Action recognition accuracy (%) (paper Table III)", (
        TaskSpec("synth-video-motion", "Synthetic motion", _CLIP),
        TaskSpec("ucf101", "UCF101", _CLIP),
        TaskSpec("hmdb51", "HMDB51", _CLIP),
    )),
    TableSpec("scenes", "Acoustic scene classification accuracy (%) (paper Table IV)", (
        TaskSpec("synth-foa-scenes", "Synthetic FOA scenes"),
        TaskSpec("eigenscape", "EigenScape"),
        TaskSpec("synth-binaural-scenes", "Synthetic binaural scenes"),
    )),
    TableSpec("tau", "Audio-visual scene classification accuracy (%), TAU 2021 (paper Table V)", (
        TaskSpec("tau-audio", "TAU audio"),
        TaskSpec("tau-video", "TAU video"),
        TaskSpec("tau-fusion", "TAU fusion"),
    )),
    TableSpec("localization", "Localization: heatmap peak on a sounding object (%)", (
        TaskSpec("localization", "Localization"),
    )),
)
OTHER = TableSpec("other", "Other results", ())
_VARIANT = re.compile(r"^(?P<finetune>-finetune)?(?:-(?P<split>split|fold)(?P<k>\d+))?$")


@dataclass(frozen=True)
class Column:
    """One column of a table: the result ``task`` (and optionally a detail of it)."""

    task: str
    header: str
    detail: tuple[str, str] | None = None
    """(key, sub-key) into ``Result.details`` whose dict holds value/low/high/n; sub-key "" = the key itself."""

    def pick(self, results: dict[str, Result]) -> Result | None:
        """This column's result of one run, or None when missing."""
        result = results.get(self.task)
        if result is None or self.detail is None:
            return result
        key, sub = self.detail
        entry = result.details.get(key)
        if isinstance(entry, dict) and sub:
            entry = entry.get(sub)
        if not isinstance(entry, dict) or "value" not in entry:
            return None
        value = float(entry["value"])
        return Result(task=self.task, value=value, low=float(entry.get("low", value)),
                      high=float(entry.get("high", value)), n=int(entry.get("n", 0)), metric=result.metric,
                      chance=result.chance)


# ----------------------------------------------------------------- runs
@dataclass
class ReportRun:
    """One row: a run folder's label, configuration and results."""

    path: Path
    label: str
    results: dict[str, Result] = field(default_factory=dict)
    config: TrainConfig | None = None
    notes: list[str] = field(default_factory=list)


def describe_config(config: TrainConfig) -> str:
    """A paper-style row label: ``"log-mel, random crops"``, ``"FOA-IV + objects"``, ``"stereo + ICF + objects"``."""
    d = config.data
    audio = AUDIO_NAMES.get((d.format, d.features), f"{d.format} {d.features}")
    text = audio + {"random": ", random crops", "objects": " + objects", "audio": " + audio-direction crops"}.get(
        d.crops, f", {d.crops} crops")
    if list(config.stages) != ["avc", "avsa"]:
        text += f" ({' → '.join(s.upper() for s in config.stages)} only)"
    if d.clips:
        text += f", clips {Path(d.clips).stem}"
    return text


def is_run_folder(path: str | os.PathLike) -> bool:
    """A folder holding ``config.yaml``, ``metrics.jsonl`` or ``eval/``."""
    p = Path(path)
    return p.is_dir() and any((p / n).exists() for n in (CONFIG_FILE, METRICS_FILE, EVAL_DIR))


def load_run(path: str | os.PathLike, *, name: str | None = None) -> ReportRun:
    """Read one run folder; missing parts become notes, a non-run path an :class:`InputError`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such run folder")
    if not is_run_folder(path):
        raise InputError(f"{path}: not a run folder (no config.yaml, metrics.jsonl or eval/ in it)")
    run = ReportRun(path=path, label=name or "")
    cfg_file = path / CONFIG_FILE
    if cfg_file.is_file():
        try:
            run.config = from_dict(TrainConfig, yaml.safe_load(cfg_file.read_text()) or {})
        except (AvsaError, yaml.YAMLError) as exc:
            run.notes.append(f"config.yaml unreadable ({str(exc).splitlines()[0]})")
    else:
        run.notes.append("no config.yaml")
    if (path / EVAL_DIR).is_dir():
        run.results = load_results(path)
    if not run.results:
        run.notes.append("no evaluation results (eval/ empty or missing)")
    if not (path / METRICS_FILE).is_file():
        run.notes.append("no metrics.jsonl (no training curves)")
    if not run.label:
        run.label = describe_config(run.config) if run.config is not None else path.name
    return run


def load_runs(paths: Sequence[str | os.PathLike], *, names: Sequence[str] | None = None) -> list[ReportRun]:
    """Read run folders; ``names`` (one per path) replace the labels made from their configs."""
    if names and len(names) != len(paths):
        raise InputError(f"{len(names)} names for {len(paths)} runs; give one --name per run or none")
    runs = [load_run(p, name=(names[i] if names else None)) for i, p in enumerate(paths)]
    labels = [r.label for r in runs]
    for r in runs:  # same description twice (e.g. seeds): add the folder name
        if labels.count(r.label) > 1:
            r.label = f"{r.label} ({r.path.name})"
    return runs


# --------------------------------------------------------------- tables
@dataclass
class Table:
    """A table's data: ``cells[i][j]`` is run i's result in column j (None when missing)."""

    key: str
    title: str
    columns: list[Column]
    labels: list[str]
    runs: list[str]
    cells: list[list[Result | None]]

    def chances(self, j: int) -> list[float]:
        """Distinct chance levels of column j over the runs that have it."""
        return sorted({round(c.chance, 6) for c in (row[j] for row in self.cells)
                       if c is not None and c.chance is not None})

    def headers(self) -> list[str]:
        out = []
        for j, col in enumerate(self.columns):
            chances = self.chances(j)
            if len(chances) == 1:
                out.append(f"{col.header} (chance {_percent(chances[0])})")
            elif chances:
                out.append(f"{col.header} (chance {', '.join(_percent(c) for c in chances)}†)")
            else:
                out.append(col.header)
        return out

    def text_rows(self) -> list[list[str]]:
        """Cells as text, ``"83.1 [80.2, 85.9]"`` or ``"—"``."""
        return [[_cell(c) for c in row] for row in self.cells]

    def markdown(self) -> str:
        header = ["Training", *self.headers()]
        lines = [_md_row(header), _md_row(["---"] * len(header))]
        lines += [_md_row([label, *row]) for label, row in zip(self.labels, self.text_rows())]
        if any(len(self.chances(j)) > 1 for j in range(len(self.columns))):
            lines += ["", "† chance differs between runs (e.g. a different number of candidates)."]
        return "\n".join(lines)

    def write_csv(self, path: str | os.PathLike) -> Path:
        """One row per run: label, run folder, then value/low/high (percent), n and chance per column."""
        path = Path(path)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            head = ["label", "run"]
            for col in self.columns:
                head += [col.header, f"{col.header} low", f"{col.header} high", f"{col.header} n",
                         f"{col.header} chance"]
            writer.writerow(head)
            for label, run, row in zip(self.labels, self.runs, self.cells):
                line = [label, run]
                for c in row:
                    if c is None:
                        line += ["", "", "", "", ""]
                    else:
                        k = _scale(c)
                        line += [f"{k * c.value:.4g}", f"{k * c.low:.4g}", f"{k * c.high:.4g}", str(c.n),
                                 "" if c.chance is None else f"{k * c.chance:.4g}"]
                writer.writerow(line)
        return path


def _scale(r: Result) -> float:
    return 100.0 if r.metric in PERCENT_METRICS else 1.0


def _cell(r: Result | None) -> str:
    return MISSING if r is None else r.cell(percent=r.metric in PERCENT_METRICS)


def _percent(x: float) -> str:
    return f"{100 * x:.3g}%"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _variant_key(suffix: str) -> tuple[int, int, int] | None:
    """Sort key of a task-name suffix (``""``, ``-finetune``, ``-split2``, ``-finetune-fold3`` …), None if not one."""
    m = _VARIANT.match(suffix)
    if m is None:
        return None
    return (1 if m["finetune"] else 0, 0 if m["split"] is None else int(m["k"]), 1 if m["split"] == "fold" else 0)


def _variant_header(header: str, suffix: str) -> str:
    m = _VARIANT.match(suffix)
    if m["finetune"]:
        header += ", fine-tuned"
    if m["split"]:
        header += f", {m['split']} {m['k']}"
    return header


def _columns(spec: TableSpec, present: set[str]) -> tuple[list[Column], set[str]]:
    """Columns of ``spec`` for the task names in ``present``; also the names it claimed."""
    columns, claimed = [], set()
    for task in spec.tasks:
        variants = []
        for name in present:
            if name == task.base or name.startswith(task.base + "-"):
                key = _variant_key(name[len(task.base):])
                if key is not None:
                    variants.append((key, name))
        for _, name in sorted(variants):
            claimed.add(name)
            header = _variant_header(task.header, name[len(task.base):])
            columns.append(Column(name, header))
            columns += [Column(name, f"{header}, {suffix}", (key, sub)) for key, sub, suffix in task.details]
    return columns, claimed


def build_tables(runs: Sequence[ReportRun | str | os.PathLike], *, names: Sequence[str] | None = None) -> list[Table]:
    """The report's tables, each with only the columns some run has.

    Parameters
    ----------
    runs : sequence of ReportRun or run-folder paths
        Rows, in order (paths are read with :func:`load_run`).
    names : sequence of str, optional
        Row labels, one per run, replacing the labels made from their configs.

    Returns
    -------
    list of Table
        Paper-order tables with at least one non-missing cell, then "Other
        results" for task names no table knows.
    """
    if names and len(names) != len(runs):
        raise InputError(f"{len(names)} names for {len(runs)} runs; give one name per run or none")
    rows = [r if isinstance(r, ReportRun) else load_run(r) for r in runs]
    for r, name in zip(rows, names or ()):
        r.label = name
    present = {task for r in rows for task in r.results}
    tables, claimed = [], set()
    for spec in TABLES:
        columns, got = _columns(spec, present)
        claimed |= got
        tables.append(_table(spec, columns, rows))
    other = sorted(present - claimed)
    tables.append(_table(OTHER, [Column(t, t) for t in other], rows))
    return [t for t in tables if t.columns and any(c is not None for row in t.cells for c in row)]


def _table(spec: TableSpec, columns: list[Column], rows: list[ReportRun]) -> Table:
    cells = [[col.pick(r.results) for col in columns] for r in rows]
    keep = [j for j in range(len(columns)) if any(row[j] is not None for row in cells)]
    return Table(key=spec.key, title=spec.title, columns=[columns[j] for j in keep], labels=[r.label for r in rows],
                 runs=[r.path.name for r in rows], cells=[[row[j] for j in keep] for row in cells])


# --------------------------------------------------------------- curves
def read_metrics(path: str | os.PathLike) -> tuple[dict[str, list[dict]], int]:
    """Rows of ``metrics.jsonl`` by stage, sorted by step, the last row of a step kept (resumed runs).

    Returns
    -------
    by_stage : dict stage -> list of dict
    bad : int
        Lines that were not JSON objects with ``stage`` and ``step`` (e.g. cut off by a kill).
    """
    by_stage: dict[str, dict[int, dict]] = {}
    bad = 0
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            stage, step = str(row["stage"]), int(row["step"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            bad += 1
            continue
        by_stage.setdefault(stage, {})[step] = row
    order = sorted(by_stage, key=lambda s: STAGES.index(s) if s in STAGES else len(STAGES))
    return {s: [by_stage[s][k] for k in sorted(by_stage[s])] for s in order}, bad


_CURVES = (  # metric key, legend, chance as a function of (config, stage) or None
    ("avc_acc", "AVC contrastive", lambda cfg: 1.0 / cfg.avc.batch_size if cfg else None),
    ("avsa_acc", "AVSA among the clip's 4 crops", lambda cfg: 0.25),
    ("retrieval_acc", "AVSA among all crops of the batch", lambda cfg: 1.0 / (4 * cfg.avsa.batch_size) if cfg else None),
)


def plot_curves(metrics: str | os.PathLike, out: str | os.PathLike, *, config: TrainConfig | None = None,
                title: str = "") -> tuple[Path, int]:
    """Loss and contrastive accuracies vs. step of one run, one PNG.

    Steps of later stages follow the earlier ones on the x axis; a dashed line
    marks each stage boundary and dotted lines the chance levels (AVC: 1/batch,
    AVSA: 1/4, retrieval: 1/(4·batch)), batch sizes from ``config`` when given.

    Returns
    -------
    path : Path
        The PNG written.
    bad : int
        Unreadable lines of ``metrics.jsonl``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_stage, bad = read_metrics(metrics)
    fig = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    offset, colours = 0, {"avc": "tab:blue", "avsa": "tab:orange"}
    drawn_chance = set()
    for stage, rows in by_stage.items():
        steps = [offset + r["step"] for r in rows]
        if offset:
            for ax in (ax_loss, ax_acc):
                ax.axvline(offset, color="grey", linestyle="--", linewidth=1)
            ax_loss.text(offset, 1.0, f" {stage.upper()} ", transform=ax_loss.get_xaxis_transform(), va="top",
                         fontsize=8, color="grey")
        if any("loss" in r for r in rows):
            ax_loss.plot(steps, [r.get("loss", math.nan) for r in rows], color=colours.get(stage, "tab:green"),
                         label=f"{stage.upper()} loss")
        for key, name, chance_of in _CURVES:
            if not any(key in r for r in rows):
                continue
            line, = ax_acc.plot(steps, [r.get(key, math.nan) for r in rows], label=f"{name} ({stage.upper()})")
            chance = chance_of(config)
            if chance is not None and key not in drawn_chance:
                drawn_chance.add(key)
                ax_acc.axhline(chance, color=line.get_color(), linestyle=":", linewidth=1,
                               label=f"chance {_percent(chance)}")
        offset = steps[-1] if steps else offset
    ax_loss.set_ylabel("loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_xlabel("step (stages in sequence)")
    ax_acc.set_ylim(0, 1)
    for ax in (ax_loss, ax_acc):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    if not by_stage:
        ax_loss.text(0.5, 0.5, "no metrics logged", transform=ax_loss.transAxes, ha="center")
    fig.suptitle(title or Path(metrics).parent.name, fontsize=10)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out)
    return out, bad


# --------------------------------------------------------------- report
def _slugs(runs: Sequence[ReportRun]) -> list[str]:
    out: list[str] = []
    for r in runs:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", r.path.resolve().name).strip("-") or "run"
        slug, k = base, 2
        while slug in out:
            slug, k = f"{base}-{k}", k + 1
        out.append(slug)
    return out


def write_report(runs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                 names: Sequence[str] | None = None) -> Path:
    """Write ``report.md``, one CSV per table, curve PNGs and pictures of ``runs`` into ``out``.

    Parameters
    ----------
    runs : sequence of path-like
        Run folders (``avsa train`` output, or any folder with ``eval/``); rows in this order.
    out : path-like
        Report folder (created).
    names : sequence of str, optional
        Row labels, one per run (default: described from each run's config).

    Returns
    -------
    Path
        ``out/report.md``.
    """
    if not runs:
        raise InputError("give at least one run folder")
    rows = load_runs(list(runs), names=names)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(rows)
    md = ["# avsa report", "", "## Runs", "", _md_row(["Training", "Run folder", "Results", "Notes"]),
          _md_row(["---"] * 4)]
    for r in rows:
        md.append(_md_row([r.label, str(r.path), str(len(r.results)), "; ".join(r.notes) or ""]))
    md += ["", "Cells: accuracy in % with its 95 % confidence interval, `value [low, high]`; "
               f"{MISSING} = not evaluated. Chance levels are in the column headers.", ""]
    if not tables:
        md += ["No evaluation results in any run.", ""]
    for table in tables:
        csv_name = f"{table.key}.csv"
        table.write_csv(out / csv_name)
        md += [f"## {table.title}", "", table.markdown(), "", f"CSV: [{csv_name}]({csv_name})", ""]
        notes = _table_notes(table)
        if notes:
            md += notes + [""]
    md += ["## Training curves", ""]
    for r, slug in zip(rows, _slugs(rows)):
        md += [f"### {r.label}", ""]
        metrics = r.path / METRICS_FILE
        if metrics.is_file():
            png, bad = plot_curves(metrics, out / f"{slug}-curves.png", config=r.config, title=r.label)
            md += [f"![training curves of {_alt(r.label)}]({png.name})", ""]
            if bad:
                md += [f"{bad} unreadable line(s) of metrics.jsonl skipped.", ""]
        else:
            md += ["No metrics.jsonl: no training curves.", ""]
        for picture in PICTURES:
            if (r.path / picture).is_file():
                name = f"{slug}-{picture}"
                shutil.copyfile(r.path / picture, out / name)
                md += [f"![{picture} of {_alt(r.label)}]({name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path


def _alt(text: str) -> str:
    """Text safe inside a markdown image's ``[...]``."""
    return text.replace("[", "(").replace("]", ")")


def _table_notes(table: Table) -> list[str]:
    notes = []
    for j, col in enumerate(table.columns):
        if col.task == "localization" and col.detail is None:
            angles = {row[j].details.get("max_angle_deg") for row in table.cells if row[j] is not None}
            angles.discard(None)
            if angles:
                notes.append("Localization: a hit is a peak within "
                             f"{', '.join(f'{a:g}°' for a in sorted(angles))} of a sounding object.")
    if any(col.detail and col.detail[0] == "clip_accuracy" for col in table.columns):
        notes.append("Main columns: video (item) accuracy, clips averaged per video; \"clip\" columns: "
                     "accuracy of single clips.")
    return notes


# ------------------------------------------------------------------ CLI


def report(runs: Sequence[str | os.PathLike], out: str | os.PathLike, *, names: Sequence[str] | None = None) -> Path:
    """``avsa report``: :func:`write_report`, then print where the report went; returns ``report.md``."""
    path = write_report(runs, out, names=names)
    print(f"report written to {path}")
    return path
