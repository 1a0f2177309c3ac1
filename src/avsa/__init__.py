"""avsa: audio-visual spatial alignment on 360° video with first-order Ambisonics.

Layers, imported only downwards:

``avsa.spatial`` (directions, Ambisonics, projection, features; pure functions)
→ ``avsa.media`` (decoding, the synthetic world, prepare/check, clips)
→ ``avsa.data`` (detection, crop selection, sample assembly, loaders)
→ ``avsa.models`` (encoders, heads, transformers, losses)
→ ``avsa.train`` / ``avsa.evaluate`` → ``avsa.cli``.
"""

from avsa.errors import AvsaError, ConfigError, InputError, MediaError

__version__ = "0.1.0"

__all__ = ["AvsaError", "ConfigError", "InputError", "MediaError", "__version__"]
