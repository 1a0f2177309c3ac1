"""The synthetic world: determinism, picture and sound agree with the ground truth."""

from __future__ import annotations

import dataclasses
import math

import av
import numpy as np
import pytest

from avsa.errors import ConfigError
from avsa.media.groundtruth import load
from avsa.media.synth import SCENES, SynthConfig, equirect_to_eac, render_scene, write_scene
from avsa.media.synth.conventions import to_convention
from avsa.spatial.cubemap import FACES, eac_directions
from avsa.media.synth.looks import background, look
from avsa.media.synth.render_audio import render_foa
from avsa.media.synth.render_video import render_frames
from avsa.media.synth.scenes import sample_layout
from avsa.spatial.pixels import equirect_directions as pixel_directions
from avsa.spatial.projection import gnomonic_crop

SMALL = dict(duration_s=2.0, width=256)


def _unit(az, el):
    return np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])


def _angle(u, v):
    return math.degrees(math.acos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1)))


def _intensity(foa):
    """Time-averaged active intensity 2·W·[X, Y, Z] (real signals)."""
    w, y, z, x = foa.astype(np.float64)
    return np.array([np.mean(w * x), np.mean(w * y), np.mean(w * z)])


def _single(seed, moving=None, **extra):
    cfg = SynthConfig(min_sources=1, max_sources=1, max_distractors=0, **{**SMALL, **extra})
    for s in range(seed, seed + 200):
        layout = sample_layout(cfg, s)
        obj = layout.objects[0]
        is_moving = np.ptp(obj.azimuth) > 0.3
        if moving is None or moving == is_moving:
            return cfg, layout
    raise AssertionError("no layout found")


def test_same_seed_same_arrays_different_seed_differs():
    cfg = SynthConfig(**SMALL)
    a, b, c = render_scene(cfg, 5), render_scene(cfg, 5), render_scene(cfg, 6)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.foa, b.foa)
    assert a.groundtruth.to_dict() == b.groundtruth.to_dict()
    assert not np.array_equal(a.foa, c.foa)
    assert a.frames.shape == (32, 128, 256, 3) and a.foa.shape == (4, 48000)
    assert a.foa.dtype == np.float32 and np.abs(a.foa).max() == pytest.approx(cfg.peak, rel=1e-5)


def test_scene_argument_and_object_rules():
    cfg = SynthConfig(**SMALL)
    for i, name in enumerate(SCENES):
        layout = sample_layout(cfg, i, scene=name)
        assert layout.scene.name == name
        sounding = [o.label for o in layout.objects if o.sounding]
        assert 1 <= len(sounding) <= 4 and len(set(sounding)) == len(sounding)
    with pytest.raises(Exception, match="unknown scene"):
        sample_layout(cfg, 0, scene="moonbase")


@pytest.mark.parametrize("moving", [False, True])
def test_object_pixels_sit_at_groundtruth_direction(moving):
    cfg, layout = _single(3, moving=moving)
    obj = layout.objects[0]
    frames = render_frames(layout, width=cfg.width, height=cfg.height).astype(np.float32)
    base = background(layout.scene, cfg.width, cfg.height) * 255
    dirs = pixel_directions(cfg.width, cfg.height)
    weight = np.cos(np.arcsin(dirs[..., 2]))  # solid angle of each pixel
    for k in (0, len(frames) - 1):
        changed = np.abs(frames[k] - base).sum(-1) > 12
        centroid = (dirs[changed] * weight[changed, None]).sum(0)
        assert _angle(centroid, _unit(obj.azimuth[k], obj.elevation[k])) < 2.0


def test_gnomonic_crop_at_object_recovers_the_photo():
    """An independent crop (spatial.projection) at the object shows the undistorted photo."""
    cfg, layout = _single(11, moving=False, width=512, size_range=(0.6, 0.6))
    obj = layout.objects[0]
    frames = render_frames(layout, width=cfg.width, height=cfg.height)
    photo = look(obj.label, obj.variant)
    n = 48
    crop = gnomonic_crop(np.moveaxis(frames[:1], -1, 1), obj.azimuth[0], obj.elevation[0], obj.size, n)
    crop = crop[0].numpy().mean(0) / 255  # grey (N, N)
    from skimage.transform import resize

    h, w = photo.alpha.shape
    rows = int(round(n * h / w))
    expected = resize(photo.image.mean(-1), (rows, n), anti_aliasing=True)
    top = (n - rows) // 2
    got = crop[top:top + rows]
    mask = resize(photo.alpha, (rows, n)) > 0.99
    r = np.corrcoef(got[mask], expected[mask])[0, 1]
    assert r > 0.9


def test_intensity_points_at_the_single_source():
    cfg, layout = _single(21, moving=False)
    obj = layout.objects[0]
    truth = _unit(obj.azimuth[0], obj.elevation[0])
    dry = render_foa(layout, cfg, dry_only=True)
    assert _angle(_intensity(dry), truth) < 1.0
    full = render_foa(layout, cfg)  # reflections, reverb, ambience and noise bias it only a little
    assert _angle(_intensity(full), truth) < 15.0
    # validity ratio (paper Eq. 13) of ideal SN3D is about 1
    w, y, z, x = full.astype(np.float64)
    assert (x**2 + y**2 + z**2).sum() / (w**2).sum() == pytest.approx(1.0, abs=0.15)


def test_moving_source_moves_in_the_audio():
    cfg, layout = _single(0, moving=True)
    obj = layout.objects[0]
    dry = render_foa(layout, cfg, dry_only=True)
    sr, quarter = cfg.sample_rate, cfg.sample_rate // 4
    for first in (0, dry.shape[1] - quarter):
        window = slice(first, first + quarter)
        t_mid = (first + quarter / 2) / sr
        az = np.interp(t_mid, layout.frame_times_s, np.unwrap(obj.azimuth))
        el = np.interp(t_mid, layout.frame_times_s, obj.elevation)
        assert _angle(_intensity(dry[:, window]), _unit(az, el)) < 5.0
    start = _intensity(dry[:, :quarter])
    end = _intensity(dry[:, -quarter:])
    moved = _angle(_unit(obj.azimuth[0], obj.elevation[0]), _unit(obj.azimuth[-1], obj.elevation[-1]))
    assert _angle(start, end) == pytest.approx(moved, abs=8.0)


def test_distractors_are_silent():
    cfg = SynthConfig(min_sources=1, max_sources=2, max_distractors=2, **SMALL)
    layouts = (sample_layout(cfg, s) for s in range(100))
    layout = next(lay for lay in layouts if any(not o.sounding for o in lay.objects))
    without = dataclasses.replace(layout, objects=[o for o in layout.objects if o.sounding])
    assert np.array_equal(render_foa(layout, cfg), render_foa(without, cfg))
    # but the distractor is visible
    frames = render_frames(layout, width=cfg.width, height=cfg.height)
    frames_without = render_frames(without, width=cfg.width, height=cfg.height)
    assert not np.array_equal(frames, frames_without)


def test_conventions_give_the_documented_channels(rng):
    foa = rng.standard_normal((4, 1000)).astype(np.float32)
    w, y, z, x = foa
    np.testing.assert_allclose(to_convention(foa, "fuma"), [w / math.sqrt(2), x, y, z], rtol=1e-6)
    np.testing.assert_allclose(to_convention(foa, "n3d"), [w, math.sqrt(3) * y, math.sqrt(3) * z, math.sqrt(3) * x],
                               rtol=1e-6)
    zero = np.zeros_like(w)
    np.testing.assert_allclose(to_convention(foa, "youtube-aac"), [x, y, w, zero, z, zero])
    np.testing.assert_allclose(to_convention(foa, "swapped"), [w, x, z, y])
    np.testing.assert_array_equal(to_convention(foa, "ambix"), foa)
    up = to_convention(foa, "stereo-upmix")
    np.testing.assert_allclose(up[0], (0.25 * w + 0.75 * y + 0.25 * w - 0.75 * y) / 2, rtol=1e-5, atol=1e-6)
    assert not up[2:].any()
    assert (up[1:] ** 2).sum() / (up[0] ** 2).sum() < 0.1  # the validity test must flag this


def test_eac_layout_geometry():
    f = 16
    d = eac_directions(f)
    centre = {name: d[(k // 3) * f + f // 2, (k % 3) * f + f // 2] for k, (name, *_) in enumerate(FACES)}
    for name, (az, el) in {"front": (0, 0), "left": (90, 0), "right": (-90, 0), "back": (180, 0),
                           "up": (0, 90), "down": (0, -90)}.items():
        if abs(el) == 90:
            assert centre[name][2] == pytest.approx(np.sign(el), abs=0.01)
        else:
            assert _angle(centre[name], _unit(math.radians(az), 0)) < 4
    # top row: columns move rightwards (azimuth falls); bottom row: back tile's right is the sky
    front_row = d[f // 2, f:2 * f]
    assert np.all(np.diff(np.arctan2(front_row[:, 1], front_row[:, 0])) < 0)
    back_row = d[f + f // 2, f:2 * f]
    assert np.all(np.diff(back_row[:, 2]) > 0)
    # the equi-angular warp: tile pixels are uniform in angle along the centre row
    angles = np.degrees(np.arctan2(-front_row[:, 1], front_row[:, 0]))
    np.testing.assert_allclose(np.diff(angles), 90 / f, atol=1e-9)


def test_equirect_to_eac_samples_the_right_directions():
    cfg = SynthConfig(**SMALL)
    d = pixel_directions(cfg.width, cfg.height)
    frame = np.round((d + 1) * 127.5).astype(np.uint8)  # colour = direction
    eac = equirect_to_eac(frame)
    assert eac.shape == (cfg.height, cfg.width * 3 // 4, 3)
    expected = eac_directions(cfg.width // 4)
    got = eac.astype(np.float64) / 127.5 - 1
    assert np.median(np.linalg.norm(got - expected, axis=-1)) < 0.03


def test_written_file_reads_back(tmp_path):
    cfg = SynthConfig(convention="fuma", **SMALL)
    synth = render_scene(cfg, 2)
    path = write_scene(synth, tmp_path, "one", config=cfg, audio_codec="flac")
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.channels == 4 and audio.rate == cfg.sample_rate
        chunks = [f.to_ndarray().reshape(4, -1) if f.format.is_planar else f.to_ndarray().reshape(-1, 4).T
                  for f in container.decode(audio)]
    samples = np.concatenate(chunks, axis=1)
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples / float(-np.iinfo(samples.dtype).min)
    assert samples.shape[1] == pytest.approx(cfg.n_samples, abs=2048)
    np.testing.assert_allclose(samples[:, : cfg.n_samples], synth.audio[:, : samples.shape[1]], atol=1e-4)
    with av.open(str(path)) as container:
        n = sum(1 for _ in container.decode(video=0))
        assert n == cfg.n_frames
    gt = load(tmp_path / "one.json")
    assert gt.audio_convention == "fuma" and len(gt.objects) == len(synth.layout.objects)


def test_youtube_aac_and_eac_file(tmp_path):
    cfg = SynthConfig(convention="youtube-aac", projection="eac", **SMALL)
    synth = render_scene(cfg, 4)
    path = write_scene(synth, tmp_path, "yt", config=cfg, audio_codec="aac")
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.channels == 6
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (cfg.width * 3 // 4, cfg.height)
    assert load(tmp_path / "yt.json").video_projection == "cubemap"


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="unknown SynthConfig keys"):
        SynthConfig.from_dict({"widht": 512})
    with pytest.raises(ConfigError, match="width"):
        SynthConfig(width=100)
    with pytest.raises(ConfigError, match="convention"):
        SynthConfig(convention="ambi")


def test_plane_wave_equals_the_spatial_core_encoder(rng):
    from avsa.media.synth.render_audio import plane_wave
    from avsa.spatial.ambisonics import encode

    s = rng.standard_normal((3, 500)).astype(np.float32)
    az = rng.uniform(-np.pi, np.pi, (3, 500))
    el = rng.uniform(-1.5, 1.5, (3, 500))
    np.testing.assert_allclose(plane_wave(s, az, el), encode(s, az, el).numpy(), atol=1e-6)
    az1, el1 = rng.uniform(-3, 3, (3, 1)), rng.uniform(-1, 1, (3, 1))
    np.testing.assert_allclose(plane_wave(s, az1, el1), encode(s, az1[:, 0], el1[:, 0]).numpy(), atol=1e-6)


def test_cli_writes_videos_and_split_lists(tmp_path):
    import argparse

    from avsa.commands import synth as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--videos", "5", "--duration", "0.5", "--width", "128"])
    assert cli.run(args) == 0
    train = (tmp_path / "train.txt").read_text().split()
    test = (tmp_path / "test.txt").read_text().split()
    assert len(train) == 4 and test == ["synth-00004"]
    for stem in train + test:
        assert (tmp_path / f"{stem}.mp4").stat().st_size > 0
        assert load(tmp_path / f"{stem}.json").scene in SCENES
    scenes = [load(tmp_path / f"synth-{i:05d}.json").scene for i in range(5)]
    assert scenes == list(SCENES[:5])  # scene classes cycle, balanced


def test_world_split_is_stratified_by_scene():
    """Every scene is in both splits, about a fifth of the videos are test, and the split is a pure function."""
    from collections import Counter

    from avsa.media.synth.scenes import world_scene, world_split

    n = 64  # the demo's world
    splits = [world_split(i) for i in range(n)]
    scenes = {split: Counter(world_scene(i) for i in range(n) if splits[i] == split) for split in ("train", "test")}
    assert set(scenes["train"]) == set(SCENES) and set(scenes["test"]) == set(SCENES)
    assert 0.15 <= splits.count("test") / n <= 0.25
    # balanced: no scene has more than one test video beyond any other
    assert max(scenes["test"].values()) - min(scenes["test"].values()) <= 1
    assert [world_split(i) for i in range(n)] == splits
    # already from 10 videos two different scenes are tested
    assert len({world_scene(i) for i in range(10) if world_split(i) == "test"}) == 2


def test_the_world_is_written_in_conventions_the_spatial_core_knows():
    from avsa.media.layouts import FOA_LAYOUTS
    from avsa.media.synth.config import FOA_CONVENTIONS

    assert set(FOA_CONVENTIONS) <= set(FOA_LAYOUTS)
