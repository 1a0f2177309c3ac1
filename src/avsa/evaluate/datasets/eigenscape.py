"""EigenScape (FOA acoustic scene classification, 8 classes) on its release layout.

Layout read (all files in one folder, ``ROOT``)::

    ROOT/<Class>.<N>.wav        full release: 25-ch 4th-order ambiX/SN3D, 48 kHz
    ROOT/<Class>.<N>.flac       "Lite" FOA release, 4 channels (unverified)
    ROOT/<Class>.<N>.<SS>.wav   recordings already cut into 30-s segments (.flac too)
    ROOT/Metadata-EigenScape.csv   optional, not needed

FOA = the first four channels (W, Y, Z, X, SN3D), which is the internal ambiX
format, so no conversion is needed.

Protocol (the dataset's own tools): 30-s segments; 4 folds by recording number,
two recording numbers per fold and the same for every class, so no recording
site is in both train and test. No fold file ships, so :func:`eigenscape_folds`
draws the folds from a seed and :class:`EigenScapeFolds` saves/loads them.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from avsa.errors import InputError, MediaError
from avsa.evaluate.datasets.common import Item, Task, check_split_number, derived_path

CLASSES = (
    "Beach", "BusyStreet", "Park", "PedestrianZone",
    "QuietStreet", "ShoppingCentre", "TrainStation", "Woodland",
)
N_FOLDS = 4
SEGMENT_S = 30.0
FOA_CHANNELS = 4

_RECORDING = re.compile(r"^(?P<cls>[A-Za-z]+)\.(?P<rec>\d+)\.(?P<ext>wav|flac)$", re.IGNORECASE)
_SEGMENT = re.compile(r"^(?P<cls>[A-Za-z]+)\.(?P<rec>\d+)\.(?P<seg>\d+)\.(?P<ext>wav|flac)$", re.IGNORECASE)


@dataclass(frozen=True)
class EigenScapeFolds:
    """Which recording numbers form each test fold.

    Attributes
    ----------
    seed : int
        The seed the folds were drawn with.
    folds : tuple of tuple of int
        ``folds[k-1]`` = recording numbers tested in fold k (same for all classes).
    """

    seed: int
    folds: tuple[tuple[int, ...], ...]

    def test_recordings(self, fold: int) -> tuple[int, ...]:
        """Recording numbers of 1-based ``fold``."""
        check_split_number(fold, name="fold", count=len(self.folds))
        return self.folds[fold - 1]

    def save(self, path: str | os.PathLike) -> None:
        """Write the assignment as JSON (``{"seed": .., "folds": [[..], ..]}``)."""
        Path(path).write_text(json.dumps({"seed": self.seed, "folds": [list(f) for f in self.folds]}, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> EigenScapeFolds:
        """Read a file written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text())
            folds = tuple(tuple(int(r) for r in f) for f in data["folds"])
            seed = int(data["seed"])
        except FileNotFoundError as err:
            raise MediaError(path, "fold file not found") from err
        except (ValueError, KeyError, TypeError) as err:
            raise MediaError(path, f"not an EigenScape fold file ({err})") from err
        flat = [r for f in folds for r in f]
        if len(set(flat)) != len(flat):
            raise MediaError(path, f"a recording number is in two folds: {folds}")
        return cls(seed=seed, folds=folds)


def eigenscape_folds(recordings: tuple[int, ...] = tuple(range(1, 9)), *, n_folds: int = N_FOLDS, seed: int = 0) -> EigenScapeFolds:
    """Draw the cross-validation folds: recording numbers shuffled, dealt evenly.

    Parameters
    ----------
    recordings : tuple of int
        Recording numbers present (1..8 in the release).
    n_folds : int
        Number of folds (4: two recordings per fold).
    seed : int
        Same seed → same folds.

    Returns
    -------
    EigenScapeFolds
    """
    recordings = tuple(sorted(set(int(r) for r in recordings)))
    if n_folds < 2 or len(recordings) < n_folds:
        raise InputError(f"need at least n_folds={n_folds} ≥ 2 recording numbers, got {recordings}")
    order = np.random.default_rng(seed).permutation(len(recordings))
    shuffled = [recordings[i] for i in order]
    folds = tuple(tuple(sorted(int(r) for r in part)) for part in np.array_split(shuffled, n_folds))
    return EigenScapeFolds(seed=seed, folds=folds)


def index_eigenscape(root: str | os.PathLike, *, segment_s: float = SEGMENT_S) -> tuple[list[Item], tuple[str, ...]]:
    """Every segment of every recording in ``root``.

    Parameters
    ----------
    root : path-like
        The folder holding ``<Class>.<N>.wav`` (or ``.flac``, or cut segments).
    segment_s : float
        Segment length in seconds (30 in the protocol; smaller for stand-ins).
        Full recordings are cut into ``floor(duration / segment_s)`` segments;
        already-cut segment files are used whole.

    Returns
    -------
    items : list of Item
        ``group`` = ``"<Class>.<N>"`` (one site), ``audio`` set, ``video`` None.
    classes : tuple of str
        Class names found, sorted (the official 8 when complete).

    Raises
    ------
    MediaError
        If the folder holds no recognisable file, or a file has < 4 channels.
    """
    root = Path(root)
    if not root.is_dir():
        raise MediaError(root, "EigenScape folder not found")
    if segment_s <= 0:
        raise InputError(f"segment_s must be > 0, got {segment_s}")
    full: dict[tuple[str, int], Path] = {}
    cut: dict[tuple[str, int], list[tuple[int, Path]]] = {}
    for path in sorted(root.iterdir()):
        if m := _RECORDING.match(path.name):
            full[(m["cls"], int(m["rec"]))] = path
        elif m := _SEGMENT.match(path.name):
            cut.setdefault((m["cls"], int(m["rec"])), []).append((int(m["seg"]), path))
    both = sorted(set(full) & set(cut))
    if both:
        warnings.warn(f"{root}: recordings {both} exist whole and cut; using the whole files", stacklevel=2)
    keys = sorted(set(full) | set(cut))
    if not keys:
        raise MediaError(root, "no EigenScape file (<Class>.<N>.wav/.flac or <Class>.<N>.<SS>.wav)")
    classes = tuple(sorted({c for c, _ in keys}))
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        warnings.warn(f"{root}: class name(s) {unknown} are not EigenScape's {CLASSES}", stacklevel=2)
    items = []
    for cls, rec in keys:
        label = classes.index(cls)
        group = f"{cls}.{rec}"
        if (cls, rec) in full:
            path = full[(cls, rec)]
            info = _info(path)
            n_segments = math.floor(info.frames / info.samplerate / segment_s + 1e-9)
            if n_segments == 0:
                raise MediaError(path, f"shorter ({info.frames / info.samplerate:.2f} s) than one {segment_s} s segment")
            for k in range(n_segments):
                items.append(Item(id=f"{group}.{k + 1:02d}", label=label, label_name=cls, group=group,
                                  audio=str(path), start_s=k * segment_s, duration_s=segment_s))
        else:
            for seg, path in sorted(cut[(cls, rec)]):
                _info(path)
                items.append(Item(id=f"{group}.{seg:02d}", label=label, label_name=cls, group=group,
                                  audio=str(path), start_s=0.0, duration_s=None))
    return items, classes


FOLDS_NAME = "avsa-folds.json"


def eigenscape_folds_path(root: str | os.PathLike) -> Path:
    """The fold file of the EigenScape copy at ``root``: outside it (:func:`derived_path`).

    A fold file that an older avsa wrote inside the dataset folder is still read.
    """
    legacy = Path(root) / FOLDS_NAME
    return legacy if legacy.is_file() else derived_path(root, FOLDS_NAME)


def load_eigenscape(
    root: str | os.PathLike,
    *,
    fold: int,
    seed: int = 0,
    folds_path: str | os.PathLike | None = None,
    segment_s: float = SEGMENT_S,
) -> tuple[Task, EigenScapeFolds]:
    """Train/test split of one EigenScape cross-validation fold.

    Parameters
    ----------
    root : path-like
        The EigenScape folder.
    fold : int
        1-based fold number (1..4).
    seed : int
        Seed of the fold draw (ignored when ``folds_path`` exists).
    folds_path : path-like, optional
        A fold file: read if it exists, else written with the drawn folds
        (its folder created), so that every run of an experiment uses the
        same folds. Keep it out of the dataset folder
        (:func:`eigenscape_folds_path`).
    segment_s : float
        Segment length in seconds.

    Returns
    -------
    task : Task
    folds : EigenScapeFolds
        The assignment used (record it with the results).
    """
    items, classes = index_eigenscape(root, segment_s=segment_s)
    recordings = tuple(sorted({int(i.group.rsplit(".", 1)[1]) for i in items}))
    if folds_path is not None and Path(folds_path).exists():
        folds = EigenScapeFolds.load(folds_path)
        stray = set(recordings) - {r for f in folds.folds for r in f}
        if stray:
            raise MediaError(folds_path, f"recording number(s) {sorted(stray)} are in no fold")
    else:
        folds = eigenscape_folds(recordings, seed=seed)
        if folds_path is not None:
            try:
                Path(folds_path).parent.mkdir(parents=True, exist_ok=True)
                folds.save(folds_path)
            except OSError as exc:  # the draw is fixed by the seed: a run without the file still agrees
                warnings.warn(f"{folds_path}: cannot record the EigenScape folds ({exc}); they are drawn "
                              f"again from seed {seed} next time")
    check_split_number(fold, name="fold", count=len(folds.folds))
    test_recs = set(folds.test_recordings(fold))
    test = tuple(i for i in items if int(i.group.rsplit(".", 1)[1]) in test_recs)
    train = tuple(i for i in items if int(i.group.rsplit(".", 1)[1]) not in test_recs)
    protocol = (f"EigenScape fold {fold}/{len(folds.folds)} (seed {folds.seed}): test recordings "
                f"{sorted(test_recs)}, {segment_s:g}-s segments")
    return Task(name=f"eigenscape/fold{fold}", classes=classes, train=train, test=test, protocol=protocol), folds


def _info(path: Path):
    try:
        info = soundfile.info(str(path))
    except RuntimeError as err:  # soundfile.LibsndfileError derives from it
        raise MediaError(path, f"cannot read audio header ({err})") from err
    if info.channels < FOA_CHANNELS:
        raise MediaError(path, f"{info.channels} channel(s); EigenScape FOA needs the first 4 (W, Y, Z, X)")
    return info
