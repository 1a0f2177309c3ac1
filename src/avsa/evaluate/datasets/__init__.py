"""Downstream datasets on their official layouts (index only; decoding is separate).

``load_eigenscape``, ``load_tau``, ``load_ucf101``, ``load_hmdb51`` return a
:class:`~avsa.evaluate.datasets.common.Task` of :class:`Item`; the test
suite's ``tests/standins.py`` writes tiny copies of each layout.
"""

from avsa.evaluate.datasets.common import Item, Task
from avsa.evaluate.datasets.eigenscape import (
    EigenScapeFolds, eigenscape_folds, eigenscape_folds_path, index_eigenscape, load_eigenscape,
)
from avsa.evaluate.datasets.hmdb51 import load_hmdb51
from avsa.evaluate.datasets.tau import load_tau
from avsa.evaluate.datasets.ucf101 import load_ucf101

__all__ = [
    "EigenScapeFolds", "Item", "Task", "eigenscape_folds", "eigenscape_folds_path", "index_eigenscape",
    "load_eigenscape", "load_hmdb51", "load_tau", "load_ucf101",
]
