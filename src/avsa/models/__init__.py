"""avsa.models: encoders, heads, translation transformers, contrastive losses.

Imports only torch, :mod:`avsa.errors`, the audio inputs' table and the direction conventions
(:mod:`avsa.spatial.sphere`, for the crops' relative directions) — never data code. Inputs: video
``(N, 3, T, H, W)``, audio ``(N, C, T', F)``; AVSA batches ``(B, K, ...)``.
The builder is :func:`avsa.models.build.build_model` (``python -m
avsa.models.build`` prints parameter counts).
"""

from avsa.models.audio import AUDIO_CHANNELS, AudioCNN
from avsa.models.heads import AVCEmbeddings, AVCModel, AVSAEmbeddings, AVSAModel, TranslationTransformer
from avsa.models.losses import LossResult, avc_loss, avsa_loss
from avsa.models.video import R2Plus1D18

__all__ = [
    "AUDIO_CHANNELS", "AVCEmbeddings", "AVCModel", "AVSAEmbeddings", "AVSAModel", "AudioCNN", "LossResult",
    "R2Plus1D18", "TranslationTransformer", "avc_loss", "avsa_loss",
]
