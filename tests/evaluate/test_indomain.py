import math

import pytest

import numpy as np
import torch

from avsa.evaluate.indomain import _other_clip, _yaw_misaligned, run_indomain
from avsa.inference.pretrained import load_pretrained
from avsa.evaluate.crops_figure import mean_intensity_direction
from avsa.spatial import ambisonics, sphere


def test_indomain_results_are_accuracies_with_intervals(tiny_run, synthetic_cache):
    results = run_indomain(load_pretrained(tiny_run), synthetic_cache, n_per_clip=2, group=2)
    assert {"avsa-contrastive", "avc-contrastive", "avc-binary", "avsa-binary"} <= set(results)
    for r in results.values():
        low = -1 if r.metric == "accuracy difference" else 0
        assert low <= r.low <= r.value <= r.high <= 1 and r.n > 0
    assert results["avsa-contrastive"].chance == 0.25 and results["avsa-binary"].chance == 0.5
    control = results["avsa-contrastive-other-audio"]  # another clip's sound, same crops
    assert control.chance == 0.25 and control.n == results["avsa-contrastive"].n
    sound = results["avsa-sound-dependent"]  # AVSA minus its control, crop by crop
    assert sound.value == pytest.approx(results["avsa-contrastive"].value - control.value)
    assert sound.n == control.n and sound.chance == 0
    assert results["avsa-contrastive"].details["crops"] == "objects"
    assert set(results["avsa-contrastive"].details["per_kind"]) <= {"object", "random", "audio"}
    d = results["avsa-contrastive"].details
    assert len(d["hits"]) == len(d["groups"]) == len(d["kinds"]) == results["avsa-contrastive"].n
    assert np.mean(d["hits"]) == pytest.approx(results["avsa-contrastive"].value)
    # the difference split by crop kind: each kind's crops, weighted by their number, make the whole
    parts = sound.details["per_kind"]
    assert set(parts) == set(d["kinds"])
    assert sum(r["n"] * r["value"] for r in parts.values()) / sound.n == pytest.approx(sound.value)
    for kind, r in parts.items():
        assert r["value"] == pytest.approx(r["avsa"] - r["control"])
        assert r["avsa"] == pytest.approx(results["avsa-contrastive"].details["per_kind"][kind]["value"])


def test_avsa_binary_negatives_are_really_misaligned():
    rng = np.random.default_rng(0)
    az = torch.tensor([0.3, -2.0, 1.5, 2.9])
    foa = ambisonics.encode(torch.as_tensor(rng.standard_normal((4, 24000)), dtype=torch.float32),
                            az[:, None], torch.zeros(4, 1))
    moved = _yaw_misaligned(foa, np.random.default_rng(1))
    new_az, new_el, _ = mean_intensity_direction(moved, 24000)
    shift = sphere.angular_distance(new_az, new_el, az, torch.zeros(4))
    assert torch.all(shift >= math.radians(44)), shift
    # energy and W are untouched: only the direction changes
    torch.testing.assert_close(moved[:, 0], foa[:, 0])


def test_avc_negatives_come_from_another_clip():
    foa = torch.arange(5.0)[:, None, None].expand(5, 4, 10)
    ids = ["a", "a", "b", "c", "c"]
    other = _other_clip(foa, ids)
    for i in range(5):
        assert ids[int(other[i, 0, 0])] != ids[i]


@pytest.mark.parametrize("per_clip", [[4] * 7, [16] * 5, [3, 5, 1, 16, 2, 2, 40, 1]])
def test_evaluation_batches_never_hold_one_clip_alone(per_clip):
    from avsa.evaluate.indomain import _batch_bounds

    ids = [f"clip{c}" for c, n in enumerate(per_clip) for _ in range(n)]
    bounds = _batch_bounds(ids, 16)
    assert [i for first, end in bounds for i in range(first, end)] == list(range(len(ids)))  # a partition, in order
    for first, end in bounds:
        assert len(set(ids[first:end])) >= 2  # every window has another clip's sound in its batch
        assert first == 0 or ids[first] != ids[first - 1]  # clips are not split
    if per_clip == [4] * 7:  # clips of 4 windows: batches of 16, the last (3 clips) on its own
        assert bounds == [(0, 16), (16, 28)]


def test_avc_groups_hold_one_window_per_clip():
    from avsa.evaluate.indomain import _per_clip_groups

    ids = [c for c in "abcde" for _ in range(3)] + ["f"]  # 5 clips x 3 windows, one clip with 1 window
    groups = _per_clip_groups(ids, 3, seed=0)
    assert groups and all(len(g) == 3 for g in groups)
    for g in groups:
        assert len({ids[i] for i in g}) == len(g)  # never two windows of one clip
    used = [i for g in groups for i in g]
    assert len(used) == len(set(used))


@pytest.mark.parametrize("extra", [[], ["model.audio_width=0.25", "model.audio_pool=mean"]],
                         ids=["equal-widths", "wider-audio"])
def test_direction_encoding_models_evaluate_and_localize(synthetic_cache, tiny_trainer, tmp_path, extra):
    """The AVSA heads are called with the crop directions everywhere (evaluation, localization); an audio
    encoder wider than the video one evaluates too (its features are mapped inside the heads)."""
    from avsa.evaluate.localization import localization_hit_rate

    run = tiny_trainer(synthetic_cache, tmp_path, extra=["model.direction_encoding=true", *extra])
    p = load_pretrained(run)
    assert p.model.direction_encoding
    assert p.model.audio_encoder.dim == (2 if extra else 1) * p.model.video_encoder.dim
    results = run_indomain(p, synthetic_cache, n_per_clip=2, group=2)
    assert 0 <= results["avsa-contrastive"].value <= 1 and 0 <= results["avc-contrastive"].value <= 1
    loc = localization_hit_rate(p, synthetic_cache, n_per_clip=1, grid=(8, 3))
    assert loc.n > 0 and 0 <= loc.value <= 1


def test_sound_dependent_avsa_is_zero_for_a_model_that_ignores_the_sound(tiny_run, synthetic_cache):
    """An audio encoder whose output does not depend on its input: the clip's own sound and another clip's
    score the same, so AVSA equals its control crop by crop, whatever the crops show."""
    p = load_pretrained(tiny_run)
    deaf = p.model.audio_encoder.register_forward_hook(lambda module, inputs, output: torch.ones_like(output))
    try:
        results = run_indomain(p, synthetic_cache, n_per_clip=2, group=2, binary=False)
    finally:
        deaf.remove()
    sound = results["avsa-sound-dependent"]
    assert sound.value == 0 and sound.low == 0 and sound.high == 0
    assert all(r["value"] == 0 for r in sound.details["per_kind"].values())
    assert results["avsa-contrastive"].details["hits"] == results["avsa-contrastive-other-audio"].details["hits"]
