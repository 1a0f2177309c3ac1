"""HMDB51 (51 actions, 3 official splits) on its release layout.

Layout read::

    ROOT/<class>/<video>.avi
    SPLITS/<class>_test_split{1,2,3}.txt   "<video>.avi <code>", code 1 = train,
                                           2 = test, 0 = unused; lines may end
                                           with a space

``SPLITS`` is ``testTrainMulti_7030_splits`` inside ``ROOT`` or beside it,
unless given. Classes are the sorted class names of the split files. Items
are whole videos; ``group`` = the video stem (the lists give no source
video).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from avsa.errors import MediaError
from avsa.evaluate.datasets.common import CaseInsensitiveTree, Item, Task, check_split_number, read_lines

N_SPLITS = 3
SPLITS_DIR = "testTrainMulti_7030_splits"
_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>\d)\.txt$")


def find_splits_dir(root: str | os.PathLike) -> Path:
    """``testTrainMulti_7030_splits`` inside ``root`` or beside it."""
    root = Path(root)
    for candidate in (root / SPLITS_DIR, root.parent / SPLITS_DIR):
        if candidate.is_dir():
            return candidate
    raise MediaError(root / SPLITS_DIR, "split folder not found (looked inside and beside the video folder)")


def load_hmdb51(root: str | os.PathLike, *, split: int = 1, splits_dir: str | os.PathLike | None = None) -> Task:
    """Train (code 1) / test (code 2) items of one official HMDB51 split.

    Parameters
    ----------
    root : path-like
        Folder of the ``<class>/`` video folders.
    split : int
        1, 2 or 3.
    splits_dir : path-like, optional
        The split-file folder, if not found automatically.

    Returns
    -------
    Task

    Raises
    ------
    MediaError
        No split file, malformed line, unknown code, missing video.
    """
    check_split_number(split, name="split", count=N_SPLITS)
    splits = Path(splits_dir) if splits_dir is not None else find_splits_dir(root)
    files = sorted(p for p in splits.glob(f"*_test_split{split}.txt") if _SPLIT_FILE.match(p.name))
    if not files:
        raise MediaError(splits, f"no <class>_test_split{split}.txt file")
    classes = tuple(sorted(_SPLIT_FILE.match(p.name)["cls"] for p in files))
    tree = CaseInsensitiveTree(root)
    train, test = [], []
    for path in files:
        class_name = _SPLIT_FILE.match(path.name)["cls"]
        label = classes.index(class_name)
        for number, line in read_lines(path):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise MediaError(path, f"line {number}: expected '<video>.avi <0|1|2>', got {line!r}")
            if parts[1] == "0":
                continue
            file = tree.find(f"{class_name}/{parts[0]}", source=f"{path.name} line {number}")
            item = Item(id=file.stem, label=label, label_name=class_name, group=file.stem, video=str(file))
            (train if parts[1] == "1" else test).append(item)
    if not train or not test:
        raise MediaError(splits, f"split {split} has {len(train)} training and {len(test)} test videos")
    protocol = f"HMDB51 split {split}: code 1 → code 2 of *_test_split{split}.txt"
    return Task(name=f"hmdb51/split{split}", classes=classes, train=tuple(train), test=tuple(test), protocol=protocol)
