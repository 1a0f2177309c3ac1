"""Reading and writing real 360° media with PyAV.

The one place the project touches video/audio containers. Readers return
equirectangular frames ``uint8 (T, H, W, 3)`` and audio ``float32 (C, N)``
(ambiX/SN3D ``(4, N)`` for the FOA layouts of :mod:`avsa.media.layouts`);
writers store exactly what they are given.

Audio channels are never re-laid-out or down-mixed by the decoder: frames are
decoded in the stream's own channel order, converted to float and mapped by a
named preset. Every failure raises :class:`avsa.errors.MediaError` naming the
file; no raw ``av`` exception escapes.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import queue
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np
from scipy.signal import resample_poly

from avsa.errors import AvsaError, InputError, MediaError
from avsa.media import layouts, metadata
from avsa.media.outputs import safe_output

__all__ = [
    "MediaInfo",
    "probe",
    "read_frames",
    "read_frame_range",
    "stream_frames",
    "read_ahead",
    "read_audio",
    "write_av",
    "write_audio",
]

#: Channel-layout labels used when writing C raw channels (sample i is always
#: stored as channel i; the label only tells players what to expect).
DEFAULT_LAYOUTS: dict[int, str] = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
#: Sample rates libopus accepts.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: Audio codec for each audio-only suffix of :func:`write_audio`.
AUDIO_SUFFIX_CODECS = {".m4a": "aac", ".mp4": "aac", ".opus": "libopus", ".ogg": "libopus", ".mka": "flac", ".mkv": "flac"}
_CODEC_ALIASES = {"opus": "libopus", "h264": "libx264", "pcm": "pcm_s16le"}
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, RuntimeError, EOFError)
#: Frames of at least this many pixels are converted on a second thread while the next ones
#: decode (both release the GIL); for smaller frames, as in the cache's clips, the hand-over
#: costs more than it saves.
CONVERT_THREAD_MIN_PIXELS = 1920 * 960
#: Frame layouts that :func:`stream_frames` yields and :func:`write_av` takes: RGB, or planar YUV 4:2:0.
PIXEL_FORMATS = ("rgb24", "yuv420p")
#: Frames decoded ahead of the conversion thread (each held until converted).
CONVERT_AHEAD = 3
#: Items a :func:`read_ahead` producer runs ahead of its consumer (decoded frames at the consumer's size).
READ_AHEAD = 8
#: Codecs whose decoder can leave out non-reference frames (``skip_frame = "NONREF"``).
NONREF_SKIPPING_CODECS = ("h264",)
#: Packets demuxed ahead of the decoder, to know the presentation times around each frame
#: before decoding it (H.264 reorders at most 16 frames).
LOOKAHEAD_PACKETS = 32


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds (``None`` where the file does not say).

    ``projection`` and ``spatial_audio`` come from the Google spatial-media
    metadata in the file (:mod:`avsa.media.metadata`); ``None`` when absent.
    """

    path: str
    duration_s: float | None
    width: int | None
    height: int | None
    fps: float | None
    n_frames: int | None
    has_video: bool
    has_audio: bool
    audio_channels: int | None
    audio_rate: int | None
    audio_codec: str | None
    video_codec: str | None
    projection: str | None
    spatial_audio: bool | None
    stereo_mode: str | None = None


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(p, "no such file")
    if not p.is_file():
        raise MediaError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise MediaError(p, "empty file (0 bytes)")
    return p


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), mode="r")
    except _AV_ERRORS as exc:
        raise MediaError(path, f"not a readable media file ({_reason(exc)})") from None
    if not container.streams.video and not container.streams.audio:
        container.close()
        raise MediaError(path, "no audio or video stream (truncated, or not a media file)")
    return container


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def probe(path: str | os.PathLike) -> MediaInfo:
    """Describe a media file without decoding it.

    Parameters
    ----------
    path : str or os.PathLike
        Any container FFmpeg reads (MP4, MOV, MKV, M4A, FLAC, WAV, Opus ...).

    Returns
    -------
    MediaInfo
        Duration (s), frame size and rate, stream presence, audio channel
        count/rate/codec, and the spherical metadata if present.
    """
    p = _check_file(path)
    with _open(p) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        durations = [_stream_duration(s) for s in (video, audio) if s is not None]
        durations = [d for d in durations if d]
        if container.duration is not None and container.duration > 0:
            duration_s = container.duration / av.time_base
        else:
            duration_s = max(durations) if durations else None
        fps = _video_rate(video) if video is not None else None
        n_frames = None
        if video is not None:
            n_frames = int(video.frames) or None
            if n_frames is None and fps and duration_s:
                n_frames = int(round((_stream_duration(video) or duration_s) * fps))
        spherical = metadata.read_spherical(p)
        info = MediaInfo(
            path=str(p),
            duration_s=duration_s,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            fps=fps,
            n_frames=n_frames,
            has_video=video is not None,
            has_audio=audio is not None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
            audio_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            video_codec=video.codec_context.name if video is not None else None,
            projection=spherical.projection if spherical else None,
            spatial_audio=spherical.spatial_audio if spherical else None,
            stereo_mode=spherical.stereo_mode if spherical else None,
        )
    return info


def _stream_duration(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return None


def _video_rate(stream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else None


# --------------------------------------------------------------------------- video


def read_frames(
    path: str | os.PathLike,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    projection: str = "auto",
) -> np.ndarray:
    """Decode the frames of a time window as equirectangular RGB.

    Seeks to the keyframe before ``start_s`` and decodes forward, so short
    windows are fast in files with a short keyframe interval.

    Parameters
    ----------
    path : str or os.PathLike
        Video file.
    start_s : float, keyword-only
        Window start in seconds (≥ 0).
    duration_s : float or None, keyword-only
        Window length in seconds; ``None`` reads to the end.
    fps : float or None, keyword-only
        Output frame rate; output frame k is the decoded frame nearest to
        ``t = start_s + k / fps``. ``None`` keeps the file's rate.
    size : (int, int) or None, keyword-only
        Output ``(W, H)`` in pixels; ``None`` keeps the (re-projected) size.
    projection : {"auto", "equirectangular", "cubemap"}, keyword-only
        How the stored frame is laid out. ``"auto"`` uses the file's
        spherical metadata (equi-angular cubemap → re-projected with
        :func:`avsa.media.eac.eac_to_equirect`) and otherwise assumes
        equirectangular. A top-bottom stereoscopic frame (from metadata)
        keeps its top half and a left-right one its left half (the left eye).

    Returns
    -------
    np.ndarray, uint8, shape (T, H, W, 3)
        ``T = round(duration_s · fps)`` frames.

    Raises
    ------
    MediaError
        Missing/unreadable file, no video stream, a window outside the file,
        or a decode error (the message says how far decoding got).
    """
    frames = list(stream_frames(path, start_s=start_s, duration_s=duration_s, fps=fps, size=size,
                                projection=projection))
    if not frames:
        w, h = size if size is not None else (0, 0)
        return np.zeros((0, h, w, 3), np.uint8)
    return np.stack(frames)


def stream_frames(
    path: str | os.PathLike,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    projection: str = "auto",
    pixel_format: str = "rgb24",
) -> Iterator[np.ndarray]:
    """The frames of :func:`read_frames`, one at a time, as they are decoded.

    Each frame is converted (and resized to ``size``) right after decoding, and
    only the latest few decoded frames are kept besides the decoder's own, so
    memory does not grow with the window: pass ``size`` to read a long
    high-resolution file at a small size. Frames of at least
    :data:`CONVERT_THREAD_MIN_PIXELS` are converted on a second thread while
    the next ones decode. Arguments, frames and errors are
    those of :func:`read_frames`; errors are raised while iterating.

    ``pixel_format="yuv420p"`` yields planar YUV 4:2:0 (what an H.264 encoder
    takes, see :func:`write_av`) instead of RGB: a plain equirectangular frame
    then goes from the decoder's YUV to the output size in one libswscale
    pass, with no RGB in between.

    Yields
    ------
    np.ndarray, uint8, shape (H, W, 3), or (3·H/2, W) for ``yuv420p``
        (the Y plane, then U and V side by side in half-width rows: PyAV's
        ``yuv420p`` array)
    """
    p = _check_file(path)
    if projection not in ("auto", "equirectangular", "cubemap"):
        raise InputError(f"projection must be 'auto', 'equirectangular' or 'cubemap', got {projection!r}")
    if pixel_format not in PIXEL_FORMATS:
        raise InputError(f"pixel_format must be one of {', '.join(PIXEL_FORMATS)}, got {pixel_format!r}")
    _check_window(start_s, duration_s)
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise InputError(f"fps must be positive, got {fps!r}")
    stereo_mode, padding = None, 0
    if projection == "auto":
        spherical = metadata.read_spherical(p)
        projection = "equirectangular"
        if spherical is not None:
            stereo_mode = spherical.stereo_mode
            if spherical.projection == "cubemap":
                projection, padding = "cubemap", spherical.cubemap_padding or 0
    with _open(p) as container:
        if not container.streams.video:
            raise MediaError(p, "no video stream")
        stream = container.streams.video[0]
        native_fps = _video_rate(stream)
        out_fps = float(fps) if fps is not None else native_fps
        if not out_fps:
            raise MediaError(p, "unknown frame rate")
        end_s = _stream_duration(stream) or (container.duration / av.time_base if container.duration else None)
        if duration_s is None:
            if end_s is None:
                raise MediaError(p, "unknown duration; pass duration_s")
            duration_s = max(0.0, end_s - start_s)
        n_out = int(round(duration_s * out_fps))
        if end_s is not None and start_s >= end_s:
            raise MediaError(p, f"window starts at {start_s:.3f} s, after the end of the video ({end_s:.3f} s)")
        targets = start_s + np.arange(n_out) / out_fps

        def convert(frame: av.VideoFrame) -> np.ndarray:
            return _to_equirect(frame, projection, stereo_mode, size, padding, pixel_format)

        pixels = (stream.codec_context.width or 0) * (stream.codec_context.height or 0)
        if pixels < CONVERT_THREAD_MIN_PIXELS:
            yield from _pick_nearest(p, container, stream, targets, native_fps, convert)
            return
        with ThreadPoolExecutor(1, thread_name_prefix="avsa-convert") as converter:
            # _pick_nearest hands out what `convert` returns, here futures, a frame picked twice once.
            pending: deque = deque()
            for future in _pick_nearest(p, container, stream, targets, native_fps,
                                        lambda frame: converter.submit(convert, frame)):
                pending.append(future)
                if len(pending) > CONVERT_AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


class read_ahead:  # noqa: N801 - used like the generator function it replaces
    """The items of ``items``, produced on a thread of their own up to ``ahead`` items before they are used.

    For a decoder feeding an encoder: both release the GIL, so the file
    decodes while the previous frames encode instead of in turns. The thread
    starts at once, so the first items decode while the caller does other
    work (``prepare`` reads the clip's audio meanwhile). An error of the
    producer is raised here, in order (after the items before it).
    :meth:`close` (also on leaving a ``with`` block, or when garbage-collected)
    stops the producer, which closes ``items`` on its own thread (a generator
    is closed where it runs), and waits for it.
    """

    _END = object()

    def __init__(self, items: Iterable, ahead: int = READ_AHEAD):
        if ahead < 1:
            raise InputError(f"ahead must be at least 1, got {ahead!r}")
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, args=(items,), name="avsa-read-ahead", daemon=True)
        self._thread.start()

    def _hand(self, entry) -> bool:
        """Queue ``entry`` unless the consumer has gone; False when it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterable) -> None:
        try:
            for item in items:
                if not self._hand((item, None)):
                    return
            self._hand((self._END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._hand((self._END, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> "read_ahead":
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        item, exc = self._queue.get()
        if item is self._END:
            self.close()
            if exc is not None:
                raise exc
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the producer and wait until it has closed ``items``; idempotent."""
        self._done = True
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> "read_ahead":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()  # the producer ends within its next hand-over; no join from a finaliser


def read_frame_range(path: str | os.PathLike, first_frame: int, n_frames: int, *, fps: float) -> np.ndarray:
    """Frames ``first_frame … first_frame + n_frames − 1`` of a video at ``fps``.

    A shorthand for :func:`read_frames` with ``start_s = first_frame / fps``
    and ``projection="equirectangular"`` (cached clips are equirect).

    Returns
    -------
    np.ndarray, uint8, shape (n_frames, H, W, 3)
    """
    return read_frames(
        path, start_s=first_frame / fps, duration_s=n_frames / fps, fps=fps, projection="equirectangular"
    )


def _pick_nearest(p: Path, container, stream, targets: np.ndarray, native_fps: float | None,
                  convert) -> Iterator[np.ndarray]:
    """Decode forward from the keyframe before targets[0]; yield the nearest frame per target, converted.

    Frames are converted while the decoder is open (a decoded frame's buffer
    does not outlive its container); a frame picked twice is converted once.
    Nothing is kept but the latest two decoded frames.
    """
    if len(targets) == 0:
        return
    frame_period = 1.0 / native_fps if native_fps else 0.04
    tb = stream.time_base
    converted: dict[int, tuple[av.VideoFrame, np.ndarray]] = {}  # holding the frame keeps its id unique

    def take(frame: av.VideoFrame) -> np.ndarray:
        if id(frame) not in converted:
            converted.clear()  # only the latest two frames can be picked again
            converted[id(frame)] = (frame, convert(frame))
        return converted[id(frame)][1]

    previous: tuple[float, av.VideoFrame] | None = None
    k = 0
    n_decoded = 0
    try:
        if targets[0] > 0:
            # The nearest frame to targets[0] is no earlier than half a period before it; a target on
            # the frame grid is a frame itself, so decoding starts at the keyframe at or before it.
            on_grid = native_fps and abs(targets[0] * native_fps - round(targets[0] * native_fps)) < 1e-6
            seek = round(targets[0] / tb) if on_grid else int(max(0.0, targets[0] - frame_period / 2) / tb)
            container.seek(seek, stream=stream, backward=True)
        for frame in _decode_for_targets(container, stream, targets):
            n_decoded += 1
            t = float(frame.pts * tb) if frame.pts is not None else (frame.time or 0.0)
            while k < len(targets) and (t >= targets[k]):
                nearer = previous is not None and abs(previous[0] - targets[k]) <= abs(t - targets[k])
                picked = take(previous[1] if nearer else frame)
                k += 1
                yield picked
            if k == len(targets):
                break
            previous = (t, frame)
    except _AV_ERRORS as exc:
        raise MediaError(
            p, f"decode error after {k} of {len(targets)} frames of the window ({_reason(exc)})"
        ) from None
    # Targets after the last decoded frame: accept the last frame within one frame period.
    while k < len(targets):
        if previous is None or targets[k] - previous[0] > frame_period * 1.01:
            last = f"{previous[0]:.3f} s" if previous is not None else "none decoded"
            raise MediaError(
                p, f"window needs a frame at {targets[k]:.3f} s, past the end of the video (last frame {last})"
            )
        k += 1
        yield take(previous[1])


def _decode_for_targets(container, stream, targets: np.ndarray) -> Iterator[av.VideoFrame]:
    """Decode ``stream`` from where the container stands, leaving out frames no target can pick.

    :func:`_pick_nearest` gives target τ the frame nearest to it, the earlier one on a tie: a
    frame at t, between neighbours (in presentation order) at p and n, is picked only by the
    targets in ``((p + t)/2, (t + n)/2]``. A frame with no target there that no other frame
    refers to (an H.264 non-reference frame) is not decoded (``skip_frame = "NONREF"`` for its
    packet); its neighbours then split an interval holding no target, so every pick stays the
    same. Reference frames are always decoded. The neighbours' times are read from the packets
    (demuxed :data:`LOOKAHEAD_PACKETS` ahead); when a packet has no time, the codec cannot skip,
    or the targets are no sparser than the stream's frames (a window of a cached clip at its
    own rate), every frame is decoded, as it comes.

    Parameters
    ----------
    targets : np.ndarray, float, shape (K,)
        Increasing target times in seconds.
    """
    context = stream.codec_context
    rate = _video_rate(stream)
    sparser = len(targets) > 1 and rate is not None and (targets[-1] - targets[0]) / (len(targets) - 1) * rate > 1.01
    if context.name not in NONREF_SKIPPING_CODECS or not sparser:
        yield from container.decode(stream)
        return
    time_base = float(stream.time_base)  # rounding is covered by margin_s
    can_skip = True
    margin_s = 1e-6  # widens every interval: rounding can only make a frame decoded, never skipped
    times: list[float] = []  # sorted presentation times of the packets demuxed so far
    ahead: deque = deque()
    demuxed = container.demux(stream)
    exhausted = False

    def needed(packet) -> bool:
        t = packet.pts * time_base
        i = bisect.bisect_left(times, t)
        previous = times[i - 1] if i > 0 else -math.inf
        if i + 1 < len(times):
            following = times[i + 1]
        elif exhausted:
            following = math.inf
        else:
            return True
        first = int(np.searchsorted(targets, (previous + t) / 2 - margin_s, side="right"))
        return first < len(targets) and targets[first] <= (t + following) / 2 + margin_s

    while ahead or not exhausted:
        while not exhausted and len(ahead) <= LOOKAHEAD_PACKETS:
            packet = next(demuxed, None)
            if packet is None:
                exhausted = True
            elif packet.size == 0:  # the flush packet that ends the stream
                ahead.append(packet)
            else:
                if packet.pts is None:
                    can_skip = False
                else:
                    bisect.insort(times, packet.pts * time_base)
                ahead.append(packet)
        if not ahead:
            break
        packet = ahead.popleft()
        if can_skip and packet.size:
            context.skip_frame = "DEFAULT" if needed(packet) else "NONREF"
        yield from packet.decode()


def _to_equirect(frame: av.VideoFrame, projection: str, stereo_mode: str | None, size, padding: int,
                 pixel_format: str = "rgb24") -> np.ndarray:
    whole_frame = projection == "equirectangular" and stereo_mode in (None, "mono")
    if pixel_format != "rgb24" and not whole_frame:
        return _rgb_to(_to_equirect(frame, projection, stereo_mode, size, padding), pixel_format)
    if whole_frame:
        if size is None:
            return _swscale(frame, format=pixel_format)
        # The pixel format and the resize in one pass of libswscale, averaging the source pixels each
        # output pixel covers (a box half as wide as the default bilinear tent, so half the taps per pixel).
        return _swscale(frame, width=int(size[0]), height=int(size[1]), format=pixel_format, interpolation="AREA")
    rgb = _swscale(frame, format="rgb24")
    if stereo_mode == "top-bottom":
        rgb = rgb[: rgb.shape[0] // 2]
    elif stereo_mode == "left-right":
        rgb = rgb[:, : rgb.shape[1] // 2]
    if projection == "cubemap":
        from avsa.media.eac import eac_to_equirect

        face = rgb.shape[0] // 2
        out = tuple(size) if size is not None else (4 * face, 2 * face)
        return eac_to_equirect(rgb, out, padding=padding)
    if size is None:
        return np.ascontiguousarray(rgb)
    return _resize(rgb, size)


def _rgb_to(rgb: np.ndarray, pixel_format: str) -> np.ndarray:
    """An RGB frame in ``pixel_format`` (one of :data:`PIXEL_FORMATS`)."""
    if pixel_format == "rgb24":
        return rgb
    return _swscale(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24"), format=pixel_format)


def _resize(rgb: np.ndarray, size) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return _swscale(frame, width=int(size[0]), height=int(size[1]), format="rgb24")


def _swscale(frame: av.VideoFrame, **reformat) -> np.ndarray:
    """``frame.reformat(**reformat)`` as an array, on one libswscale thread.

    One thread: the same output from several costs more CPU time, which a machine running one job per core
    lacks; and a decoding worker forked from a process that had converted frames hung inside a conversion
    once (a test run), which one thread rules out as libswscale's own thread pool.
    """
    return frame.reformat(threads=1, **reformat).to_ndarray()


# --------------------------------------------------------------------------- audio


def read_audio(
    path: str | os.PathLike,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    sample_rate: int | None = None,
    layout: str = "ambix",
) -> np.ndarray:
    """Decode the audio of a time window, channels raw, mapped by a preset.

    Parameters
    ----------
    path : str or os.PathLike
        Audio or video file.
    start_s : float, keyword-only
        Window start in seconds (≥ 0), sample-accurate (by frame pts).
    duration_s : float or None, keyword-only
        Window length in seconds; ``None`` reads to the end.
    sample_rate : int or None, keyword-only
        Output rate in Hz; resampled per channel with a polyphase filter
        (``scipy.signal.resample_poly``). ``None`` keeps the file's rate.
    layout : str, keyword-only
        Channel preset of :mod:`avsa.media.layouts` (``ambix``, ``fuma``,
        ``n3d``, ``youtube-aac``, ``ambix+headlocked``, ``raw``).

    Returns
    -------
    np.ndarray, float32, shape (C, N)
        C = 4 (ambiX/SN3D W, Y, Z, X) for the FOA presets, the file's channel
        count for ``raw``; ``N = round(duration_s · sample_rate)``.

    Raises
    ------
    MediaError
        Missing/unreadable file, no audio stream, a channel count the layout
        cannot take, a window outside the file (a tail shortfall under one
        codec frame is zero-padded), or a decode error.
    """
    p = _check_file(path)
    layouts.check_name(layout)
    _check_window(start_s, duration_s)
    if sample_rate is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
        raise InputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    with _open(p) as container:
        if not container.streams.audio:
            raise MediaError(p, "no audio stream")
        stream = container.streams.audio[0]
        rate_in = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        layouts.check_channels(p, channels, layout)
        rate_out = int(sample_rate) if sample_rate is not None else rate_in
        up, down = rate_out // gcd(rate_out, rate_in), rate_in // gcd(rate_out, rate_in)
        # Native sample window, with a margin on each side for the resampling filter.
        i0 = int(round(start_s * rate_in))
        n_out = int(round(duration_s * rate_out)) if duration_s is not None else None
        margin = 0 if up == down == 1 else down * max(1, math.ceil(64 / down))
        pre = min(margin, (i0 // down) * down)
        first = i0 - pre
        last = None if n_out is None else i0 + math.ceil(n_out * rate_in / rate_out) + margin
        raw, got_first, max_frame = _decode_samples(p, container, stream, first, last)
    if raw.shape[1] == 0 or got_first > first:
        end = (got_first + raw.shape[1]) / rate_in
        if raw.shape[1] == 0 or got_first > i0:
            raise MediaError(p, f"window starting at {start_s:.3f} s lies outside the audio (0–{end:.3f} s)")
        pre -= got_first - first  # stream starts after the margin: keep what exists
    if up != down:
        raw = resample_poly(raw, up, down, axis=1).astype(np.float32)
        pre = pre * up // down
    out = raw[:, pre:]
    if n_out is not None:
        shortfall = n_out - out.shape[1]
        if shortfall > 0:
            tolerance = max(max_frame, 1024) * rate_out / rate_in
            if shortfall > tolerance:
                have = out.shape[1] / rate_out
                raise MediaError(
                    p,
                    f"window {start_s:.3f}–{start_s + duration_s:.3f} s extends past the end of the audio "
                    f"(only {have:.3f} s available from {start_s:.3f} s)",
                )
            out = np.pad(out, ((0, 0), (0, shortfall)))
        out = out[:, :n_out]
    return layouts.apply(np.ascontiguousarray(out, dtype=np.float32), layout, path=p)


def _decode_samples(p: Path, container, stream, first: int, last: int | None) -> tuple[np.ndarray, int, int]:
    """Samples [first, last) of an audio stream at its native rate, float32 (C, n).

    Returns the samples, the index of the first returned sample (> first when
    the stream starts later) and the longest decoded frame (samples).
    """
    rate = stream.codec_context.sample_rate
    tb = stream.time_base
    chunks: list[np.ndarray] = []
    start_index: int | None = None
    position: int | None = None
    max_frame = 0
    try:
        if first > 0:
            container.seek(int(max(0.0, first / rate - 0.1) / tb), stream=stream, backward=True)
        for frame in container.decode(stream):
            data = _frame_samples(frame)
            n = data.shape[1]
            max_frame = max(max_frame, n)
            if frame.pts is not None:
                frame_start = int(round(float(frame.pts * tb) * rate))
            else:
                frame_start = position if position is not None else 0
            position = frame_start + n
            if position <= first:
                continue
            if start_index is None:
                cut = max(0, first - frame_start)
                data = data[:, cut:]
                start_index = frame_start + cut
            chunks.append(data)
            if last is not None and position >= last:
                break
    except _AV_ERRORS as exc:
        read = sum(c.shape[1] for c in chunks) / rate
        raise MediaError(p, f"decode error after {read:.3f} s of the window ({_reason(exc)})") from None
    channels = stream.codec_context.channels
    if not chunks:
        return np.zeros((channels, 0), np.float32), first, max_frame
    raw = np.concatenate(chunks, axis=1)
    if last is not None:
        raw = raw[:, : last - start_index]
    return raw, start_index, max_frame


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as float32 (C, n), channels in stream order."""
    array = frame.to_ndarray()
    fmt = frame.format
    channels = frame.layout.nb_channels
    if not fmt.is_planar:
        array = array.reshape(-1, channels).T
    kind = fmt.name.rstrip("p")
    if kind == "s16":
        return array.astype(np.float32) / 32768.0
    if kind == "s32":
        return (array.astype(np.float64) / 2147483648.0).astype(np.float32)
    if kind == "u8":
        return (array.astype(np.float32) - 128.0) / 128.0
    if kind == "s64":
        return (array.astype(np.float64) / 9223372036854775808.0).astype(np.float32)
    return array.astype(np.float32, copy=False)


def _check_window(start_s: float, duration_s: float | None) -> None:
    if not (math.isfinite(start_s) and start_s >= 0):
        raise InputError(f"start_s must be a finite number ≥ 0, got {start_s!r}")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s >= 0):
        raise InputError(f"duration_s must be a finite number ≥ 0, got {duration_s!r}")


# --------------------------------------------------------------------------- writing


def write_av(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    audio_codec: str = "flac",
    video_codec: str = "h264",
    crf: int = 23,
    gop: int | None = None,
    spherical: bool = True,
    projection: str = "equirectangular",
    raw_audio_channels: str | None = None,
    overwrite: bool = True,
    pixel_format: str = "rgb24",
) -> None:
    """Write frames (and optionally raw multichannel audio) to a video file.

    The file is written under a temporary name in its folder and renamed into
    place when complete (:func:`avsa.media.outputs.safe_output`): a failed
    write leaves whatever was at ``path`` untouched.

    Parameters
    ----------
    path : str or os.PathLike
        ``.mp4``, ``.mov`` or ``.mkv``; the container follows the suffix.
    frames : np.ndarray, uint8, shape (T, H, W, 3), or an iterable of (H, W, 3) frames
        RGB frames; H and W must be even (yuv420p). An iterable is encoded as it
        yields, so a long clip is never all in memory.
    fps : float
        Frame rate in Hz.
    audio : np.ndarray, float, shape (C, N), optional, keyword-only
        Samples in [−1, 1] (clipped with a warning otherwise). Channel i is
        stored as channel i, never re-laid-out.
    sample_rate : int, optional, keyword-only
        Audio rate in Hz (required with ``audio``).
    audio_codec : str, keyword-only
        ``flac``, ``opus`` (libopus; > 2 channels use mapping family 255,
        independent channels), ``aac``, ``pcm_s16le``/``pcm_s24le`` (.mov
        /.mkv), ``alac``.
    video_codec : str, keyword-only
        ``h264`` (libx264, yuv420p, preset veryfast) or any FFmpeg encoder.
    crf : int, keyword-only
        x264 constant rate factor (lower = better).
    gop : int or None, keyword-only
        Keyframe interval in frames; ``None`` keeps the encoder default.
    spherical : bool, keyword-only
        Write Google spherical-video metadata (V1 XML ``uuid`` box and V2
        ``st3d``/``sv3d`` boxes) into MP4/MOV files, plus an ``SA3D`` box for
        4-channel audio (ambiX, ACN/SN3D).
    projection : {"equirectangular", "cubemap"}, keyword-only
        Projection named in that metadata (``cubemap`` = YouTube's EAC).
    raw_audio_channels : str or None, keyword-only
        Channel-layout label for the track (``"quad"``, ``"5.1"`` ...);
        default by count (4 → quad, 6 → 5.1 as YouTube's AAC). A label only:
        the samples are stored in the given order either way.
    overwrite : bool, keyword-only
        Replace an existing file (atomically); False refuses it with an
        :class:`~avsa.errors.InputError` (what the commands do without
        ``--overwrite``).
    pixel_format : {"rgb24", "yuv420p"}, keyword-only
        How ``frames`` are laid out: RGB (T, H, W, 3), or planar YUV 4:2:0 of
        shape (T, 3·H/2, W) as :func:`stream_frames` yields it, which the
        encoder takes as it is (no conversion).
    """
    p = Path(path)
    if pixel_format not in PIXEL_FORMATS:
        raise InputError(f"pixel_format must be one of {', '.join(PIXEL_FORMATS)}, got {pixel_format!r}")
    rgb = pixel_format == "rgb24"
    frame_shape = "H, W, 3" if rgb else "3·H/2, W"
    if isinstance(frames, (np.ndarray, list, tuple)):
        frames = np.asarray(frames)
        if frames.ndim != (4 if rgb else 3) or (rgb and frames.shape[-1] != 3) or frames.dtype != np.uint8:
            raise InputError(f"frames must be uint8 (T, {frame_shape}), got {frames.dtype} {frames.shape}")
        first_shape = frames.shape[1:]
    else:  # an iterable of frames, encoded as they come
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            raise InputError("frames: the iterable gave no frame")
        first = np.asarray(first)
        if first.ndim != (3 if rgb else 2) or (rgb and first.shape[-1] != 3) or first.dtype != np.uint8:
            raise InputError(f"each frame must be uint8 ({frame_shape}), got {first.dtype} {first.shape}")
        first_shape = first.shape
        frames = _same_shape(itertools.chain([first], frames), first.shape)
    height, width = (first_shape[0], first_shape[1]) if rgb else (first_shape[0] * 2 // 3, first_shape[1])
    if not rgb and height * 3 // 2 != first_shape[0]:
        raise InputError(f"a yuv420p frame has 3·H/2 rows for an even H, got {first_shape}")
    if height % 2 or width % 2:
        raise InputError(f"frame size must be even for yuv420p, got {width}×{height}")
    if not (fps > 0 and math.isfinite(fps)):
        raise InputError(f"fps must be positive, got {fps!r}")
    if projection not in ("equirectangular", "cubemap"):
        raise InputError(f"projection must be 'equirectangular' or 'cubemap', got {projection!r}")
    if audio is not None:
        audio = _check_audio(audio, sample_rate)
        _check_audio_codec(audio_codec, int(sample_rate))
    with safe_output(p, overwrite=overwrite) as temporary:
        _write_video(p, temporary, frames, fps, width, height, audio, sample_rate, audio_codec, video_codec,
                     crf, gop, raw_audio_channels, pixel_format)
        if spherical and p.suffix.lower() in (".mp4", ".mov", ".m4v"):
            metadata.inject_spherical(
                temporary, projection=projection,
                ambisonic_channels=audio.shape[0] if audio is not None and audio.shape[0] == 4 else None,
            )


def _same_shape(frames, shape: tuple[int, ...]):
    """The frames of an iterable, each checked to be uint8 of ``shape``."""
    for k, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.shape != shape or frame.dtype != np.uint8:
            raise InputError(f"frame {k} is {frame.dtype} {frame.shape}, the first was uint8 {shape}")
        yield frame


def _write_video(p: Path, temporary: Path, frames, fps, width, height, audio, sample_rate, audio_codec, video_codec,
                 crf, gop, raw_audio_channels, pixel_format="rgb24") -> None:
    """Encode into ``temporary``; errors name ``p``, the file the user asked for."""
    try:
        with av.open(str(temporary), mode="w") as container:
            vcodec = _CODEC_ALIASES.get(video_codec, video_codec)
            options = {"crf": str(crf), "preset": "veryfast"} if vcodec == "libx264" else {}
            vstream = container.add_stream(vcodec, rate=Fraction(fps).limit_denominator(100000), options=options)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            if gop is not None:
                vstream.codec_context.gop_size = int(gop)
                if vcodec == "libx264":
                    vstream.codec_context.options = {**options, "keyint_min": str(int(gop)), "sc_threshold": "0"}
            astream = None
            if audio is not None:
                astream = _add_audio_stream(container, audio_codec, audio.shape[0], int(sample_rate), raw_audio_channels)
            for array in frames:
                frame = av.VideoFrame.from_ndarray(array, format=pixel_format)
                if pixel_format != "yuv420p":
                    frame = frame.reformat(format="yuv420p")
                for packet in vstream.encode(frame):
                    container.mux(packet)
            for packet in vstream.encode(None):
                container.mux(packet)
            if astream is not None:
                _encode_audio(container, astream, audio, int(sample_rate))
    except AvsaError:  # from the frames' iterable (a bad frame, the source it decodes): it names what failed
        raise
    except _AV_ERRORS as exc:
        raise MediaError(p, f"cannot write ({_reason(exc)})") from None



def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, *, codec: str | None = None,
                overwrite: bool = True) -> None:
    """Write raw multichannel audio to an audio file (through a temporary, as :func:`write_av`).

    Parameters
    ----------
    path : str or os.PathLike
        ``.wav``/``.flac`` (libsndfile, 24-bit / PCM_24), ``.m4a`` (AAC),
        ``.opus``/``.ogg`` (libopus), ``.mka`` (FLAC) via PyAV.
    audio : np.ndarray, float, shape (C, N)
        Samples in [−1, 1]; channel i is stored as channel i.
    sample_rate : int
        Hz.
    codec : str or None, keyword-only
        Override the codec chosen from the suffix (PyAV containers only).
    overwrite : bool, keyword-only
        Replace an existing file (atomically); False refuses it.
    """
    p = Path(path)
    audio = _check_audio(audio, sample_rate)
    suffix = p.suffix.lower()
    if suffix in (".wav", ".flac") and codec is None:
        import soundfile

        with safe_output(p, overwrite=overwrite) as temporary:
            try:
                soundfile.write(str(temporary), audio.T, int(sample_rate), subtype="PCM_24",
                                format=suffix.lstrip(".").upper())
            except (RuntimeError, OSError) as exc:
                raise MediaError(p, f"cannot write ({_reason(exc)})") from None
        return
    name = codec or AUDIO_SUFFIX_CODECS.get(suffix)
    if name is None:
        raise InputError(f"{p}: unknown audio suffix {suffix!r}; use .wav, .flac, .m4a, .opus, .ogg or .mka")
    _check_audio_codec(name, int(sample_rate))
    with safe_output(p, overwrite=overwrite) as temporary:
        try:
            with av.open(str(temporary), mode="w") as container:
                stream = _add_audio_stream(container, name, audio.shape[0], int(sample_rate), None)
                _encode_audio(container, stream, audio, int(sample_rate))
        except _AV_ERRORS as exc:
            raise MediaError(p, f"cannot write ({_reason(exc)})") from None


def _check_audio(audio: np.ndarray, sample_rate: int | None) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] < 1 or audio.shape[0] > 16:
        raise InputError(f"audio must be (C, N) with 1 ≤ C ≤ 16, got shape {audio.shape}")
    if sample_rate is None or int(sample_rate) != sample_rate or sample_rate <= 0:
        raise InputError(f"sample_rate must be a positive integer with audio, got {sample_rate!r}")
    if not np.all(np.isfinite(audio)):
        raise InputError("audio contains NaN or infinite samples")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1.0:
        warnings.warn(f"audio peak {peak:.3f} > 1 is clipped", stacklevel=3)
        audio = np.clip(audio, -1.0, 1.0)
    return audio


def _check_audio_codec(codec: str, sample_rate: int) -> None:
    name = _CODEC_ALIASES.get(codec, codec)
    try:
        av.codec.Codec(name, "w")
    except _AV_ERRORS:
        raise InputError(f"unknown audio encoder {codec!r}") from None
    if name == "libopus" and sample_rate not in OPUS_RATES:
        raise InputError(f"Opus needs a sample rate in {OPUS_RATES}, got {sample_rate}")


def _add_audio_stream(container, codec: str, channels: int, sample_rate: int, label: str | None):
    name = _CODEC_ALIASES.get(codec, codec)
    label = label or DEFAULT_LAYOUTS.get(channels) or f"{channels}c"
    if av.AudioLayout(label).nb_channels != channels:
        raise InputError(f"channel layout {label!r} does not have {channels} channels")
    options = {}
    if name == "libopus" and channels > 2:
        options["mapping_family"] = "255"  # independent mono streams: no coupling, no LFE
    if name == "aac":
        options["b"] = str(96000 * channels)
    stream = container.add_stream(name, rate=sample_rate, options=options)
    stream.codec_context.layout = label
    stream.codec_context.sample_rate = sample_rate
    return stream


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    """Encode (C, N) float audio in codec-sized frames with exact sample pts."""
    ctx = stream.codec_context
    fmt = ctx.format.name
    block = ctx.frame_size or 1024
    layout = ctx.layout.name
    for offset in range(0, audio.shape[1], block):
        chunk = audio[:, offset : offset + block]
        frame = av.AudioFrame.from_ndarray(_to_format(chunk, fmt), format=fmt, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = offset
        frame.time_base = Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _to_format(chunk: np.ndarray, fmt: str) -> np.ndarray:
    """(C, n) float32 → the array PyAV expects for sample format ``fmt``."""
    kind = fmt.rstrip("p")
    if kind == "s16":
        data = np.clip(np.round(chunk * 32768.0), -32768, 32767).astype(np.int16)
    elif kind == "s32":
        data = np.clip(np.round(chunk.astype(np.float64) * 2147483648.0), -2147483648, 2147483647).astype(np.int32)
    elif kind == "flt":
        data = chunk.astype(np.float32)
    elif kind == "dbl":
        data = chunk.astype(np.float64)
    else:
        raise InputError(f"unsupported sample format {fmt!r}")
    if fmt.endswith("p"):
        return np.ascontiguousarray(data)
    return np.ascontiguousarray(data.T).reshape(1, -1)
