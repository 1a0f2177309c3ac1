"""UCF101 (101 actions, 3 official splits) on its release layout.

Layout read::

    ROOT/UCF-101/<Class>/v_<Class>_gGG_cCC.avi
    ROOT/ucfTrainTestlist/classInd.txt       "1 ApplyEyeMakeup" (1-based, CRLF)
    ROOT/ucfTrainTestlist/trainlist0k.txt    "<Class>/<file>.avi <index>"
    ROOT/ucfTrainTestlist/testlist0k.txt     "<Class>/<file>.avi" (index optional)

Class folders and files are matched case-insensitively (``HandstandPushups/``
holds ``v_HandStandPushups_…``). ``ROOT`` may also be the ``UCF-101`` folder
itself with ``ucfTrainTestlist`` beside it. Items are whole videos; ``group``
= ``<Class>_gGG``, the long source video the clips were cut from (split k
tests whole groups), so confidence intervals resample groups.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from avsa.errors import MediaError
from avsa.evaluate.datasets.common import CaseInsensitiveTree, Item, Task, check_split_number, read_lines

N_SPLITS = 3
_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<g>\d+)_c(?P<c>\d+)\.avi$", re.IGNORECASE)


def find_ucf101(root: str | os.PathLike) -> tuple[Path, Path]:
    """(video folder, list folder) of a UCF101 copy rooted at ``root``."""
    root = Path(root)
    for videos, lists in ((root / "UCF-101", root / "ucfTrainTestlist"),
                          (root, root / "ucfTrainTestlist"),
                          (root, root.parent / "ucfTrainTestlist")):
        if videos.is_dir() and lists.is_dir():
            return videos, lists
    raise MediaError(root, "no UCF-101/ and ucfTrainTestlist/ folders here")


def read_class_index(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from ``classInd.txt`` in index order (index 1 → position 0).

    Raises
    ------
    MediaError
        A line is not ``<int> <name>`` or the indices are not 1..K.
    """
    entries = {}
    for number, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise MediaError(path, f"line {number}: expected '<index> <Class>', got {line!r}")
        entries[int(parts[0])] = parts[1]
    if sorted(entries) != list(range(1, len(entries) + 1)):
        raise MediaError(path, f"class indices are not 1..{len(entries)}")
    return tuple(entries[i] for i in range(1, len(entries) + 1))


def load_ucf101(root: str | os.PathLike, *, split: int = 1) -> Task:
    """Train/test items of one official UCF101 split.

    Parameters
    ----------
    root : path-like
        Folder holding ``UCF-101/`` and ``ucfTrainTestlist/``.
    split : int
        1, 2 or 3.

    Returns
    -------
    Task

    Raises
    ------
    MediaError
        Missing list or video, malformed line, class index disagreeing with
        the path, unknown class.
    """
    check_split_number(split, name="split", count=N_SPLITS)
    videos, lists = find_ucf101(root)
    classes = read_class_index(lists / "classInd.txt")
    tree = CaseInsensitiveTree(videos)
    train = _read_list(lists / f"trainlist0{split}.txt", classes, tree)
    test = _read_list(lists / f"testlist0{split}.txt", classes, tree)
    protocol = f"UCF101 split {split}: trainlist0{split} → testlist0{split}"
    return Task(name=f"ucf101/split{split}", classes=classes, train=train, test=test, protocol=protocol)


def _read_list(path: Path, classes: tuple[str, ...], tree: CaseInsensitiveTree) -> tuple[Item, ...]:
    lower = [c.lower() for c in classes]
    items = []
    for number, line in read_lines(path):
        where = f"{path.name} line {number}"
        parts = line.split()
        if len(parts) not in (1, 2) or (len(parts) == 2 and not parts[1].isdigit()):
            raise MediaError(path, f"line {number}: expected '<Class>/<file>.avi [<index>]', got {line!r}")
        relative = parts[0].replace("\\", "/")
        class_name = relative.split("/")[0]
        if class_name.lower() not in lower:
            raise MediaError(path, f"line {number}: class {class_name!r} not in classInd.txt")
        label = lower.index(class_name.lower())
        if len(parts) == 2 and int(parts[1]) != label + 1:
            raise MediaError(path, f"line {number}: index {parts[1]} but classInd.txt gives {class_name} = {label + 1}")
        file = tree.find(relative, source=where)
        m = _NAME.match(file.name)
        if m is None:
            raise MediaError(file, f"name is not v_<Class>_gGG_cCC.avi ({where})")
        items.append(Item(id=file.stem, label=label, label_name=classes[label],
                          group=f"{classes[label]}_g{int(m['g']):02d}", video=str(file)))
    if not items:
        raise MediaError(path, "empty list")
    return tuple(items)
