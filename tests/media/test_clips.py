"""ClipWindows: shapes, frames centred in the audio window, deterministic windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avsa.errors import InputError, MediaError
from avsa.media.cache import Cache
from avsa.media.clips import ClipWindows, windows_for_eval
from avsa.media.prepare import PrepareOptions, prepare

from .test_prepare import FPS, HEIGHT, SR, WIDTH, frame_indices, in_convention, plane_wave, time_frames, write_media

DURATION_S = 3.0


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for k in range(2):
        audio = plane_wave(int(DURATION_S * SR), 0.3, 0.1, seed=k)
        write_media(root / "src" / f"v{k}.mp4", time_frames(int(DURATION_S * FPS)), in_convention(audio, "ambix"))
    (root / "src" / "train.txt").write_text("v0\nv1\n")
    prepare(root / "src", root / "cache", options=PrepareOptions(width=WIDTH), progress=False)
    return Cache(root / "cache")


def _source_audio(clip_id: str) -> np.ndarray:
    k = int(clip_id[1])
    return plane_wave(int(DURATION_S * SR), 0.3, 0.1, seed=k)


def test_item_shapes_and_centred_frames(cache):
    dataset = ClipWindows(cache, split="train", seed=3)
    assert len(dataset) == 2
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            item = dataset[index]
            assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (8, 3, HEIGHT, WIDTH)
            assert item["audio"].dtype == torch.float32 and item["audio"].shape == (4, SR)
            start_s = item["start_s"]
            assert 0.0 <= start_s <= DURATION_S - 1.0
            # the 8 frames cover [start + 0.25, start + 0.75): centred in the 1-s audio window
            first = int(round((start_s + 0.25) * FPS))
            assert abs((start_s + 0.25) * FPS - first) < 1e-6
            np.testing.assert_array_equal(frame_indices(item["frames"].numpy()), np.arange(first, first + 8))
            # the audio is the source's samples at that time (24-bit cache of a 16-bit source)
            source = _source_audio(item["clip_id"])
            begin = int(round(start_s * SR))
            np.testing.assert_allclose(item["audio"].numpy(), source[:, begin:begin + SR], atol=2e-4)
            assert item["groundtruth"] is None


def test_windows_are_deterministic_and_vary_with_epoch(cache):
    a, b = ClipWindows(cache, seed=1), ClipWindows(cache, seed=1)
    starts = []
    for epoch in range(4):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        assert a[0]["start_s"] == b[0]["start_s"]
        starts.append(a[0]["start_s"])
    assert len(set(starts)) > 1


def test_windows_for_eval_fixed(cache):
    windows = windows_for_eval(cache, "train", 3, seed=0)
    assert windows == windows_for_eval(cache, "train", 3, seed=0)
    assert len(windows) == 6 and len({(w.clip_id, w.first_frame) for w in windows}) == 6
    dataset = ClipWindows(cache, windows=windows)
    assert len(dataset) == 6
    item = dataset[4]
    assert item["clip_id"] == windows[4].clip_id
    np.testing.assert_array_equal(frame_indices(item["frames"].numpy()), np.arange(8) + windows[4].first_frame)


def test_unreadable_clip_raises_media_error_naming_it(cache, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(cache.root, broken)
    clip = Cache(broken).clips()[0]
    (broken / clip.video).write_bytes(b"not a video")
    dataset = ClipWindows(broken, split=None)
    with pytest.raises(MediaError, match=clip.clip_id):
        dataset[0]


def test_empty_split_is_an_error(cache):
    with pytest.raises(InputError, match="no usable clips"):
        ClipWindows(cache, split="test")


def test_in_memory_windows_equal_decoded_windows(cache):
    decoded = ClipWindows(cache, split="train", seed=5)
    stored = ClipWindows(cache, split="train", seed=5, in_memory=True)
    for epoch in range(3):
        decoded.set_epoch(epoch)
        stored.set_epoch(epoch)
        for index in range(len(decoded)):
            a, b = decoded[index], stored[index]
            assert a["start_s"] == b["start_s"]
            assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["audio"], b["audio"])
            assert b["frames"].untyped_storage().nbytes() == b["frames"].numel()  # not a view of the whole clip
    assert set(stored._store) == {clip.clip_id for clip in stored.clips}
    windows = windows_for_eval(cache, "train", 3, seed=0)
    fixed = ClipWindows(cache, split="train", windows=windows, in_memory=True)
    reference = ClipWindows(cache, split="train", windows=windows)
    for index in range(len(windows)):
        assert torch.equal(fixed[index]["frames"], reference[index]["frames"])
