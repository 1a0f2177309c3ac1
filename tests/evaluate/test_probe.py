"""The probe harness: both modes learn separable tasks, the frozen backbone stays put,
fusion, scoring, checkpoint loading, and both modes on dataset stand-ins."""

import numpy as np
import pytest
import torch
from torch import nn

from avsa.errors import InputError
from avsa.evaluate.datasets import load_eigenscape, load_tau, load_ucf101
from avsa.evaluate.datasets.common import Item, clip_starts, read_item_audio, read_item_frames
from avsa.evaluate.probe import check_unchanged, run_probe, score_logits
from avsa.models.heads import load_weights

import standins


def _blob_task(n_classes=3, per_class=12, clips=3, dim=8, seed=0, noise=0.4):
    """Items whose clips are Gaussian blobs around a class centre; test groups hold 2 items."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, size=(n_classes, dim))
    items, data = [], {}
    for c in range(n_classes):
        for k in range(per_class):
            item = Item(id=f"c{c}_{k}", label=c, label_name=f"class{c}", group=f"c{c}_g{k // 6}")
            data[item.id] = torch.tensor(centres[c] + noise * rng.standard_normal((clips, dim)), dtype=torch.float32)
            items.append(item)
    train = [i for i in items if int(i.id.split("_")[1]) % 3 != 0]
    test = [i for i in items if int(i.id.split("_")[1]) % 3 == 0]
    return train, test, (lambda item: data[item.id])


class TinyEncoder(nn.Module):
    def __init__(self, dim_in=8, dim_out=16, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(dim_in, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, dim_out))
        self.fc = nn.Linear(dim_out, 5)  # a classifier head the checkpoint may lack

    def forward(self, x):
        return self.net(x)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_linear_probe_learns_and_backbone_is_frozen(optimizer):
    train, test, inputs = _blob_task()
    encoder = TinyEncoder()
    encoder.train()  # the harness must switch to eval, else BatchNorm statistics would move
    before = _state(encoder)
    result = run_probe(encoder, train, test, inputs, n_classes=3, mode="linear", epochs=30, optimizer=optimizer)
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert result.item_accuracy.estimate >= 0.9 and result.clip_accuracy.estimate >= 0.8
    assert result.n_items == len(test) and result.n_clips == 3 * len(test)
    assert result.confusion.sum() == len(test) and result.confusion.shape == (3, 3)
    assert result.item_accuracy.low <= result.item_accuracy.estimate <= result.item_accuracy.high
    assert result.item_accuracy.method == "cluster-bootstrap"  # groups hold 2 items each


def test_finetune_learns_and_moves_the_encoder():
    train, test, inputs = _blob_task(seed=1)
    encoder = TinyEncoder(seed=1)
    before = _state(encoder)
    result = run_probe(encoder, train, test, inputs, n_classes=3, mode="finetune", epochs=15, lr=1e-2,
                       backbone_lr=1e-3, batch_size=16)
    assert any(not torch.equal(before[k], encoder.state_dict()[k]) for k in before)
    assert result.item_accuracy.estimate >= 0.9 and result.mode == "finetune"


def test_probe_is_deterministic():
    train, test, inputs = _blob_task(noise=1.5, seed=2)
    runs = [run_probe(TinyEncoder(seed=3), train, test, inputs, n_classes=3, epochs=5, seed=7) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].item_predictions, runs[1].item_predictions)
    assert runs[0].clip_accuracy == runs[1].clip_accuracy
    encoder = TinyEncoder(seed=3)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    run_probe(encoder, train, test, inputs, n_classes=3, epochs=1, seed=7)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG left as found


def test_early_fusion_needs_both_encoders():
    # 4 classes = 2 bits; modality A sees bit 0, modality B bit 1: only fusion separates all four.
    rng = np.random.default_rng(4)
    items, data = [], {}
    for c in range(4):
        for k in range(16):
            item = Item(id=f"{c}_{k}", label=c, label_name=str(c), group=f"{c}_{k}")
            a = torch.tensor((c & 1) * 3.0 + 0.3 * rng.standard_normal((2, 8)), dtype=torch.float32)
            b = torch.tensor((c >> 1) * 3.0 + 0.3 * rng.standard_normal((2, 8)), dtype=torch.float32)
            data[item.id] = (a, b)
            items.append(item)
    train, test = items[::2], items[1::2]
    both = run_probe([TinyEncoder(seed=5), TinyEncoder(seed=6)], train, test, lambda i: data[i.id], n_classes=4, epochs=40)
    only_a = run_probe(TinyEncoder(seed=5), train, test, lambda i: data[i.id][0], n_classes=4, epochs=40)
    assert both.item_accuracy.estimate >= 0.95
    assert only_a.item_accuracy.estimate <= 0.6
    assert both.item_accuracy.method == "wilson"  # every item its own group


def test_score_logits_averages_clips_per_item():
    items = [Item(id=f"v{i}", label=i % 2, label_name=str(i % 2), group=f"v{i}") for i in range(4)]
    # item 0 (label 0): clips say 0, 0, 1 → item right, 2/3 clips right
    # item 1 (label 1): clips say 0 (barely), 1 (strongly) → item right by averaged probabilities
    # item 2 (label 0): one clip says 1 → wrong;  item 3 (label 1): one clip says 1 → right
    logits = torch.tensor([[2., 0], [2, 0], [0, 2], [0.1, 0], [0, 5], [0, 1], [0, 1]])
    owner = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    result = score_logits(items, logits, owner, n_classes=2)
    np.testing.assert_array_equal(result.item_predictions, [0, 1, 1, 1])
    assert result.item_accuracy.estimate == pytest.approx(3 / 4)
    assert result.clip_accuracy.estimate == pytest.approx(4 / 7)
    np.testing.assert_array_equal(result.confusion, [[1, 1], [0, 2]])
    np.testing.assert_allclose(result.per_class_accuracy, [0.5, 1.0])
    assert result.clip_accuracy.method == "cluster-bootstrap"  # clips of one item are resampled together
    with pytest.raises(InputError):
        score_logits(items, logits[:, :1], owner, n_classes=2)


def test_check_unchanged_detects_a_moved_tensor():
    encoder = TinyEncoder()
    reference = _state(encoder)
    check_unchanged(reference, encoder)
    with torch.no_grad():
        encoder.net[1].running_mean += 1
    with pytest.raises(RuntimeError, match="net.1.running_mean"):
        check_unchanged(reference, encoder)


HEAD = ("fc.",)  # the classifier a checkpoint may lack


def test_load_weights_only_classifier_keys_may_miss():
    source = TinyEncoder(seed=8)
    checkpoint = {f"module.video_encoder.{k}": v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    checkpoint["module.audio_encoder.x"] = torch.zeros(1)
    target = TinyEncoder(seed=9)
    missing = load_weights(target, checkpoint, prefix="video_encoder.", optional=HEAD)
    assert sorted(missing) == ["fc.bias", "fc.weight"]
    assert torch.equal(target.net[0].weight, source.net[0].weight)
    partial = dict(checkpoint)
    del partial["module.video_encoder.net.0.weight"]
    with pytest.raises(InputError, match="net.0.weight"):
        load_weights(TinyEncoder(), partial, prefix="video_encoder.", optional=HEAD)
    extra = dict(checkpoint, **{"module.video_encoder.net.9.weight": torch.zeros(1)})
    with pytest.raises(InputError, match="net.9.weight"):
        load_weights(TinyEncoder(), extra, prefix="video_encoder.", optional=HEAD)
    with pytest.raises(InputError, match="no key"):
        load_weights(TinyEncoder(), checkpoint, prefix="text_encoder.", optional=HEAD)


def test_bad_arguments():
    train, test, inputs = _blob_task(per_class=3)
    with pytest.raises(InputError, match="mode"):
        run_probe(TinyEncoder(), train, test, inputs, n_classes=3, mode="knn")
    with pytest.raises(InputError, match="lbfgs"):
        run_probe(TinyEncoder(), train, test, inputs, n_classes=3, mode="finetune", optimizer="lbfgs")
    with pytest.raises(InputError, match="label 2"):
        run_probe(TinyEncoder(), train, test, inputs, n_classes=2)
    with pytest.raises(InputError, match="expected 2"):
        run_probe([TinyEncoder(), TinyEncoder()], train, test, inputs, n_classes=3)


# --------------------------------------------------------------------------- on the stand-ins


class SpectrumEncoder(nn.Module):
    """(N, 4, n) FOA → (N, 8): random projection of the log magnitude spectrum of W."""

    def __init__(self, n_bins):
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(n_bins, 8)

    def forward(self, foa):
        return self.proj(torch.log1p(torch.fft.rfft(foa[:, 0]).abs()))


def test_linear_probe_on_eigenscape_standin(tmp_path):
    root = standins.make_eigenscape(tmp_path, classes=3, recordings=8, seconds=1.0, sample_rate=2000, channels=4)
    task, _ = load_eigenscape(root, fold=1, segment_s=0.5)

    def inputs(item):
        audio = torch.from_numpy(read_item_audio(item, channels=4))  # (4, 1000)
        starts = clip_starts(audio.shape[1], 250, 2)
        return torch.stack([audio[:, s:s + 250] for s in starts])  # 2 windows per segment

    result = run_probe(SpectrumEncoder(126), task.train, task.test, inputs, n_classes=len(task.classes), epochs=30)
    assert result.item_accuracy.estimate >= 0.9  # chance 1/3
    assert result.n_clips == 2 * len(task.test)


class ColourEncoder(nn.Module):
    """(N, 3, T, H, W) → (N, 6): a tiny 3-D conv then global pooling."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(3, 6, kernel_size=(1, 3, 3))

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3, 4))


def test_finetune_on_ucf101_standin(tmp_path):
    root = standins.make_ucf101(tmp_path, groups=3, clips_per_group=2, frames=8, size=(32, 24))
    task = load_ucf101(root, split=1)
    cache = {}

    def inputs(item):
        if item.id not in cache:
            frames = torch.from_numpy(read_item_frames(item)).float() / 255  # (T, H, W, 3)
            clips = torch.stack([frames[s:s + 4] for s in clip_starts(frames.shape[0], 4, 2)])
            cache[item.id] = clips.permute(0, 4, 1, 2, 3)  # (2, 3, 4, H, W)
        return cache[item.id]

    result = run_probe(ColourEncoder(), task.train, task.test, inputs, n_classes=3, mode="finetune", epochs=25,
                       lr=5e-2, backbone_lr=1e-2, batch_size=8)
    assert result.item_accuracy.estimate >= 0.8  # chance 1/3
    assert result.n_items == len(task.test) and result.n_clips == 2 * len(task.test)


def test_early_fusion_on_tau_standin(tmp_path):
    root = standins.make_tau(tmp_path, classes=3, segments=2, seconds=0.5, sample_rate=2000, fps=8, size=(32, 24))
    task = load_tau(root, modality="both")

    def inputs(item):
        binaural = torch.from_numpy(read_item_audio(item))[None]  # (1, 2, 1000)
        frames = torch.from_numpy(read_item_frames(item)).float() / 255  # (4, 24, 32, 3)
        return torch.cat([binaural, torch.zeros(1, 2, 1000)], dim=1), frames.permute(3, 0, 1, 2)[None]

    result = run_probe([SpectrumEncoder(501), ColourEncoder()], task.train, task.test, inputs,
                       n_classes=len(task.classes), epochs=30)
    assert result.item_accuracy.estimate >= 0.8  # chance 1/3
    assert result.n_items == len(task.test) == 6
