"""The paper's ambisonic validity test per file or clip (``avsa check PATH...``).

ρ = E_xyz / E_w after a 4 kHz low-pass (paper Eq. 13, ``docs/conventions.md`` §8); a file
passes when |ρ − 1| ≤ τ. PATH may be media files, folders of them (the
layouts of ``sources.py``), or a prepared cache (one row per ``ok`` clip, ρ
from the cached ambiX audio). Media files are read with the layout ``avsa
prepare --layout auto`` would use, so a FuMa or N3D file read as ambiX shows
ρ ≈ 2 or 3 and an up-mixed stereo file ρ ≈ 0.

ρ compares energies only, so it cannot see a mix-up that keeps them
(:data:`BLIND_SPOTS`, printed under every table): X and Y swapped (any
permutation of X, Y, Z), a directional channel with its sign flipped (a
mirrored scene), or FuMa channel order with SN3D gains. Those need a source of
known direction (the synthetic world's ground truth).

``--av`` runs the audio-visual convention check of :mod:`avsa.data.avcheck`
instead (PATH: prepared caches with detections): it names the signed
permutation of X, Y, Z that makes the audio's intensity point at the detected
objects, with its margin, or says that the candidates tie or that none fits.

``--subset`` writes the clip lists of the paper's Table I: ``all``, ``pass``
(|ρ − 1| ≤ τ), ``fail``, or ``random`` (a seeded random subset of all
measured entries of the same size as ``pass``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avsa.errors import AvsaError, InputError, MediaError
from avsa.media.cache import MANIFEST_NAME, Cache, write_csv_atomic
from avsa.media.layouts import decide_layout
from avsa.media.sources import find_sources
from avsa.spatial.ambisonics import diagnose

CHECK_COLUMNS = ("name", "rho", "result", "convention", "reason")
CHECK_SECONDS = 60.0  # media files: ρ over at most this much audio from the start
BLIND_SPOTS = (
    "rho compares channel energies only, so a file passes whatever it holds if the energies are right; "
    "it cannot detect: X and Y swapped (any permutation of X, Y, Z), a sign-flipped Y, X or Z (a mirrored "
    "scene), or FuMa channel order (W, X, Y, Z) with SN3D gains. Check those with a source of known direction."
)
"""What a pass of the validity test does not rule out."""


@dataclass(frozen=True)
class CheckRow:
    """The validity test of one file or clip.

    ``result`` is ``pass`` / ``fail`` (|ρ − 1| ≤ τ or not) or ``error``.
    """

    name: str
    rho: float
    result: str
    convention: str
    reason: str

    def to_row(self) -> dict[str, str]:
        return {
            "name": self.name, "rho": f"{self.rho:.4f}", "result": self.result,
            "convention": self.convention, "reason": self.reason,
        }


def _verdict(name: str, foa: np.ndarray, sample_rate: int, tau: float) -> CheckRow:
    diagnosis = diagnose(foa, sample_rate, tolerance=tau)
    rho = float(diagnosis.ratio)
    result = "pass" if math.isfinite(rho) and abs(rho - 1.0) <= tau else "fail"
    return CheckRow(name, rho, result, diagnosis.convention, diagnosis.reason)


def check_cache(cache: Cache, *, tau: float) -> list[CheckRow]:
    """One row per ``ok`` clip of a prepared cache, from its cached audio."""
    import soundfile

    rows = []
    for clip in cache.clips():
        path = cache.audio_path(clip)
        try:
            audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
            rows.append(CheckRow(clip.clip_id, math.nan, "error", "", f"{path}: unreadable ({exc})"))
            continue
        rows.append(_verdict(clip.clip_id, audio.T, rate, tau))
    return rows


def check_media(path: Path, *, tau: float, sample_rate: int = 24000) -> list[CheckRow]:
    """One row per source found at ``path`` (a media file or a folder)."""
    from avsa.media import io

    rows = []
    root = path if path.is_dir() else path.parent
    for source in find_sources(path):
        name = source.video.relative_to(root).as_posix()
        try:
            info = io.probe(source.audio)
            if not info.has_audio:
                raise MediaError(source.audio, "no audio stream")
            layout = decide_layout(info.audio_channels, info.audio_codec, None, "auto")
            foa = io.read_audio(source.audio, duration_s=min(info.duration_s or CHECK_SECONDS, CHECK_SECONDS),
                                sample_rate=sample_rate, layout=layout)
            if foa.shape[-1] == 0:
                raise MediaError(source.audio, "no audio samples")
        except AvsaError as exc:  # io lets no decoder exception escape
            problem = exc.problem if isinstance(exc, MediaError) else str(exc)
            rows.append(CheckRow(name, math.nan, "error", "", problem))
            continue
        rows.append(_verdict(name, np.asarray(foa, dtype=np.float32), sample_rate, tau))
    return rows


def check_paths(paths: list[Path], *, tau: float = 0.1) -> list[CheckRow]:
    """Rows of every PATH (media file, folder, or prepared cache)."""
    if not tau > 0:
        raise InputError(f"--tau {tau}: must be positive")
    rows: list[CheckRow] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path} does not exist")
        if path.is_dir() and (path / MANIFEST_NAME).is_file():
            rows.extend(check_cache(Cache(path), tau=tau))
        else:
            rows.extend(check_media(path, tau=tau))
    return rows


def subset(rows: list[CheckRow], kind: str, *, seed: int = 0) -> list[str]:
    """Names of the Table I subset ``kind`` (all / pass / fail / random).

    ``random`` draws, with ``seed``, as many of the measured rows as pass.
    """
    measured = [row for row in rows if row.result != "error"]
    if kind == "all":
        return [row.name for row in measured]
    if kind in ("pass", "fail"):
        return [row.name for row in measured if row.result == kind]
    if kind == "random":
        n_pass = sum(1 for row in measured if row.result == "pass")
        picked = np.random.default_rng(seed).choice(len(measured), size=n_pass, replace=False)
        return [measured[i].name for i in sorted(picked)]
    raise InputError(f"--subset {kind!r}: expected all, pass, fail or random")


def format_table(rows: list[CheckRow], *, tau: float) -> str:
    """The rows as a text table with a pass count."""
    width = max([len("file/clip")] + [len(row.name) for row in rows])
    lines = [f"{'file/clip':<{width}}  {'rho':>7}  result  {'convention':<13}  reason"]
    for row in rows:
        rho = f"{row.rho:7.3f}" if math.isfinite(row.rho) else f"{'-':>7}"
        lines.append(f"{row.name:<{width}}  {rho}  {row.result:<6}  {row.convention:<13}  {row.reason}")
    n_pass = sum(1 for row in rows if row.result == "pass")
    lines.append(f"{n_pass} of {len(rows)} pass |rho - 1| <= {tau:g}")
    return "\n".join(lines)


def check_validity(paths: list[Path], *, tau: float = 0.1, csv: Path | None = None, subset_kind: str | None = None,
                   seed: int = 0, out: Path | None = None) -> list[CheckRow]:
    """``avsa check``: the validity test of every PATH, printed as a table, optionally saved.

    Parameters
    ----------
    paths : list of Path
        Media files, folders of them, or prepared caches.
    tau : float
        A row passes when |ρ − 1| ≤ tau.
    csv : Path, optional
        Write the rows here (columns :data:`CHECK_COLUMNS`).
    subset_kind : {"all", "pass", "fail", "random"}, optional
        Write this Table I clip list (:func:`subset`) to ``out``.
    seed : int
        Seed of ``subset_kind="random"``.
    out : Path, optional
        The clip list file; needed with ``subset_kind``.

    Returns
    -------
    list of CheckRow
    """
    if subset_kind and out is None:
        raise InputError("--subset needs --out LIST")
    rows = check_paths(list(paths), tau=tau)
    print(format_table(rows, tau=tau))
    print(f"note: {BLIND_SPOTS}")
    if csv is not None:
        write_csv_atomic(csv, CHECK_COLUMNS, [row.to_row() for row in rows])
    if subset_kind:
        names = subset(rows, subset_kind, seed=seed)
        from avsa.media.outputs import safe_output

        with safe_output(out, overwrite=True) as temporary:  # `avsa check` refuses an existing --out before
            temporary.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
        print(f"{len(names)} {subset_kind} entries written to {out}")
    return rows
