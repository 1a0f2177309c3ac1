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


def exit_with_parent(parent_pid: int, *, interval_s: float = 0.5) -> None:
    """Initializer of a pool worker: end this process soon after ``parent_pid`` dies.

    A worker whose parent was killed would otherwise finish its task and then
    wait for work forever. A daemon thread checks every ``interval_s`` whether
    the process has been re-parented (its parent id is no longer
    ``parent_pid``) and then exits at once, without cleanup: the parent that
    would collect results is gone, and a cache writer's temporaries are
    removed by the next run.
    """
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
