"""avsa: audio-visual spatial alignment on 360° video with first-order Ambisonics.

The Python API::

    import avsa

    model = avsa.load("demo_out/model")         # a saved model folder, a run folder or a checkpoint
    emb, times = model.embed_audio(foa, sr)     # foa (4, N) ambiX (ACN, SN3D) → (T, D), seconds

``avsa.load`` and ``avsa.Model`` (:mod:`avsa.inference.model`) are imported
on first use, so ``import avsa`` stays cheap.

Layers, imported only downwards:

``avsa.spatial`` (directions, Ambisonics, projection, features; pure functions)
→ ``avsa.media`` (decoding, the synthetic world, prepare/check, clips)
→ ``avsa.data`` (detection, crop selection, sample assembly, loaders)
→ ``avsa.models`` (encoders, heads, transformers, losses)
→ ``avsa.train`` → ``avsa.inference`` → ``avsa.evaluate`` → ``avsa.cli``;
this package's top level only re-exports ``avsa.inference.model``.
"""

from avsa.errors import AvsaError, ConfigError, InputError, MediaError

__version__ = "0.1.0"

__all__ = ["AvsaError", "ConfigError", "InputError", "MediaError", "Model", "load", "__version__"]

_LAZY = {"load": "load", "Model": "Model"}
"""Names of :mod:`avsa.inference.model` served by :func:`__getattr__` on first use."""


def __getattr__(name: str):
    if name in _LAZY:
        from avsa.inference import model

        value = getattr(model, _LAZY[name])
        globals()[name] = value
        return value
    raise AttributeError(f"module 'avsa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
