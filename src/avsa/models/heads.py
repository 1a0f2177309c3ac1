"""The AVC and AVSA models: encoders, linear heads, translation transformers (docs/system.md §5).

Symbols follow the paper: encoder features v, a (512-d at width 1); target
embeddings ṽ = video head(v), ã = audio head(a); predictions v̂, â (128-d,
L2-normalised).

**AVC** (paper §III-B): one crop per clip. ``â = ṽ`` and ``v̂ = ã``, so the
model only returns ṽ and ã (:class:`AVCEmbeddings`).

**AVSA** (paper §III-C): K = 4 crops per clip, each with its rotated audio.
"Translation" here means: the **A2V transformer** takes the sequence of the K
audio features ``(a_1 … a_K)`` of one clip (a self-attention encoder over the
crops, no causal mask) and outputs K tokens; token k is read as the video
feature of crop k predicted from the audio of all crops, and the *video
prediction head* maps it to ``v̂_k``. The **V2A transformer** does the reverse
with ``(v_1 … v_K)`` and the *audio prediction head* gives ``â_k``. The loss
compares ``v̂_k`` with the video targets ``ṽ`` and ``â_k`` with the audio
targets ``ã`` (see :mod:`avsa.models.losses`). Without direction encoding the
transformers are permutation-equivariant over the crops: token k depends on
crop k's input and the set of the clip's other crops.

Transformers: ``depth`` post-norm ``nn.TransformerEncoderLayer`` s of width
d = encoder dim (512 at width 1), ``heads`` = 8 attention heads, feed-forward
``ff`` (2048 at full scale), dropout 0.1, ReLU.

**Direction encoding** (off by default; the paper's baseline passed crop
positions and never used them): each crop's (azimuth, elevation) in radians
becomes Fourier features ``[sin mθ, cos mθ, sin mφ, cos mφ]`` for m = 1…M
(M = 4), mapped by a learned linear layer to d and added to the tokens of the
V2A transformer: the video crops' directions, which the camera knows. The A2V
transformer's audio tokens get none by default (``a2v_directions``): the
rotation an audio token was made with is the pairing AVSA must find.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avsa.errors import ConfigError, InputError, WeightsError
from avsa.models.audio import AudioCNN
from avsa.models.video import R2Plus1D18
from avsa.spatial.sphere import direction_vector, front_rotation


@dataclass
class AVCEmbeddings:
    """AVC model output, L2-normalised.

    Attributes
    ----------
    video : Tensor, shape (N, D)
        ṽ = video head(v) (also the predicted audio â).
    audio : Tensor, shape (N, D)
        ã = audio head(a) (also the predicted video v̂).
    """

    video: torch.Tensor
    audio: torch.Tensor


@dataclass
class AVSAEmbeddings:
    """AVSA model output, L2-normalised, all of shape (B, K, D), clip-major.

    Attributes
    ----------
    video_target : ṽ = video target head(v)
    audio_target : ã = audio target head(a)
    video_pred : v̂ = video prediction head(A2V(a_1 … a_K))
    audio_pred : â = audio prediction head(V2A(v_1 … v_K))
    other_audio_target, other_video_pred : ã and v̂ of another clip's sound field rotated to the same
        crops, or None (see :meth:`AVSAModel.forward`).
    """

    video_target: torch.Tensor
    audio_target: torch.Tensor
    video_pred: torch.Tensor
    audio_pred: torch.Tensor
    other_audio_target: torch.Tensor | None = None
    """ã of another clip's sound rotated to the same crops (training with sound negatives only)."""
    other_video_pred: torch.Tensor | None = None
    """v̂ predicted from that other sound (training with sound negatives only)."""


class DirectionEncoding(nn.Module):
    """Learned projection of Fourier features of crop directions: ``(B, K, 2) → (B, K, d)``.

    Parameters
    ----------
    dim : int
        Token width d.
    frequencies : int, keyword-only
        M harmonics per angle.
    """

    def __init__(self, dim: int, *, frequencies: int = 4):
        super().__init__()
        self.register_buffer("harmonics", torch.arange(1, frequencies + 1, dtype=torch.float32), persistent=False)
        self.proj = nn.Linear(4 * frequencies, dim)

    def forward(self, directions: torch.Tensor) -> torch.Tensor:
        """``directions`` (B, K, 2) = (azimuth, elevation) in radians → (B, K, d)."""
        angles = directions.to(self.harmonics.dtype)[..., None] * self.harmonics  # B x K x 2 x M
        feats = torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # B x K x 4M
        return self.proj(feats)


def crop_pair_geometry(directions: torch.Tensor) -> torch.Tensor:
    """What the camera knows about every pair of a clip's crops, ``(B, K, 2) → (B, K, K, 6)``.

    Entry (b, j, i) is the direction of crop i's centre seen from crop j — the unit vector
    ``M_j · d(θ_i, φ_i)`` with ``M_j`` the rotation that brings crop j's centre to the front — followed by
    the world's up vector in crop j's frame, ``M_j · [0, 0, 1]`` (the horizon crop j sees). Both are
    invariant to turning the whole scene about the vertical, as the sound field turned to crop j is.
    """
    directions = directions.float()
    frames = front_rotation(directions[..., 0], directions[..., 1])  # B x K x 3 x 3
    centres = direction_vector(directions[..., 0], directions[..., 1])  # B x K x 3
    seen = torch.einsum("bjxy,biy->bjix", frames, centres)  # B x K(j) x K(i) x 3
    up = frames[..., :, 2]  # B x K x 3
    return torch.cat([seen, up[:, :, None, :].expand_as(seen)], dim=-1)


class RelativeDirectionLayer(nn.Module):
    """A post-norm transformer encoder layer whose attention knows where each crop lies from the others.

    As ``nn.TransformerEncoderLayer`` (ReLU, post-norm), except that a small MLP of the pair geometry
    (:func:`crop_pair_geometry`) adds a bias to each head's attention logit of query j on key i and a
    vector to the value that key i passes to query j: token j can then say "what crop i shows, at the
    direction where crop i lies seen from crop j", which is what the sound field turned to crop j holds.

    Parameters
    ----------
    dim, heads, ff : int
    dropout : float
    hidden : int, keyword-only
        Width of the pair MLP.
    """

    def __init__(self, dim: int, heads: int, ff: int, dropout: float, *, hidden: int = 32):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.pair = nn.Sequential(nn.Linear(6, hidden), nn.ReLU(), nn.Linear(hidden, heads + dim))
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop_attention, self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, geometry: torch.Tensor) -> torch.Tensor:
        """``x`` (B, K, d), ``geometry`` (B, K, K, 6) → (B, K, d)."""
        b, k, d = x.shape
        h = self.heads
        q, key, v = self.qkv(x).view(b, k, 3, h, d // h).permute(2, 0, 3, 1, 4)  # 3 x B x H x K x d/h
        pair = self.pair(geometry)  # B x K(j) x K(i) x (H + d)
        bias = pair[..., :h].permute(0, 3, 1, 2)  # B x H x K x K
        extra = pair[..., h:].view(b, k, k, h, d // h).permute(0, 3, 1, 2, 4)  # B x H x K(j) x K(i) x d/h
        weights = torch.softmax(q @ key.transpose(-1, -2) * (d // h) ** -0.5 + bias, dim=-1)
        weights = self.drop_attention(weights)
        mixed = weights @ v + (weights[..., None] * extra).sum(-2)  # B x H x K x d/h
        x = self.norm1(x + self.drop1(self.out(mixed.transpose(1, 2).reshape(b, k, d))))
        return self.norm2(x + self.drop2(self.ff(x)))


class TranslationTransformer(nn.Module):
    """Self-attention over the K crops of a clip: ``(B, K, d) → (B, K, d)``.

    Parameters
    ----------
    dim : int
        Token width d (the encoder's output size).
    depth, heads, ff : int, keyword-only
        Layers, attention heads (must divide ``dim``), feed-forward width.
    dropout : float, keyword-only
    direction_encoding : bool, keyword-only
        Add a :class:`DirectionEncoding` of each crop to its token.
    relative : bool, keyword-only
        Use :class:`RelativeDirectionLayer` s, whose attention knows where each crop lies seen from each
        other (needs directions, like ``direction_encoding``).
    """

    def __init__(self, dim: int, *, depth: int = 2, heads: int = 8, ff: int = 2048, dropout: float = 0.1,
                 direction_encoding: bool = False, relative: bool = False):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"transformer width {dim} is not divisible by {heads} attention heads")
        if depth < 1 or ff < 1 or not 0 <= dropout < 1:
            raise ConfigError(f"transformer needs depth >= 1, ff >= 1, 0 <= dropout < 1 "
                              f"(got depth={depth}, ff={ff}, dropout={dropout})")
        if relative:
            self.layers = nn.ModuleList(RelativeDirectionLayer(dim, heads, ff, dropout) for _ in range(depth))
            self.encoder = None
        else:
            layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=ff, dropout=dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.directions = DirectionEncoding(dim) if direction_encoding else None

    def forward(self, tokens: torch.Tensor, directions: torch.Tensor | None = None) -> torch.Tensor:
        if (self.directions is not None or self.encoder is None) and directions is None:
            raise InputError("this model uses direction encoding: pass directions (B, K, 2)")
        if self.directions is not None:
            tokens = tokens + self.directions(directions)
        if self.encoder is not None:
            return self.encoder(tokens)
        geometry = crop_pair_geometry(directions).to(tokens.dtype)
        for layer in self.layers:
            tokens = layer(tokens, geometry)
        return tokens


def load_weights(module: nn.Module, state: Mapping[str, torch.Tensor], *, prefix: str = "",
                 optional: tuple[str, ...] = ()) -> list[str]:
    """Load the weights of ``module`` from the keys of ``state`` under ``prefix``: the one weight loader.

    Parameters
    ----------
    module : nn.Module
        The model or encoder to load into.
    state : mapping of str to Tensor
        A state dict; keys starting with ``prefix`` are taken with the prefix
        stripped (e.g. ``"video_encoder."``), others ignored. A leading
        ``"module."`` (DDP) is stripped first.
    prefix : str
    optional : tuple of str
        Key prefixes of ``module`` that may be missing from ``state`` (e.g. a
        classifier's ``("fc.",)``); they keep their values.

    Returns
    -------
    list of str
        The keys of ``module`` left as they were (the missing optional ones).

    Raises
    ------
    WeightsError
        If ``state`` has no key under ``prefix``, lacks a key of ``module``
        that is not optional, has keys ``module`` does not know, or a shape
        differs — nothing is loaded then. The message names the keys.
    """
    stripped = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    selected = {k[len(prefix):]: v for k, v in stripped.items() if k.startswith(prefix)}
    target = module.state_dict()
    if not selected:
        raise WeightsError(f"cannot load {prefix or 'weights'}: the source has no key starting with {prefix!r} "
                           f"(all {len(target)} keys missing)")
    missing = sorted(k for k in set(target) - set(selected) if not k.startswith(optional))
    unexpected = sorted(set(selected) - set(target))
    if missing or unexpected:
        raise WeightsError(
            f"cannot load {prefix or 'weights'}: {len(missing)} keys missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}) — the source is not a model with the same "
            "architecture"
        )
    wrong = [f"{k}: {tuple(selected[k].shape)} vs {tuple(v.shape)}" for k, v in target.items()
             if k in selected and selected[k].shape != v.shape]
    if wrong:
        raise WeightsError(f"cannot load {prefix or 'weights'}: shapes differ (source vs model) for {wrong[:3]} "
                           "— different width or audio channels?")
    module.load_state_dict(selected, strict=False)
    return sorted(set(target) - set(selected))


class EncoderPair(nn.Module):
    """Video and audio encoders, shared by both models; loads encoders from another model."""

    def __init__(self, *, audio_channels: int, video_width: float, audio_width: float, audio_pool: str = "max"):
        super().__init__()
        self.video_encoder = R2Plus1D18(width=video_width)
        self.audio_encoder = AudioCNN(audio_channels, width=audio_width, pool=audio_pool)

    def load_encoders_from(self, source: nn.Module | Mapping[str, torch.Tensor]) -> list[str]:
        """Copy both encoders' weights (curriculum: AVSA starts from AVC's encoders).

        Parameters
        ----------
        source : nn.Module or state dict
            Any model with ``video_encoder`` and ``audio_encoder`` (AVC or AVSA,
            possibly DDP-wrapped, i.e. keys prefixed ``module.``).

        Returns
        -------
        list of str
            The keys loaded (this model's heads and transformers are untouched).

        Raises
        ------
        WeightsError
            If an encoder key is missing or unexpected in ``source`` or a shape
            differs (as :func:`load_weights`) — nothing is loaded then.
        """
        state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
        names = ("video_encoder", "audio_encoder")
        before = {name: {k: v.clone() for k, v in getattr(self, name).state_dict().items()} for name in names}
        try:
            for name in names:
                load_weights(getattr(self, name), state, prefix=name + ".")
        except WeightsError:
            for name, weights in before.items():
                getattr(self, name).load_state_dict(weights)
            raise
        return [f"{name}.{k}" for name in names for k in getattr(self, name).state_dict()]


class AVCModel(EncoderPair):
    """Stage 1: encoders + video and audio heads (linear d→D).

    Parameters
    ----------
    audio_channels : int, keyword-only
        Audio feature channels (1, 2, 4, 5, 7).
    video_width, audio_width : float, keyword-only
        Encoder width multipliers.
    dim : int, keyword-only
        D, the embedding size (128).
    """

    def __init__(self, *, audio_channels: int, video_width: float = 1.0, audio_width: float = 1.0, dim: int = 128,
                 audio_pool: str = "max"):
        super().__init__(audio_channels=audio_channels, video_width=video_width, audio_width=audio_width,
                         audio_pool=audio_pool)
        self.video_head = nn.Linear(self.video_encoder.dim, dim)
        self.audio_head = nn.Linear(self.audio_encoder.dim, dim)

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> AVCEmbeddings:
        """``video`` (N, 3, T, H, W), ``audio`` (N, C, T', F) → :class:`AVCEmbeddings` (N, D) each."""
        if video.shape[0] != audio.shape[0]:
            raise InputError(f"video batch {video.shape[0]} != audio batch {audio.shape[0]}")
        return self.heads(self.video_encoder(video), self.audio_encoder(audio))

    def heads(self, v: torch.Tensor, a: torch.Tensor) -> AVCEmbeddings:
        """Both heads on encoder features ``(..., d)`` → :class:`AVCEmbeddings` ``(..., D)``."""
        return AVCEmbeddings(video=F.normalize(self.video_head(v), dim=-1),
                             audio=F.normalize(self.audio_head(a), dim=-1))


class AVSAModel(EncoderPair):
    """Stage 2: encoders, four linear heads and the A2V / V2A translation transformers.

    Parameters
    ----------
    audio_channels : int, keyword-only
    video_width, audio_width : float, keyword-only
        Encoder widths. The transformers work at the video encoder's size d; an audio encoder of another
        size is brought to d by a linear map (``audio_proj``, applied in :meth:`heads`).
    dim : int, keyword-only
        D, the embedding size (128).
    transformer_depth, transformer_heads, transformer_ff : int, keyword-only
    dropout : float, keyword-only
    direction_encoding : bool, keyword-only
        Add crop-direction encodings to the transformer tokens (off in the paper).
    a2v_directions : bool, keyword-only
        With ``direction_encoding``: encode the directions in the audio→video transformer too. This hands
        each audio token its rotation, the label AVSA asks for; ``False`` (default): only the video→audio
        transformer gets them, so the video predictions come from the audio alone.
    relative_directions : bool, keyword-only
        With ``direction_encoding``: the video→audio transformer's attention also knows where each video
        crop lies seen from each other (:class:`RelativeDirectionLayer`). The audio→video one never does.
    """

    def __init__(self, *, audio_channels: int, video_width: float = 1.0, audio_width: float = 1.0, dim: int = 128,
                 transformer_depth: int = 2, transformer_heads: int = 8, transformer_ff: int = 2048,
                 dropout: float = 0.1, direction_encoding: bool = False, a2v_directions: bool = False,
                 relative_directions: bool = False, audio_pool: str = "max"):
        super().__init__(audio_channels=audio_channels, video_width=video_width, audio_width=audio_width,
                         audio_pool=audio_pool)
        d = self.video_encoder.dim
        # equal sizes (every shipped config): no map, and the checkpoint keys stay those of the paper's model
        self.audio_proj = nn.Identity() if self.audio_encoder.dim == d else nn.Linear(self.audio_encoder.dim, d)
        self.direction_encoding = direction_encoding
        options = dict(depth=transformer_depth, heads=transformer_heads, ff=transformer_ff, dropout=dropout)
        self.a2v = TranslationTransformer(d, **options, direction_encoding=direction_encoding and a2v_directions)
        self.v2a = TranslationTransformer(d, **options, direction_encoding=direction_encoding,
                                          relative=direction_encoding and relative_directions)
        self.video_head = nn.Linear(d, dim)  # ṽ
        self.audio_head = nn.Linear(d, dim)  # ã
        self.video_pred_head = nn.Linear(d, dim)  # v̂
        self.audio_pred_head = nn.Linear(d, dim)  # â

    def forward(self, video: torch.Tensor, audio: torch.Tensor, *, directions: torch.Tensor | None = None,
                other_audio: torch.Tensor | None = None) -> AVSAEmbeddings:
        """Embed K crops per clip.

        Parameters
        ----------
        video : Tensor, shape (B, K, 3, T, H, W)
        audio : Tensor, shape (B, K, C, T', F)
            Audio rotated so that crop k is the front.
        directions : Tensor, shape (B, K, 2), optional
            (azimuth, elevation) of each crop centre in radians; required only
            with direction encoding, ignored otherwise.
        other_audio : Tensor, shape (B, K, C, T', F), optional
            Another clip's sound field rotated to the same K crops (training
            with sound negatives): its ã and v̂ fill ``other_audio_target`` and
            ``other_video_pred``; the video is encoded once.

        Returns
        -------
        AVSAEmbeddings
            Four (B, K, D) tensors (six with ``other_audio``).
        """
        if video.ndim != 6 or audio.ndim != 5 or video.shape[:2] != audio.shape[:2]:
            raise InputError(f"AVSA needs video (B, K, 3, T, H, W) and audio (B, K, C, T', F) with equal B, K; "
                             f"got {tuple(video.shape)} and {tuple(audio.shape)}")
        if directions is not None and directions.shape != (*video.shape[:2], 2):
            raise InputError(f"directions must have shape {(*video.shape[:2], 2)}, got {tuple(directions.shape)}")
        if other_audio is not None and other_audio.shape != audio.shape:
            raise InputError(f"other_audio must have the shape of audio {tuple(audio.shape)}, "
                             f"got {tuple(other_audio.shape)}")
        b, k = video.shape[:2]
        v = self.video_encoder(video.flatten(0, 1)).unflatten(0, (b, k))  # B x K x d
        if other_audio is None:
            a = self.audio_encoder(audio.flatten(0, 1)).unflatten(0, (b, k))  # B x K x d
            return self.heads(v, a, directions=directions)
        both = self.audio_encoder(torch.cat([audio, other_audio]).flatten(0, 1)).unflatten(0, (2 * b, k))
        a, a_other = both[:b], both[b:]  # B x K x (audio encoder size) each
        e = self.heads(v, a, directions=directions)
        a_other = self.audio_proj(a_other)
        e.other_audio_target = F.normalize(self.audio_head(a_other), dim=-1)
        e.other_video_pred = F.normalize(self.video_pred_head(self.a2v(a_other, directions)), dim=-1)
        return e

    def heads(self, v: torch.Tensor, a: torch.Tensor, *, directions: torch.Tensor | None = None) -> AVSAEmbeddings:
        """The four heads and both transformers on encoder features — the one AVSA surface.

        Training (:meth:`forward`), evaluation and localization all call this.

        Parameters
        ----------
        v, a : Tensor, shape (B, K, d)
            Video and audio encoder features of the K crops of B clips.
        directions : Tensor, shape (B, K, 2), optional
            Crop centres (azimuth, elevation), radians; required with direction encoding.

        Returns
        -------
        AVSAEmbeddings
            Four (B, K, D) tensors.
        """
        if v.ndim != 3 or v.shape[:2] != a.shape[:2]:
            raise InputError(f"AVSA heads need encoder features (B, K, d) of equal B, K; "
                             f"got {tuple(v.shape)} and {tuple(a.shape)}")
        if self.direction_encoding and directions is None:
            raise InputError("this model uses direction encoding: pass the crop directions (B, K, 2)")
        a = self.audio_proj(a)
        return AVSAEmbeddings(
            video_target=F.normalize(self.video_head(v), dim=-1),
            audio_target=F.normalize(self.audio_head(a), dim=-1),
            video_pred=F.normalize(self.video_pred_head(self.a2v(a, directions)), dim=-1),
            audio_pred=F.normalize(self.audio_pred_head(self.v2a(v, directions)), dim=-1),
        )

    @staticmethod
    def alignment(e: AVSAEmbeddings) -> torch.Tensor:
        """Alignment score of each crop with its own audio, (B, K): mean of cos(v̂_k, ṽ_k) and cos(â_k, ã_k)."""
        return 0.5 * ((e.video_pred * e.video_target).sum(-1) + (e.audio_pred * e.audio_target).sum(-1))

    @staticmethod
    def spatial_scores(e: AVSAEmbeddings) -> torch.Tensor:
        """Audio of every crop against the video of every crop of the same clip, (B, K audio, K video).

        Entry (b, l, j) is the mean of cos(ã_l, â_j) and cos(v̂_l, ṽ_j): the two
        quantities the loss ranks when the audio of crop l looks for its crop.
        """
        return 0.5 * (torch.einsum("bld,bjd->blj", e.audio_target, e.audio_pred)
                      + torch.einsum("bld,bjd->blj", e.video_pred, e.video_target))

    @staticmethod
    def clip_scores(e: AVSAEmbeddings) -> torch.Tensor:
        """Audio of each clip's crop k against the video of every clip's crop k, (B audio, K, B video).

        Each clip's predictions use its own four crops as context (as in
        training), so entry (b, k, c) compares quantities of clip b with those
        of clip c only.
        """
        return 0.5 * (torch.einsum("bkd,ckd->bkc", e.audio_target, e.audio_pred)
                      + torch.einsum("bkd,ckd->bkc", e.video_pred, e.video_target))
