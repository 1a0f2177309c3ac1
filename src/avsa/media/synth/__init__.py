"""The synthetic 360° audio-visual world (``avsa synth``).

Public API: :class:`SynthConfig`, :func:`render_scene` (arrays + ground
truth for one seed), :func:`write_scene` (MP4 + JSON), :data:`SCENES` (scene
classes), :data:`CLASSES` (object classes), :func:`equirect_to_eac`.
"""

from avsa.media.synth.config import CONVENTIONS, PROJECTIONS, SynthConfig
from avsa.media.synth.eac import equirect_to_eac
from avsa.media.synth.scenes import CLASSES, SCENES, scene_index
from avsa.media.synth.world import SynthScene, render_scene, write_scene

__all__ = ["CLASSES", "CONVENTIONS", "PROJECTIONS", "SCENES", "SynthConfig", "SynthScene",
           "equirect_to_eac", "render_scene", "scene_index", "write_scene"]
