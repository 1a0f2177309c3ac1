"""Worker processes of the parallel media jobs (``avsa synth``, ``avsa prepare``)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext


def spawn_context() -> BaseContext:
    """The ``spawn`` start method for process pools.

    Forking a process that already runs threads (PyTorch's intra-op pool,
    OpenMP, a tqdm monitor) can copy a held lock into the child, which then
    waits forever; this happened when ``avsa experiments`` ran ``prepare``
    after training code. Spawned workers start clean.
    """
    return multiprocessing.get_context("spawn")
