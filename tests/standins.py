"""Test support: tiny stand-ins of the downstream datasets, in their exact on-disk layouts.

Imported by the tests as ``standins`` (``tests/`` is on their path); nothing
in ``src/`` uses it.

The real datasets cannot be downloaded here; these writers let every loader,
probe and CLI path run end to end on a fresh clone. Content depends on the
class (tone frequency and direction for audio, colour and motion for video),
so a probe can learn something; everything else (media length, counts) is
scaled down. Each writer returns the root to pass to the matching loader.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile

from avsa.evaluate.datasets import eigenscape, tau

UCF_CLASSES = ("ApplyEyeMakeup", "Archery", "HandstandPushups")
HMDB_CLASSES = ("brush_hair", "cartwheel", "wave")


def class_tone(label: int, n_samples: int, sample_rate: int, *, rng: np.random.Generator) -> np.ndarray:
    """A class-dependent tone in noise, ``(n_samples,)`` float32 in [-1, 1].

    Frequency ``sample_rate / 16 · (1 + label)`` (wrapped below Nyquist), amplitude
    0.3, plus white noise of std 0.05.
    """
    t = np.arange(n_samples) / sample_rate
    freq = (sample_rate / 16) * (1 + label % 7)
    phase = rng.uniform(0, 2 * np.pi)
    return (0.3 * np.sin(2 * np.pi * freq * t + phase) + 0.05 * rng.standard_normal(n_samples)).astype(np.float32)


def class_frames(label: int, n_frames: int, *, width: int = 64, height: int = 48,
                 rng: np.random.Generator) -> np.ndarray:
    """Video frames ``(T, H, W, 3)`` uint8: class colour + a bar moving at a class speed."""
    hue = np.array([(label * 97) % 256, (label * 53 + 80) % 256, (label * 151 + 160) % 256], np.float32)
    frames = np.empty((n_frames, height, width, 3), np.float32)
    frames[:] = hue
    frames += rng.normal(0, 12, size=frames.shape)
    bar = max(2, width // 8)
    for t in range(n_frames):
        x = int((t * (1 + label) * 2 + rng.integers(width)) % (width - bar))
        frames[t, :, x:x + bar] = 255 - hue
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_video(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 16, codec: str = "mpeg4") -> None:
    """Encode ``frames`` ``(T, H, W, 3)`` uint8 (H, W even) to ``path`` with PyAV."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_eigenscape(
    root: str | os.PathLike,
    *,
    classes: int = 8,
    recordings: int = 8,
    seconds: float = 2.0,
    sample_rate: int = 4000,
    channels: int = 25,
    lite: bool = False,
    cut_s: float | None = None,
    seed: int = 0,
) -> Path:
    """Write an EigenScape stand-in: ``<Class>.<N>.wav`` (or ``.flac``) files.

    Parameters
    ----------
    root : path-like
        Folder to create.
    classes, recordings : int
        First ``classes`` of the 8 class names; recording numbers 1..recordings.
    seconds : float
        Length of each recording (the loader's ``segment_s`` scales down with it).
    sample_rate : int
        Hz.
    channels : int
        25 (full release, 4th order) or 4 (FOA). The first 4 are W, Y, Z, X
        (SN3D) of a class tone arriving from a class-dependent azimuth.
    lite : bool
        Write 4-channel ``.flac`` (the "Lite" release) instead of ``.wav``.
    cut_s : float, optional
        Instead write already-cut segments ``<Class>.<N>.<SS>.wav`` of this length.
    seed : int

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    rows = ["Filename,Class,Location,Time,Date,Additional Information"]
    for label, name in enumerate(eigenscape.CLASSES[:classes]):
        azimuth = label * 2 * np.pi / max(classes, 1)
        for rec in range(1, recordings + 1):
            s = class_tone(label, n, sample_rate, rng=rng)
            foa = np.stack([s, s * np.sin(azimuth), np.zeros_like(s), s * np.cos(azimuth)])
            extra = 0.01 * rng.standard_normal((max(channels, 4) - 4, n)).astype(np.float32)
            audio = np.concatenate([foa, extra])[: 4 if lite else channels].T
            ext = "flac" if lite else "wav"
            if cut_s is None:
                soundfile.write(root / f"{name}.{rec}.{ext}", audio, sample_rate, subtype="PCM_16")
            else:
                step = int(round(cut_s * sample_rate))
                for k in range(n // step):
                    soundfile.write(root / f"{name}.{rec}.{k + 1:02d}.{ext}", audio[k * step:(k + 1) * step],
                                    sample_rate, subtype="PCM_16")
            rows.append(f"{name}.{rec}.wav,{name},Site {label}-{rec},12:00,01/01/2017,")
    (root / "Metadata-EigenScape.csv").write_text("\n".join(rows) + "\n")
    return root


def make_tau(
    root: str | os.PathLike,
    *,
    classes: int = 10,
    cities: tuple[str, ...] = ("lisbon", "lyon", "prague"),
    segments: int = 2,
    seconds: float = 1.0,
    sample_rate: int = 8000,
    fps: int = 8,
    size: tuple[int, int] = (64, 48),
    meta_folder: bool = True,
    crlf: bool = True,
    seed: int = 0,
) -> Path:
    """Write a TAU Audio-Visual Urban Scenes 2021 development stand-in.

    One location per (class, city); ``segments`` clips per location. The last
    city's locations form ``fold1_evaluate``, the others ``fold1_train``
    (locations never shared, as in the official setup).

    Parameters
    ----------
    root : path-like
    classes : int
        First ``classes`` of the 10 scene labels.
    cities : tuple of str
        At least 2.
    segments : int
        Clips per location.
    seconds, sample_rate, fps, size
        Clip length (s), audio rate (Hz), video rate and (width, height).
    meta_folder : bool
        Put the meta files in ``TAU-urban-audio-visual-scenes-2021-development.meta/``
        instead of the root.
    crlf : bool
        Write the tables with CRLF line endings.
    seed : int

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    meta = root / "TAU-urban-audio-visual-scenes-2021-development.meta" if meta_folder else root
    (meta / "evaluation_setup").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    header = "filename_audio\tfilename_video\tscene_label"
    rows = {"meta": [header + "\tidentifier"], "train": [header], "evaluate": [header], "test": ["filename_audio\tfilename_video"]}
    n = int(round(seconds * sample_rate))
    for label, scene in enumerate(tau.CLASSES[:classes]):
        for c, city in enumerate(cities):
            location = 1000 + 10 * label + c
            for seg in range(segments):
                stem = f"{scene}-{city}-{location}-{40000 + seg}"
                s = class_tone(label, n, sample_rate, rng=rng)
                soundfile.write(root / "audio" / f"{stem}.wav", np.stack([s, 0.5 * s], axis=1), sample_rate,
                                subtype="PCM_16")
                write_video(root / "video" / f"{stem}.mp4",
                            class_frames(label, int(seconds * fps), width=size[0], height=size[1], rng=rng), fps=fps)
                files = f"audio/{stem}.wav\tvideo/{stem}.mp4"
                rows["meta"].append(f"{files}\t{scene}\t{city}-{location}")
                split = "evaluate" if c == len(cities) - 1 else "train"
                rows[split].append(f"{files}\t{scene}")
                if split == "evaluate":
                    rows["test"].append(files)
    newline = "\r\n" if crlf else "\n"
    (meta / "meta.csv").write_text(newline.join(rows["meta"]) + newline, newline="")
    for name in ("train", "evaluate", "test"):
        (meta / "evaluation_setup" / f"fold1_{name}.csv").write_text(newline.join(rows[name]) + newline, newline="")
    return root


def make_ucf101(
    root: str | os.PathLike,
    *,
    classes: tuple[str, ...] = UCF_CLASSES,
    groups: int = 4,
    clips_per_group: int = 2,
    frames: int = 16,
    size: tuple[int, int] = (64, 48),
    testlist_with_index: bool = False,
    seed: int = 0,
) -> Path:
    """Write a UCF101 stand-in: ``UCF-101/<Class>/v_<Class>_gGG_cCC.avi`` + ``ucfTrainTestlist/``.

    ``HandstandPushups`` files are spelt ``v_HandStandPushups_…`` as in the
    release. Split k tests the k-th block of ``round(7·groups/25)`` groups
    (with 25 groups: g01–g07, g08–g14, g15–g21, as in the release). Lists use
    CRLF like the release.

    Parameters
    ----------
    root : path-like
    classes : tuple of str
    groups, clips_per_group : int
        Source videos per class and clips per source video; groups ≥ 3.
    frames : int
        Frames per clip (16 fps).
    size : (int, int)
        (width, height), even.
    testlist_with_index : bool
        Append the class index to ``testlist0k.txt`` lines (some copies do).
    seed : int

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    per = max(1, round(7 * groups / 25))
    trains: list[list[str]] = [[], [], []]
    tests: list[list[str]] = [[], [], []]
    for label, name in enumerate(classes):
        file_class = "HandStandPushups" if name == "HandstandPushups" else name
        for g in range(1, groups + 1):
            for c in range(1, clips_per_group + 1):
                file = f"v_{file_class}_g{g:02d}_c{c:02d}.avi"
                write_video(root / "UCF-101" / name / file,
                            class_frames(label, frames, width=size[0], height=size[1], rng=rng))
                for k in range(3):
                    if (g - 1) // per == k:
                        tests[k].append(f"{name}/{file}" + (f" {label + 1}" if testlist_with_index else ""))
                    else:
                        trains[k].append(f"{name}/{file} {label + 1}")
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(classes)), newline="")
    for k in range(3):
        (lists / f"trainlist0{k + 1}.txt").write_text("".join(f"{line}\r\n" for line in trains[k]), newline="")
        (lists / f"testlist0{k + 1}.txt").write_text("".join(f"{line}\r\n" for line in tests[k]), newline="")
    return root


def make_hmdb51(
    root: str | os.PathLike,
    *,
    classes: tuple[str, ...] = HMDB_CLASSES,
    videos_per_class: int = 10,
    frames: int = 16,
    size: tuple[int, int] = (64, 48),
    seed: int = 0,
) -> Path:
    """Write an HMDB51 stand-in: ``<class>/<video>.avi`` + ``testTrainMulti_7030_splits/``.

    In each split, videos are coded 1 (train, 70 %), 2 (test, 30 %) or — one
    per class, rotating with the split — 0 (unused). Lines end with a space,
    as in the release.

    Returns
    -------
    Path
        ``root`` (the split folder is inside it).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for label, name in enumerate(classes):
        videos = [f"{name}_video_{v:02d}.avi" for v in range(videos_per_class)]
        for video in videos:
            write_video(root / name / video, class_frames(label, frames, width=size[0], height=size[1], rng=rng))
        n_test = max(1, round(0.3 * (videos_per_class - 1)))
        for k in range(1, 4):
            order = np.random.default_rng(seed + 100 * k + label).permutation(videos_per_class)
            codes = np.ones(videos_per_class, int)
            codes[order[:n_test]] = 2
            codes[order[-1]] = 0
            lines = "".join(f"{v} {code} \n" for v, code in zip(videos, codes))
            (splits / f"{name}_test_split{k}.txt").write_text(lines)
    return root


STARSS_EVENTS = ((0, math.radians(60.0), math.radians(10.0)), (8, math.radians(-120.0), math.radians(-20.0)))
"""Stand-in STARSS23 events: (class, azimuth, elevation in radians); the second is shifted per recording."""


def make_starss23(
    root: str | os.PathLike, *, splits=("dev-train-sony", "dev-test-tau"), per_split: int = 1,
    seconds: float = 2.0, width: int = 64, fps: int = 10, sample_rate: int = 24000, seed: int = 0,
) -> Path:
    """STARSS23 layout: ``foa_dev/``, ``video_dev/``, ``metadata_dev/`` with ``per_split`` recordings per split.

    Each recording holds the events of :data:`STARSS_EVENTS` (the second one's azimuth moved by 90° per
    recording): event 0 sounds during the first 60 % of the frames, event 1 from 40 % on. Each is white noise
    encoded as an ambiX/SN3D plane wave from its direction while it sounds, and a white square at that
    direction on a dark frame (W × W/2 equirect), so audio, video and labels agree. Labels: one row per
    active 100-ms frame, ``frame, class, source, azimuth, elevation, distance`` in integer degrees and cm.
    """
    from avsa.media import io, starss23
    from avsa.spatial.ambisonics import encode
    from avsa.spatial.sphere import direction_to_equirect

    root = Path(root)
    rng = np.random.default_rng(seed)
    n_label = int(round(seconds / starss23.FRAME_S))
    n_samples, n_video = int(round(seconds * sample_rate)), int(round(seconds * fps))
    height = width // 2
    for s_index, split in enumerate(splits):
        for r in range(per_split):
            name = f"fold{3 + s_index}_room{r + 1}_mix{s_index * per_split + r + 1:03d}"
            foa = np.zeros((4, n_samples), np.float32)
            frames = np.full((n_video, height, width, 3), 30, np.uint8)
            rows = []
            for e, (cls, az, el) in enumerate(STARSS_EVENTS):
                az = az + e * (s_index * per_split + r) * math.pi / 2
                az = math.atan2(math.sin(az), math.cos(az))
                az_deg, el_deg = round(math.degrees(az)), round(math.degrees(el))
                first, last = (0, int(0.6 * n_label)) if e == 0 else (int(0.4 * n_label), n_label)
                rows += [(k, cls, 0, az_deg, el_deg, 150) for k in range(first, last)]
                on = slice(int(first * starss23.FRAME_S * sample_rate), int(last * starss23.FRAME_S * sample_rate))
                noise = (0.2 * rng.standard_normal(on.stop - on.start)).astype(np.float32)
                foa[:, on] += encode(noise, math.radians(az_deg), math.radians(el_deg)).numpy()
                u, v = (int(float(c)) for c in direction_to_equirect(math.radians(az_deg), math.radians(el_deg),
                                                                      width, height))
                half = max(width // 32, 1)
                shown = slice(int(first * starss23.FRAME_S * fps), int(last * starss23.FRAME_S * fps))
                for du in range(-half, half + 1):
                    frames[shown, max(v - half, 0):v + half + 1, (u + du) % width] = 255
            for folder in (starss23.AUDIO_DIR, starss23.VIDEO_DIR, starss23.METADATA_DIR):
                (root / folder / split).mkdir(parents=True, exist_ok=True)
            io.write_audio(root / starss23.AUDIO_DIR / split / f"{name}.wav", np.clip(foa, -1, 1), sample_rate)
            io.write_av(root / starss23.VIDEO_DIR / split / f"{name}.mp4", frames, fps, spherical=False)
            rows.sort()
            (root / starss23.METADATA_DIR / split / f"{name}.csv").write_text(
                "".join(",".join(str(x) for x in row) + "\n" for row in rows), encoding="utf-8")
    return root


SPHERE360_CLIPS = (("Xq9-_abcdEF", 10, "train", "inside"), ("b_7toCijrk0", 20, "test", "audio-folder"),
                   ("zzzzzzzzzzz", 0, None, "inside"))
"""Stand-in Sphere360 clips: (YouTube id, start second, split list or None, where the audio is)."""


def make_sphere360(root: str | os.PathLike, *, seconds: float = 2.0, width: int = 64, fps: int = 10,
                   sample_rate: int = 24000, seed: int = 0) -> Path:
    """Sphere360 layout: ``dataset/split/{train,test}.txt`` and the clips of :data:`SPHERE360_CLIPS`.

    A clip is ``clips/<ytid>_<start>.mp4`` with its 4-channel ambiX audio inside (``inside``), or a
    video-only mp4 plus ``audio/<ytid>_<start>.opus`` (``audio-folder``). Audio: noise from 45° left
    (ambiX/SN3D); video: dark frames with a white square there.
    """
    from avsa.media import io
    from avsa.spatial.ambisonics import encode
    from avsa.spatial.sphere import direction_to_equirect

    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "dataset" / "split").mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "test": []}
    n_video, height = int(round(seconds * fps)), width // 2
    az = math.radians(45.0)
    u, v = (int(float(c)) for c in direction_to_equirect(az, 0.0, width, height))
    for ytid, start, split, where in SPHERE360_CLIPS:
        clip = f"{ytid}_{start}"
        if split is not None:
            lists[split].append(clip)
        foa = encode((0.2 * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32), az, 0.0).numpy()
        frames = np.full((n_video, height, width, 3), 30, np.uint8)
        frames[:, max(v - 2, 0):v + 3, max(u - 2, 0):u + 3] = 255
        (root / "clips").mkdir(exist_ok=True)
        if where == "inside":
            io.write_av(root / "clips" / f"{clip}.mp4", frames, fps, audio=foa, sample_rate=sample_rate)
        else:
            io.write_av(root / "clips" / f"{clip}.mp4", frames, fps)
            (root / "audio").mkdir(exist_ok=True)
            io.write_audio(root / "audio" / f"{clip}.opus", foa, sample_rate)  # Opus: 8/12/16/24/48 kHz
    for split, clips in lists.items():
        (root / "dataset" / "split" / f"{split}.txt").write_text("".join(f"{c}\n" for c in clips), encoding="utf-8")
    return root
