"""The audio inputs of the encoders: formats, features and their channel counts.

The one table of them, below every layer that uses it (the feature stack of
:mod:`avsa.spatial.features`, the samples and statistics of :mod:`avsa.data`,
the audio encoder of :mod:`avsa.models`, the training config); it imports
nothing, so :mod:`avsa.models` can use it and still depend on torch only.

==========  ==============================  =========  =============================================
format      channels (each a log-mel one)   features   channels added to the format's
==========  ==============================  =========  =============================================
``ambi``    4 (the rotated W, Y, Z, X)      ``mel``    0
``mono``    1 (a cardioid at the crop)      ``iv``     3: FOA intensity vector (``ambi`` only)
``stereo``  2 (the ±90° hypercardioids)     ``icf``    3: ILD, cos IPD, sin IPD (``stereo`` only)
==========  ==============================  =========  =============================================

So the valid (format, features) pairs give 4, 1, 2, 7 and 5 channels.
"""

from __future__ import annotations

from avsa.errors import ConfigError

FORMAT_CHANNELS: dict[str, int] = {"ambi": 4, "mono": 1, "stereo": 2}
"""Channels of each audio format: its log-mel channels, the first channels of every feature stack."""
FORMATS: tuple[str, ...] = tuple(FORMAT_CHANNELS)
FEATURES: tuple[str, ...] = ("mel", "iv", "icf")
FEATURE_EXTRA_CHANNELS: dict[str, int] = {"mel": 0, "iv": 3, "icf": 3}
"""Channels each kind of features adds after the log-mel ones."""
FEATURE_FORMAT: dict[str, str] = {"iv": "ambi", "icf": "stereo"}
"""The one format a kind of features needs (``mel`` takes every format)."""
AUDIO_INPUTS: dict[tuple[str, str], int] = {
    (fmt, features): FORMAT_CHANNELS[fmt] + FEATURE_EXTRA_CHANNELS[features]
    for fmt in FORMATS for features in FEATURES if FEATURE_FORMAT.get(features, fmt) == fmt
}
"""Channels of the encoder's audio input for each valid (format, features) pair."""
AUDIO_CHANNELS: tuple[int, ...] = tuple(sorted(set(AUDIO_INPUTS.values())))
"""Input channels the audio encoder takes: (1, 2, 4, 5, 7)."""


def check_audio_config(fmt: str, features: str) -> int:
    """Validate a (format, features) pair; returns its channel count.

    Raises
    ------
    ConfigError
        For an unknown name or a pair that does not exist (``mono+iv``,
        ``ambi+icf``, ``stereo+iv``, ``mono+icf``).
    """
    if fmt not in FORMAT_CHANNELS:
        raise ConfigError(f"unknown audio format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if features not in FEATURES:
        raise ConfigError(f"unknown audio features {features!r}; expected one of {', '.join(FEATURES)}")
    if (fmt, features) not in AUDIO_INPUTS:
        raise ConfigError(
            f"format {fmt!r} with features {features!r} is not a valid combination "
            "(iv needs format ambi, icf needs format stereo)"
        )
    return AUDIO_INPUTS[(fmt, features)]
