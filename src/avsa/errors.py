"""The project's one exception family.

Every error a user can cause derives from :class:`AvsaError`; its message says
what was wrong (naming the bad value or file) and, where it helps, what to do.
"""

from __future__ import annotations

import os


class AvsaError(Exception):
    """Base class of every error avsa raises on bad user input."""


class InputError(AvsaError, ValueError):
    """A bad argument: wrong shape, channel count, dtype, NaN, unknown name."""


class ConfigError(AvsaError, ValueError):
    """A bad configuration: unknown key, wrong type, impossible value."""


class WeightsError(ConfigError, InputError):
    """Weights that do not fit a model: keys missing or unexpected, or shapes that differ."""


class MediaError(AvsaError):
    """A media file that cannot be used; the message names the file.

    Parameters
    ----------
    path : str or os.PathLike
        The offending file.
    problem : str
        What is wrong with it, in a few words ("no audio stream", ...).
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
