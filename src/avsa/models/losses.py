"""Contrastive losses of AVC and AVSA (paper Eqs. 1–2, docs/system.md §5).

Cosine similarities divided by a temperature τ (0.07) are the logits of a
cross-entropy whose target is the matching pair; the two directions are
averaged. Under DDP the keys (candidates) of every process are gathered with
gradients (:mod:`avsa.models.gather`), the queries stay local, and the
loss is the mean over this process's queries — so the DDP-averaged gradient
equals that of one process holding the global batch.

Direction names: ``v2a`` compares the audio predicted from video (â) with the
audio targets (ã); ``a2v`` compares the video predicted from audio (v̂) with
the video targets (ṽ). In AVC â = ṽ and v̂ = ã (paper §III-B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avsa.errors import InputError
from avsa.models.gather import all_gather_with_grad, world
from avsa.models.heads import AVSAEmbeddings

NEGATIVES = ("paper", "same-crop")


@dataclass
class LossResult:
    """A loss and its contrastive accuracies.

    Attributes
    ----------
    loss : Tensor, scalar
        Differentiable.
    metrics : dict of str to float
        Detached accuracies in [0, 1] (names listed by each loss).
    """

    loss: torch.Tensor
    metrics: dict[str, float]


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise InputError(f"temperature must be positive, got {temperature}")


def avc_loss(video_emb: torch.Tensor, audio_emb: torch.Tensor, *, temperature: float = 0.07) -> LossResult:
    """AVC loss over the (global) batch, both directions averaged.

    Parameters
    ----------
    video_emb : Tensor, shape (N, D)
        ṽ (= â), one crop per clip; normalised here (cosine similarity).
    audio_emb : Tensor, shape (N, D)
        ã (= v̂), row i from the same clip as ``video_emb[i]``.
    temperature : float, keyword-only
        τ > 0.

    Returns
    -------
    LossResult
        ``loss = ½ [CE(ṽ_i·ã_j / τ, j = i) + CE(ã_i·ṽ_j / τ, j = i)]`` averaged
        over i; metrics ``avc_acc_v2a`` (the clip's own audio ranks first among
        all N_global audios), ``avc_acc_a2v``, ``avc_acc`` (their mean).
    """
    _check_temperature(temperature)
    if video_emb.ndim != 2 or video_emb.shape != audio_emb.shape:
        raise InputError(f"avc_loss needs video and audio embeddings of equal shape (N, D), "
                         f"got {tuple(video_emb.shape)} and {tuple(audio_emb.shape)}")
    v, a = F.normalize(video_emb, dim=-1), F.normalize(audio_emb, dim=-1)
    rank, _ = world()
    n = v.shape[0]
    target = torch.arange(n, device=v.device) + rank * n
    losses, metrics = [], {}
    for name, q, keys in (("v2a", v, all_gather_with_grad(a)), ("a2v", a, all_gather_with_grad(v))):
        logits = q @ keys.T / temperature  # N x N_global
        losses.append(F.cross_entropy(logits, target))
        metrics[f"avc_acc_{name}"] = (logits.argmax(dim=1) == target).float().mean().item()
    metrics["avc_acc"] = (metrics["avc_acc_v2a"] + metrics["avc_acc_a2v"]) / 2
    return LossResult(loss=(losses[0] + losses[1]) / 2, metrics=metrics)


def avsa_direction(pred: torch.Tensor, target: torch.Tensor, *, temperature: float,
                   negatives: str, within_clip: float = 0.0) -> tuple[torch.Tensor, float, float]:
    """One direction of the AVSA loss.

    Parameters
    ----------
    pred : Tensor, shape (B, K, D)
        Predictions (queries), crop k of clip b; normalised here.
    target : Tensor, shape (B, K, D)
        Targets (keys) of this process; gathered over processes.
    temperature : float, keyword-only
    negatives : {"paper", "same-crop"}, keyword-only
        ``paper``: candidates of query (b, k) are all B_global·K targets — the
        positive (b, k), the clip's other K−1 crops and every crop of every
        other clip. ``same-crop`` (the baseline's code): only crop k of every
        clip, i.e. B_global candidates.
    within_clip : float in [0, 1], keyword-only
        Share w of a *within-clip* term: the loss is
        ``w · CE(own clip's K crops) + (1 − w) · CE(negatives)``. The within-clip
        term ranks the positive only among the clip's K crops (chance 1/K), so
        its gradient is purely spatial; 0 is the paper's loss.

    Returns
    -------
    loss : Tensor, scalar
        Mean cross-entropy over the B·K queries.
    spatial_acc : float
        Fraction of queries whose own crop scores highest among the clip's K
        crops (chance 1/K).
    retrieval_acc : float
        Fraction whose own crop scores highest among all B_global·K targets.
    """
    rank, _ = world()
    q, t = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
    b, k, _ = q.shape
    keys = all_gather_with_grad(t)  # B_g x K x D
    clip = torch.arange(b, device=q.device) + rank * b  # global clip index of each local clip
    crop = torch.arange(k, device=q.device)
    logits = torch.einsum("bkd,jld->bkjl", q, keys) / temperature  # B x K x B_g x K
    if negatives == "paper":
        flat_target = (clip[:, None] * k + crop[None, :]).flatten()  # (b, k) -> global row-major index
        loss = F.cross_entropy(logits.flatten(2).flatten(0, 1), flat_target)
    elif negatives == "same-crop":
        same = logits.diagonal(dim1=1, dim2=3)  # B x B_g x K: query crop k vs crop k of every clip
        loss = F.cross_entropy(same.transpose(1, 2).flatten(0, 1), clip.repeat_interleave(k))
    else:
        raise InputError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
    own = logits[torch.arange(b, device=q.device), :, clip]  # B x K x K: query crop k vs the clip's crops
    if within_clip > 0:
        spatial_loss = F.cross_entropy(own.flatten(0, 1), crop.repeat(b))
        loss = within_clip * spatial_loss + (1 - within_clip) * loss
    with torch.no_grad():
        spatial = (own.argmax(dim=-1) == crop).float().mean().item()
        best = logits.flatten(2).argmax(dim=-1)  # B x K
        retrieval = (best == clip[:, None] * k + crop).float().mean().item()
    return loss, spatial, retrieval


def sound_negatives_term(embeddings: AVSAEmbeddings, *, temperature: float) -> tuple[torch.Tensor, float]:
    """Each crop's own sound against another clip's sound rotated to the same crops.

    The in-domain control (:mod:`avsa.evaluate.indomain`) as training
    negatives. For crop k of clip b the candidates are the clip's K audio
    crops and the K crops of another clip's sound field rotated to the *same*
    directions (2K in all, chance 1/(2K)); the target is its own audio crop k.
    Everything a sound field shows merely for being rotated to a direction
    (where the horizon falls, say) is shared by the two halves, so only this
    clip's sound can rank its own crop first.

    Both directions, as in :func:`avsa_loss`: query â_k against keys
    [ã_1…ã_K, ã'_1…ã'_K], and query ṽ_k against [v̂_1…v̂_K, v̂'_1…v̂'_K].

    Parameters
    ----------
    embeddings : AVSAEmbeddings
        With ``other_audio_target`` ã' and ``other_video_pred`` v̂', all (B, K, D).
    temperature : float, keyword-only

    Returns
    -------
    loss : Tensor, scalar
        Mean of the two directions' cross-entropies.
    accuracy : float
        Fraction of queries whose own audio crop ranks first among the 2K.
    """
    e = embeddings
    if e.other_audio_target is None or e.other_video_pred is None:
        raise InputError("sound negatives need the embeddings of another clip's sound (other_audio)")
    b, k, _ = e.audio_pred.shape
    target = torch.arange(k, device=e.audio_pred.device).repeat(b)
    losses, hits = [], []
    for query, own, other in ((e.audio_pred, e.audio_target, e.other_audio_target),
                              (e.video_target, e.video_pred, e.other_video_pred)):
        keys = torch.cat([own, other], dim=1)  # B x 2K x D
        logits = torch.einsum("bkd,bjd->bkj", query, keys).flatten(0, 1) / temperature  # B·K x 2K
        losses.append(F.cross_entropy(logits, target))
        hits.append((logits.argmax(dim=-1) == target).float().mean().item())
    return (losses[0] + losses[1]) / 2, sum(hits) / 2


def avsa_loss(embeddings: AVSAEmbeddings, *, temperature: float = 0.07, negatives: str = "paper",
              within_clip: float = 0.0, sound_negatives: float = 0.0) -> LossResult:
    """AVSA loss: the target of each (clip b, crop k) is (b, k) (paper Eq. 2).

    Parameters
    ----------
    embeddings : AVSAEmbeddings
        ``audio_pred`` â is compared with ``audio_target`` ã (v2a) and
        ``video_pred`` v̂ with ``video_target`` ṽ (a2v); all (B, K, D).
    temperature : float, keyword-only
        τ > 0.
    negatives : {"paper", "same-crop"}, keyword-only
        See :func:`avsa_direction`.
    within_clip : float in [0, 1], keyword-only
        Share of the within-clip term (:func:`avsa_direction`); 0 = the paper's loss.
    sound_negatives : float >= 0, keyword-only
        Weight λ of :func:`sound_negatives_term`, added to the loss (0 = off);
        the embeddings must then carry another clip's sound.

    Returns
    -------
    LossResult
        Loss = mean of the two directions' cross-entropies (+ λ · the sound term,
        whose accuracy is ``sound_acc``, chance 1/(2K)); metrics
        ``avsa_acc_v2a``, ``avsa_acc_a2v``, ``avsa_acc`` (own crop first among
        the clip's K; chance 1/K) and ``retrieval_acc_v2a``,
        ``retrieval_acc_a2v``, ``retrieval_acc`` (own crop first among all
        B_global·K crops).
    """
    _check_temperature(temperature)
    if negatives not in NEGATIVES:
        raise InputError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
    if not 0.0 <= within_clip <= 1.0:
        raise InputError(f"within_clip must lie in [0, 1], got {within_clip}")
    e = embeddings
    shape = e.video_target.shape
    if len(shape) != 3 or any(x.shape != shape for x in (e.audio_target, e.video_pred, e.audio_pred)):
        raise InputError("avsa_loss needs four embeddings of equal shape (B, K, D), got "
                         f"{[tuple(x.shape) for x in (e.video_target, e.audio_target, e.video_pred, e.audio_pred)]}")
    losses, metrics = [], {}
    for name, pred, target in (("v2a", e.audio_pred, e.audio_target), ("a2v", e.video_pred, e.video_target)):
        loss, spatial, retrieval = avsa_direction(pred, target, temperature=temperature, negatives=negatives,
                                                  within_clip=within_clip)
        losses.append(loss)
        metrics[f"avsa_acc_{name}"] = spatial
        metrics[f"retrieval_acc_{name}"] = retrieval
    metrics["avsa_acc"] = (metrics["avsa_acc_v2a"] + metrics["avsa_acc_a2v"]) / 2
    metrics["retrieval_acc"] = (metrics["retrieval_acc_v2a"] + metrics["retrieval_acc_a2v"]) / 2
    loss = (losses[0] + losses[1]) / 2
    if sound_negatives < 0 or not math.isfinite(sound_negatives):
        raise InputError(f"sound_negatives must be a finite weight >= 0, got {sound_negatives}")
    if sound_negatives > 0:
        term, metrics["sound_acc"] = sound_negatives_term(e, temperature=temperature)
        loss = loss + sound_negatives * term
    return LossResult(loss=loss, metrics=metrics)
