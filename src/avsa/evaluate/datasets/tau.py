"""TAU Audio-Visual Urban Scenes 2021, development set (10 scene classes).

Layout read (``ROOT`` = the folder holding ``audio/`` and ``video/``)::

    ROOT/audio/<scene>-<city>-<location>-<segment>.wav   binaural, 2 ch
    ROOT/video/<same stem>.mp4
    META/meta.csv                       filename_audio filename_video scene_label identifier
    META/evaluation_setup/fold1_train.csv      filename_audio filename_video scene_label
    META/evaluation_setup/fold1_evaluate.csv   (same columns)
    META/evaluation_setup/fold1_test.csv       (no label: not used)

``META`` is ``ROOT`` itself or a ``*-development.meta/`` (any ``*.meta``) folder
inside it (unverified: both accepted). Files are tab-separated with a header
row; CRLF line endings are accepted. Paths in the tables are relative to
``ROOT``. The official protocol trains on ``fold1_train`` and tests on
``fold1_evaluate``; items are grouped by recording location
(``identifier`` = ``<city>-<location>``), which the official split never
shares between train and evaluate.
"""

from __future__ import annotations

import os
from pathlib import Path

from avsa.errors import InputError, MediaError
from avsa.evaluate.datasets.common import Item, Task, check_split_number, read_table

CLASSES = (
    "airport", "bus", "metro", "metro_station", "park",
    "public_square", "shopping_mall", "street_pedestrian", "street_traffic", "tram",
)
MODALITIES = ("audio", "video", "both")
_COLUMNS = ("filename_audio", "filename_video", "scene_label")


def find_meta_dir(root: str | os.PathLike) -> Path:
    """The folder holding ``evaluation_setup/``: ``root`` or its ``*.meta`` sub-folder.

    Raises
    ------
    MediaError
        If neither has an ``evaluation_setup`` folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise MediaError(root, "TAU dataset folder not found")
    candidates = [root] + sorted(p for p in root.glob("*.meta") if p.is_dir())
    for candidate in candidates:
        if (candidate / "evaluation_setup").is_dir():
            return candidate
    raise MediaError(root / "evaluation_setup", "not found (looked in the root and in *-development.meta/)")


def load_tau(root: str | os.PathLike, *, fold: int = 1, modality: str = "both") -> Task:
    """Train (``fold1_train``) / test (``fold1_evaluate``) split of TAU AV 2021.

    Parameters
    ----------
    root : path-like
        Dataset folder (holds ``audio/`` and ``video/``).
    fold : int
        The evaluation-setup fold; the release has only fold 1.
    modality : {"audio", "video", "both"}
        Which files each item carries (and which must exist).

    Returns
    -------
    Task
        ``classes`` = the scene labels of ``meta.csv`` (or of the fold files),
        sorted — the official ten when complete. ``group`` = the location
        identifier.

    Raises
    ------
    MediaError
        Missing meta/fold file or media file, malformed row, unknown label.
    """
    if modality not in MODALITIES:
        raise InputError(f"modality must be one of {MODALITIES}, got {modality!r}")
    check_split_number(fold, name="fold", count=1)  # the release has fold 1 only
    root = Path(root)
    meta_dir = find_meta_dir(root)
    setup = meta_dir / "evaluation_setup"
    train_rows = read_table(setup / f"fold{fold}_train.csv", required=_COLUMNS)
    test_rows = read_table(setup / f"fold{fold}_evaluate.csv", required=_COLUMNS)
    identifiers: dict[str, str] = {}
    labels: set[str] = set()
    meta_path = meta_dir / "meta.csv"
    if meta_path.is_file():
        for row in read_table(meta_path, required=_COLUMNS + ("identifier",)):
            identifiers[row["filename_audio"]] = row["identifier"]
            labels.add(row["scene_label"])
    else:
        labels = {r["scene_label"] for r in train_rows + test_rows}
    classes = tuple(sorted(labels))
    train = tuple(_item(r, setup / f"fold{fold}_train.csv", root, classes, identifiers, modality) for r in train_rows)
    test = tuple(_item(r, setup / f"fold{fold}_evaluate.csv", root, classes, identifiers, modality) for r in test_rows)
    if not train or not test:
        raise MediaError(setup, f"fold {fold} has {len(train)} training and {len(test)} evaluation rows")
    protocol = f"TAU AV 2021 dev, fold{fold}_train → fold{fold}_evaluate, {modality}"
    return Task(name=f"tau/{modality}", classes=classes, train=train, test=test, protocol=protocol)


def _item(row: dict[str, str], table: Path, root: Path, classes: tuple[str, ...],
          identifiers: dict[str, str], modality: str) -> Item:
    where = f"{table.name} line {row['_line']}"
    label = row["scene_label"]
    if label not in classes:
        raise MediaError(table, f"line {row['_line']}: scene_label {label!r} not in meta.csv's classes {classes}")
    audio, video = root / row["filename_audio"], root / row["filename_video"]
    for path, used in ((audio, modality in ("audio", "both")), (video, modality in ("video", "both"))):
        if used and not path.is_file():
            raise MediaError(path, f"file listed in {where} not found")
    stem = Path(row["filename_audio"]).stem
    group = identifiers.get(row["filename_audio"]) or _location(stem)
    return Item(id=stem, label=classes.index(label), label_name=label, group=group,
                audio=str(audio) if modality != "video" else None,
                video=str(video) if modality != "audio" else None)


def _location(stem: str) -> str:
    """``<city>-<location>`` from ``<scene>-<city>-<location>-<segment>``."""
    parts = stem.split("-")
    return "-".join(parts[1:3]) if len(parts) >= 4 else stem
