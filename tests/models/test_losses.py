"""Contrastive losses against hand computations and constructed embeddings."""

import math

import pytest
import torch

from avsa.errors import InputError
from avsa.models.heads import AVSAEmbeddings
from avsa.models.losses import avc_loss, avsa_loss

TAU = 0.07


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def hand_ce(query, candidates, target_index, tau):
    """-log softmax of cosine similarities, with explicit loops."""
    q = [float(v) for v in query]
    sims = []
    for c in candidates:
        dot = sum(a * b for a, b in zip(q, c.tolist()))
        nq = math.sqrt(sum(a * a for a in q))
        nc = math.sqrt(sum(b * b for b in c.tolist()))
        sims.append(dot / (nq * nc) / tau)
    m = max(sims)
    log_z = m + math.log(sum(math.exp(s - m) for s in sims))
    return log_z - sims[target_index]


def test_avc_loss_equals_hand_computation():
    g = torch.Generator().manual_seed(0)
    v, a = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    expected = 0.0
    for i in range(3):
        expected += hand_ce(v[i], list(a), i, TAU) / 3 / 2  # video -> audio
        expected += hand_ce(a[i], list(v), i, TAU) / 3 / 2  # audio -> video
    result = avc_loss(v, a, temperature=TAU)
    assert result.loss.item() == pytest.approx(expected, rel=1e-5)
    sims = unit(v) @ unit(a).T
    assert result.metrics["avc_acc_v2a"] == pytest.approx((sims.argmax(1) == torch.arange(3)).float().mean().item())
    assert result.metrics["avc_acc_a2v"] == pytest.approx((sims.argmax(0) == torch.arange(3)).float().mean().item())


def random_embeddings(b=2, k=4, d=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return AVSAEmbeddings(*(torch.randn(b, k, d, generator=g) for _ in range(4)))


@pytest.mark.parametrize("negatives", ["paper", "same-crop"])
def test_avsa_loss_equals_hand_computation(negatives):
    """2 clips x 4 crops: loops over every (clip, crop) query and its candidate set."""
    e = random_embeddings()
    expected = 0.0
    for pred, target in ((e.audio_pred, e.audio_target), (e.video_pred, e.video_target)):
        for b in range(2):
            for k in range(4):
                if negatives == "paper":  # every crop of every clip; positive = (b, k)
                    cands = [target[j, l] for j in range(2) for l in range(4)]
                    pos = b * 4 + k
                else:  # only crop k of every clip; positive = clip b
                    cands = [target[j, k] for j in range(2)]
                    pos = b
                expected += hand_ce(pred[b, k], cands, pos, TAU) / 8 / 2
    result = avsa_loss(e, temperature=TAU, negatives=negatives)
    assert result.loss.item() == pytest.approx(expected, rel=1e-5)


def test_avsa_accuracies_by_hand():
    e = random_embeddings(b=3, seed=4)
    result = avsa_loss(e, temperature=TAU)
    for name, pred, target in (("v2a", e.audio_pred, e.audio_target), ("a2v", e.video_pred, e.video_target)):
        spatial = retrieval = 0
        p, t = unit(pred), unit(target)
        for b in range(3):
            for k in range(4):
                within = [float(p[b, k] @ t[b, l]) for l in range(4)]
                spatial += max(range(4), key=within.__getitem__) == k
                everything = [float(p[b, k] @ t[j, l]) for j in range(3) for l in range(4)]
                retrieval += max(range(12), key=everything.__getitem__) == b * 4 + k
        assert result.metrics[f"avsa_acc_{name}"] == pytest.approx(spatial / 12)
        assert result.metrics[f"retrieval_acc_{name}"] == pytest.approx(retrieval / 12)


def orthogonal_embeddings(b=3, k=4):
    """Pred (b, k) equals target (b, k); all B·K targets mutually orthogonal."""
    basis = torch.eye(b * k).reshape(b, k, b * k)
    return AVSAEmbeddings(video_target=basis, audio_target=basis, video_pred=basis.clone(), audio_pred=basis.clone())


@pytest.mark.parametrize("negatives", ["paper", "same-crop"])
def test_right_pairs_give_low_loss_and_full_accuracy(negatives):
    e = orthogonal_embeddings()
    result = avsa_loss(e, temperature=0.01, negatives=negatives)
    assert result.loss.item() < 1e-10
    assert result.metrics["avsa_acc"] == 1.0 and result.metrics["retrieval_acc"] == 1.0


def test_permuting_crops_within_a_clip_breaks_paper_loss_only():
    """A within-clip permutation of the predictions is a negative in the paper mode and
    invisible to the same-crop mode, which never contrasts crops of one clip."""
    e = orthogonal_embeddings()
    perm = torch.tensor([1, 2, 3, 0])
    shuffled = AVSAEmbeddings(e.video_target, e.audio_target, e.video_pred[:, perm], e.audio_pred[:, perm])
    paper = avsa_loss(shuffled, temperature=0.01, negatives="paper")
    assert paper.loss.item() > 50  # the positive has similarity 0, a negative similarity 1: ≈ 1/τ
    assert paper.metrics["avsa_acc"] == 0.0 and paper.metrics["retrieval_acc"] == 0.0
    # same-crop: query (b, k) now matches no candidate (crop k of any clip) better than another
    same = avsa_loss(shuffled, temperature=0.01, negatives="same-crop")
    assert same.loss.item() == pytest.approx(math.log(3), rel=1e-5)  # all 3 candidates at similarity 0


def test_same_crop_mode_ignores_within_clip_negatives():
    """Make the clip's other crops identical to the positive: the paper loss is ln 4, the
    same-crop loss is unaffected (≈ 0)."""
    b, k = 3, 4
    clip_vectors = torch.eye(b)[:, None, :].expand(b, k, b).clone()  # all crops of a clip identical
    e = AVSAEmbeddings(clip_vectors, clip_vectors, clip_vectors.clone(), clip_vectors.clone())
    paper = avsa_loss(e, temperature=0.01, negatives="paper")
    assert paper.loss.item() == pytest.approx(math.log(4), rel=1e-4)
    same = avsa_loss(e, temperature=0.01, negatives="same-crop")
    assert same.loss.item() < 1e-10


def test_swapping_clips_breaks_both_modes():
    e = orthogonal_embeddings()
    perm = torch.tensor([1, 2, 0])
    swapped = AVSAEmbeddings(e.video_target, e.audio_target, e.video_pred[perm], e.audio_pred[perm])
    for negatives in ("paper", "same-crop"):
        assert avsa_loss(swapped, temperature=0.01, negatives=negatives).loss.item() > 50


def test_avc_matched_pairs_and_swaps():
    x = torch.eye(5)
    ok = avc_loss(x, x.clone(), temperature=0.01)
    assert ok.loss.item() < 1e-10 and ok.metrics["avc_acc"] == 1.0
    bad = avc_loss(x, x[torch.tensor([1, 2, 3, 4, 0])], temperature=0.01)
    assert bad.metrics["avc_acc"] == 0.0 and bad.loss.item() > 50


def test_loss_is_scale_invariant_and_differentiable():
    """Cosine similarity: scaling an embedding does not change the loss; gradients flow to all four."""
    e = random_embeddings()
    tensors = [t.clone().requires_grad_(True) for t in (e.video_target, e.audio_target, e.video_pred, e.audio_pred)]
    loss = avsa_loss(AVSAEmbeddings(*tensors)).loss
    loss.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in tensors)
    scaled = AVSAEmbeddings(*(t.detach() * 3.0 for t in tensors))
    assert avsa_loss(scaled).loss.item() == pytest.approx(loss.item(), rel=1e-5)


def test_bad_arguments():
    e = random_embeddings()
    with pytest.raises(InputError, match="negatives"):
        avsa_loss(e, negatives="all")
    with pytest.raises(InputError, match="temperature"):
        avsa_loss(e, temperature=0.0)
    with pytest.raises(InputError, match="equal shape"):
        avsa_loss(AVSAEmbeddings(e.video_target, e.audio_target[:, :3], e.video_pred, e.audio_pred))
    with pytest.raises(InputError, match="equal shape"):
        avc_loss(torch.randn(3, 4), torch.randn(2, 4))


def test_within_clip_share_mixes_a_four_way_term_into_the_paper_loss():
    """within_clip=w: w·CE over the clip's own crops + (1 − w)·the paper's loss; 0 is the paper's loss."""
    import torch.nn.functional as F

    from avsa.models.heads import AVSAEmbeddings
    from avsa.models.losses import avsa_direction

    torch.manual_seed(0)
    pred, target = torch.randn(3, 4, 8), torch.randn(3, 4, 8)
    tau = 0.1
    paper, *_ = avsa_direction(pred, target, temperature=tau, negatives="paper")
    q, t = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
    own = torch.einsum("bkd,bld->bkl", q, t) / tau  # (B, K, K) within each clip
    four_way = F.cross_entropy(own.flatten(0, 1), torch.arange(4).repeat(3))
    for w in (0.0, 0.8, 1.0):
        mixed, *_ = avsa_direction(pred, target, temperature=tau, negatives="paper", within_clip=w)
        torch.testing.assert_close(mixed, w * four_way + (1 - w) * paper)
    # w = 1: other clips do not matter at all
    e = AVSAEmbeddings(target, target, pred, pred)
    other = AVSAEmbeddings(torch.cat([target, torch.randn(2, 4, 8)]), torch.cat([target, torch.randn(2, 4, 8)]),
                           torch.cat([pred, torch.randn(2, 4, 8)]), torch.cat([pred, torch.randn(2, 4, 8)]))
    only_within = avsa_loss(e, temperature=tau, within_clip=1.0).loss
    first_three = avsa_loss(other, temperature=tau, within_clip=1.0).loss * 5 / 3 - \
        avsa_loss(AVSAEmbeddings(*(x[3:] for x in (other.video_target, other.audio_target, other.video_pred,
                                                    other.audio_pred))), temperature=tau, within_clip=1.0).loss * 2 / 3
    torch.testing.assert_close(only_within, first_three)
    with pytest.raises(InputError):
        avsa_loss(e, within_clip=1.5)


def _with_other(b=3, k=4, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    rand = lambda: unit(torch.randn(b, k, d, generator=g))  # noqa: E731
    return AVSAEmbeddings(video_target=rand(), audio_target=rand(), video_pred=rand(), audio_pred=rand(),
                          other_audio_target=rand(), other_video_pred=rand())


def test_sound_negatives_term_is_the_hand_computed_cross_entropy():
    from avsa.models.losses import sound_negatives_term

    e, tau = _with_other(), 0.07
    loss, _ = sound_negatives_term(e, temperature=tau)
    expected = []
    for b in range(3):
        for k in range(4):
            keys = torch.cat([e.audio_target[b], e.other_audio_target[b]])  # own 4 crops, then the other clip's 4
            expected.append(hand_ce(e.audio_pred[b, k], keys, k, tau))
            keys = torch.cat([e.video_pred[b], e.other_video_pred[b]])
            expected.append(hand_ce(e.video_target[b, k], keys, k, tau))
    v2a, a2v = torch.tensor(expected[0::2]).mean(), torch.tensor(expected[1::2]).mean()
    assert loss.item() == pytest.approx(((v2a + a2v) / 2).item(), rel=1e-5)


def test_sound_negatives_cannot_be_won_without_the_clips_own_sound():
    """When another clip's sound embeds like this clip's (a model deaf to the content), the own crop never
    beats its copy: the term stays at or above log 2, whatever the spatial fit."""
    from avsa.models.losses import sound_negatives_term

    e = _with_other()
    e.audio_pred, e.video_pred = e.audio_target.clone(), e.video_target.clone()  # perfect spatial fit
    deaf = AVSAEmbeddings(e.video_target, e.audio_target, e.video_pred, e.audio_pred,
                          other_audio_target=e.audio_target.clone(), other_video_pred=e.video_pred.clone())
    loss, _ = sound_negatives_term(deaf, temperature=0.07)
    assert loss.item() >= math.log(2) - 1e-4
    listening = AVSAEmbeddings(e.video_target, e.audio_target, e.video_pred, e.audio_pred,
                               other_audio_target=-e.audio_target, other_video_pred=-e.video_pred)
    loss, acc = sound_negatives_term(listening, temperature=0.07)
    assert loss.item() < 0.05 and acc == 1.0


def test_avsa_loss_adds_the_weighted_sound_term_and_checks_its_input():
    from avsa.models.losses import sound_negatives_term

    e = _with_other()
    base = avsa_loss(e, within_clip=0.8)
    both = avsa_loss(e, within_clip=0.8, sound_negatives=0.5)
    term, acc = sound_negatives_term(e, temperature=0.07)
    assert both.loss.item() == pytest.approx(base.loss.item() + 0.5 * term.item(), rel=1e-5)
    assert both.metrics["sound_acc"] == acc and "sound_acc" not in base.metrics
    with pytest.raises(InputError, match="another clip"):
        avsa_loss(AVSAEmbeddings(e.video_target, e.audio_target, e.video_pred, e.audio_pred), sound_negatives=1.0)
    with pytest.raises(InputError, match="sound_negatives"):
        avsa_loss(e, sound_negatives=-1.0)
