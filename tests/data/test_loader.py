"""The loader on a tiny prepared cache: batches for every crop mode × format × features,
determinism across worker layouts, skipping unreadable clips, and ``avsa stats``."""

import argparse
import logging
import math
import shutil

import numpy as np
import pytest
import torch

from avsa.commands import stats as stats_cli
from avsa.data.detection.base import Detection, save_detections
from avsa.data.loader import KINDS, SampleDataset, make_loader
from avsa.data.normalize import load_stats, stats_path
from avsa.data.samples import SampleBuilder, build_batch
from avsa.errors import InputError
from avsa.media.cache import Cache
from avsa.media.io import write_av
from avsa.media.prepare import PrepareOptions, prepare
from avsa.spatial import ambisonics

WIDTH, HEIGHT, FPS, SR, DURATION_S = 128, 64, 16, 24000, 2.0
SOURCES = [(0.8, 0.1), (-2.0, 0.0), (2.6, -0.2)]  # one sounding object per video (azimuth, elevation)
VALID = [("ambi", "mel", 4), ("mono", "mel", 1), ("stereo", "mel", 2), ("ambi", "iv", 7), ("stereo", "icf", 5)]


def scene_frames(azimuth, elevation, n_frames):
    """Grey equirect frames with a red disc of 0.3 rad around the source."""
    theta = math.pi * (1 - 2 * (np.arange(WIDTH) + 0.5) / WIDTH)
    phi = (math.pi / 2) * (1 - 2 * (np.arange(HEIGHT) + 0.5) / HEIGHT)
    th, ph = np.meshgrid(theta, phi)
    c = np.sin(ph) * math.sin(elevation) + np.cos(ph) * math.cos(elevation) * np.cos(th - azimuth)
    disc = np.arccos(np.clip(c, -1, 1)) < 0.3
    frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    frame[disc] = (230, 30, 30)
    return np.repeat(frame[None], n_frames, axis=0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    (root / "src").mkdir()
    rng = np.random.default_rng(0)
    names = []
    for k, (az, el) in enumerate(SOURCES):
        noise = 0.1 * rng.standard_normal(int(DURATION_S * SR)).astype(np.float32)
        foa = ambisonics.encode(noise, az, el).numpy()
        write_av(root / "src" / f"v{k}.mp4", scene_frames(az, el, int(DURATION_S * FPS)), FPS,
                 audio=foa, sample_rate=SR)
        names.append(f"v{k}")
    (root / "src" / "train.txt").write_text("\n".join(names) + "\n")
    prepare(root / "src", root / "cache", options=PrepareOptions(width=WIDTH, layout="ambix"), progress=False)
    cache = Cache(root / "cache")
    assert len(cache.clips("train")) == len(SOURCES)
    for clip in cache.clips("train"):  # oracle detections: the source in every frame
        az, el = SOURCES[int(clip.source.split("v")[1][0])]
        dets = [Detection(az, el, 0.6, "object", 1.0, t / FPS) for t in range(int(DURATION_S * FPS))]
        save_detections(cache.detections_dir("oracle") / f"{clip.clip_id}.json", dets,
                        detector="oracle", mode="groundtruth")
    return cache


def unnormalised(raw, fmt, features):
    return build_batch(raw, fmt=fmt, features=features, crop_size=32, normalize=False)


@pytest.mark.parametrize("crop_mode", ["random", "objects", "audio"])
@pytest.mark.parametrize("n_crops", [1, 4])
def test_batch_for_every_combination(cache, crop_mode, n_crops):
    dataset = SampleDataset(cache, crop_mode=crop_mode, n_crops=n_crops, seed=1)
    loader = make_loader(dataset, batch_size=2, seed=1)
    raw = next(iter(loader))
    assert raw.frames.shape == (2, 8, 3, HEIGHT, WIDTH) and raw.frames.dtype == torch.uint8
    assert raw.foa.shape == (2, 4, SR) and raw.azimuth.shape == (2, n_crops)
    assert raw.jitter.shape == (2, n_crops, 4) and raw.flip.dtype == torch.bool
    kinds = {KINDS[i] for i in raw.kind.flatten().tolist()}
    if crop_mode == "objects":
        assert "object" in kinds
        sources = torch.tensor([SOURCES[int(c[1])] for c in raw.clip_ids])
        is_object = raw.kind == KINDS.index("object")
        assert torch.allclose(raw.azimuth[is_object], sources[:, None, 0].expand(-1, n_crops)[is_object], atol=1e-5)
    for fmt, features, channels in VALID:
        video, audio = unnormalised(raw, fmt, features)
        assert video.shape == (2, n_crops, 3, 8, 32, 32)
        assert audio.shape == (2, n_crops, channels, 100, 128)
        assert torch.isfinite(video).all() and torch.isfinite(audio).all()


def test_oracle_object_crops_rotate_the_source_to_front(cache):
    dataset = SampleDataset(cache, crop_mode="objects", n_crops=4, seed=2, augment=False)
    raw = next(iter(make_loader(dataset, batch_size=3, seed=2)))
    _, audio = unnormalised(raw, "ambi", "iv")
    is_object = raw.kind == KINDS.index("object")
    assert is_object.sum() == 3  # one detected source per clip, in its quadrant
    iv = audio[:, :, 4:].mean(dim=(-1, -2))[is_object]  # (3, 3) mean IV per object crop
    assert (iv[:, 0] > 0.9).all() and (iv[:, 1:].abs() < 0.1).all()
    video = build_batch(raw, fmt="ambi", features="mel", crop_size=16, normalize=False)[0]
    red = video[:, :, 0, :, 6:10, 6:10].mean(dim=(-1, -2, -3))
    assert (red[is_object] > 1.5).all()  # the red object sits at the crop centre


def _object_offsets(dataset, epoch):
    """Angles (rad) between each object crop's centre and its clip's source, at ``epoch``."""
    dataset.set_epoch(epoch)
    out = []
    for index in range(len(dataset)):
        raw = dataset[index]
        az, el = SOURCES[int(raw.clip_id[1])]
        for a, e, kind in zip(raw.azimuth, raw.elevation, raw.kind):
            if KINDS[int(kind)] == "object":
                out.append(math.acos(min(1.0, math.sin(e) * math.sin(el)
                                         + math.cos(e) * math.cos(el) * math.cos(a - az))))
    return np.asarray(out)


def test_crop_jitter_ramps_up_over_its_warmup_epochs(cache):
    sigma = math.radians(20)
    full = SampleDataset(cache, crop_mode="objects", n_crops=4, seed=5, crop_jitter=sigma)
    ramped = SampleDataset(cache, crop_mode="objects", n_crops=4, seed=5, crop_jitter=sigma, crop_jitter_ramp=4)
    assert full.jitter_now() == sigma and ramped.jitter_now() == pytest.approx(sigma / 4)
    ramped.set_epoch(1)
    assert ramped.jitter_now() == pytest.approx(sigma / 2)
    # the same draws, scaled: at epoch 0 every crop sits a quarter as far from its source as without the ramp
    far, near = _object_offsets(full, 0), _object_offsets(ramped, 0)
    assert far.mean() > math.radians(5) and np.allclose(near, far / 4, atol=1e-3)
    # from the end of the ramp on, the full jitter
    assert np.allclose(_object_offsets(ramped, 3), _object_offsets(full, 3), atol=1e-6)
    assert np.allclose(_object_offsets(ramped, 7), _object_offsets(full, 7), atol=1e-6)
    with pytest.raises(InputError, match="crop_jitter_ramp"):
        SampleDataset(cache, crop_mode="objects", n_crops=4, crop_jitter=sigma, crop_jitter_ramp=-1)


def test_deterministic_across_workers_and_epochs(cache):
    dataset = SampleDataset(cache, crop_mode="random", n_crops=4, seed=3)
    a = make_loader(dataset, batch_size=2, seed=3, num_workers=0)
    b = make_loader(SampleDataset(cache, crop_mode="random", n_crops=4, seed=3), batch_size=2, seed=3,
                    num_workers=1)
    first, second = next(iter(a)), next(iter(b))
    assert first.clip_ids == second.clip_ids and torch.equal(first.frames, second.frames)
    for name in ("azimuth", "elevation", "fov", "flip", "jitter", "gain", "foa"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    a.set_epoch(1)
    other = next(iter(a))
    assert not torch.equal(other.azimuth, first.azimuth)
    resumed = make_loader(dataset, batch_size=1, seed=3)
    resumed.set_epoch(1, start_batch=1)
    full = make_loader(dataset, batch_size=1, seed=3)
    full.set_epoch(1)
    assert next(iter(resumed)).clip_ids == list(full)[1].clip_ids


def test_unreadable_clip_is_skipped_and_counted(cache, tmp_path, caplog):
    broken = tmp_path / "broken"
    shutil.copytree(cache.root, broken)
    clip = Cache(broken).clips()[1]
    rng = np.random.default_rng(0)
    for relative in (clip.video, clip.audio):
        (broken / relative).write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with caplog.at_level(logging.WARNING, logger="avsa.data.loader"):
        loader = make_loader(SampleDataset(broken, n_crops=4), batch_size=3, drop_last=False)
        batches = list(loader)
    assert [len(b) for b in batches] == [2] and clip.clip_id not in batches[0].clip_ids
    assert loader.skipped == 1 and batches[0].skipped == 1
    assert any(clip.clip_id in record.getMessage() for record in caplog.records)
    # the count crosses worker processes; a batch of only bad clips is dropped, not yielded
    workers = make_loader(SampleDataset(broken, n_crops=1), batch_size=1, num_workers=1, shuffle=False,
                          drop_last=False)
    assert [b.clip_ids for b in workers] == [[c.clip_id] for c in Cache(broken).clips() if c != clip]
    assert workers.skipped == 1


def test_objects_mode_needs_detections(cache):
    with pytest.raises(InputError, match="avsa detect"):
        SampleDataset(cache, crop_mode="objects", detector="nothing-here")


def test_stats_command_and_loading(cache):
    with pytest.raises(InputError, match="avsa stats"):
        load_stats(cache.root, "stereo", "icf")
    parser = argparse.ArgumentParser()
    stats_cli.add_arguments(parser)
    args = parser.parse_args([str(cache.root), "--format", "stereo", "--features", "icf", "--windows", "3",
                              "--batch-size", "2"])
    assert stats_cli.run(args) == 0
    stats = load_stats(cache.root, "stereo", "icf")
    assert stats_path(cache.root, "stereo", "icf").is_file()
    assert stats.mean.shape == (2, 128) and stats.n_windows == 3
    # the same windows (seed 0, epoch 0, one random crop each, no augmentation) come out normalised
    raw = next(iter(make_loader(SampleDataset(cache, crop_mode="random", n_crops=1, augment=False),
                                batch_size=3)))
    _, plain = unnormalised(raw, "stereo", "icf")
    _, audio = SampleBuilder(fmt="stereo", features="icf", stats=stats, crop_size=16)(raw)
    expected_mean = plain[:, :, :2].mean(dim=(0, 1, 3))
    assert torch.allclose(torch.as_tensor(stats.mean), expected_mean, atol=1e-4)
    varying = torch.as_tensor(stats.std) > 0.05
    mel = audio[:, :, :2]
    assert mel.mean(dim=(0, 1, 3)).abs().max() < 1e-3
    assert torch.allclose(mel.std(dim=(0, 1, 3), unbiased=False)[varying], torch.ones(()), atol=1e-3)
    assert torch.equal(audio[:, :, 2:], plain[:, :, 2:])  # ICF channels untouched
    with pytest.raises(InputError, match="ambi\\+mel"):
        np.savez(stats_path(cache.root, "ambi", "mel"), mean=stats.mean, std=stats.std,
                 format=np.array("stereo"), features=np.array("icf"), n_windows=np.array(5))
        load_stats(cache.root, "ambi", "mel")


def test_auto_workers_and_in_memory_store_give_the_same_batches(cache, monkeypatch):
    from avsa.data import loader as loader_module

    assert 0 <= loader_module.auto_workers() <= 8 and loader_module.auto_workers(world_size=10**6) == 0
    monkeypatch.setattr(loader_module.os, "sched_getaffinity", lambda pid: set(range(5)), raising=False)
    assert loader_module.auto_workers() == 4 and loader_module.auto_workers(world_size=2) == 1
    monkeypatch.undo()
    auto = SampleDataset(cache, crop_mode="random", n_crops=4, seed=3, in_memory="auto")
    assert auto.windows.in_memory  # a small cache is kept in memory
    decoded = SampleDataset(cache, crop_mode="random", n_crops=4, seed=3)
    assert not decoded.windows.in_memory
    a = make_loader(auto, batch_size=2, seed=3, num_workers="auto")
    b = make_loader(decoded, batch_size=2, seed=3, num_workers=0)
    for first, second in zip(a.forever(), b.forever()):
        assert first.clip_ids == second.clip_ids and torch.equal(first.frames, second.frames)
        assert torch.equal(first.foa, second.foa) and torch.equal(first.azimuth, second.azimuth)
        break
    with pytest.raises(InputError, match="num_workers"):
        make_loader(auto, batch_size=2, num_workers="many")


class _StalledDataset(SampleDataset):
    """A worker that never delivers (a hung decoder)."""

    def __getitem__(self, index):
        import time

        time.sleep(60)


@pytest.mark.parametrize("endless", [False, True])
def test_a_stalled_decoding_worker_is_an_error_not_a_hang(cache, monkeypatch, endless):
    from avsa.data import loader as loader_module

    monkeypatch.setattr(loader_module, "WORKER_TIMEOUT_S", 1.0)
    stalled = make_loader(_StalledDataset(cache, crop_mode="random", n_crops=4, seed=3), batch_size=2, seed=3,
                          num_workers=1)
    with pytest.raises(loader_module.DecodingStalledError, match=r"no batch in 1 s.*num_workers=0"):
        next(stalled.forever() if endless else iter(stalled))


def test_in_memory_budget_follows_the_machines_memory(cache, monkeypatch):
    from avsa.data import loader as loader_module

    gib = 2**30
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 64 * gib // 4096}  # a 64 GiB machine: the fixed cap
    monkeypatch.setattr(loader_module.os, "sysconf", lambda name: pages[name])
    assert loader_module.in_memory_budget() == loader_module.IN_MEMORY_BYTES
    assert loader_module.in_memory_budget(16) == 64 * gib * loader_module.IN_MEMORY_SHARE / 16  # shared
    pages["SC_PHYS_PAGES"] = 2 * gib // 4096  # 2 GiB: its share
    assert loader_module.in_memory_budget() == 2 * gib * loader_module.IN_MEMORY_SHARE
    needed = loader_module.decoded_bytes(cache, cache.clips("train"), 16.0, 24000)
    pages["SC_PHYS_PAGES"] = int(needed / loader_module.IN_MEMORY_SHARE * 1.5) // 4096  # fits one store...
    assert SampleDataset(cache, crop_mode="random", n_crops=4, in_memory="auto").windows.in_memory
    # ...not two (e.g. two decoding workers): decoded window by window
    assert not SampleDataset(cache, crop_mode="random", n_crops=4, in_memory="auto", stores=2).windows.in_memory
