"""Where does the model hear each sound? An alignment heatmap over the 360° frame (``avsa localize``).

For a grid of directions (azimuth × elevation), the gnomonic crop there and the
FOA rotated so that direction is front are embedded in groups of four crops
90° apart in azimuth (as in training), and a score per crop is drawn over the
equirectangular frame: by default how uniquely the crop's video picks its own
rotation of the sound field among the group's four (``score="spatial"``), or
the model's plain alignment of the crop with its own audio (``"alignment"``). On synthetic clips
:func:`localization_hit_rate` says how often the peak lands on a sounding object.

    avsa localize runs/demo/checkpoints/avsa.pt clip.mp4 --time 3.5 --out heat.png

The frames of the window are decoded at the model's equirect width
(``Pretrained.equirect_width``), whatever the file's resolution. The PNG goes
to the current folder unless ``out`` says otherwise (never beside the data),
an existing file is refused unless ``overwrite``, and it is written under a
temporary name in its folder and renamed when complete.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from avsa.errors import InputError, MediaError
from avsa.inference.pretrained import Pretrained, load_pretrained
from avsa.spatial import projection, sphere

ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""score(azimuth (R, C), elevation (R, C), frames, foa) → (R, C): replaces the model (tests, oracles)."""
SCORES = ("spatial", "alignment")
"""The scores :func:`alignment_map` can draw; the first is the default."""


def direction_grid(n_azimuth: int, n_elevation: int, *, max_elevation: float = math.radians(60)):
    """Grid of directions, azimuth descending left→right like the equirect frame.

    Returns azimuth, elevation : torch.Tensor (n_elevation, n_azimuth), radians. ``n_azimuth``
    must be a multiple of 4 (AVSA scores four crops 90° apart together).
    """
    if n_azimuth % 4 or n_azimuth < 4 or n_elevation < 1:
        raise InputError(f"grid needs a multiple of 4 azimuths and >= 1 elevation, got {n_azimuth}x{n_elevation}")
    az = math.pi - (torch.arange(n_azimuth) + 0.5) * (2 * math.pi / n_azimuth)
    el = torch.linspace(max_elevation, -max_elevation, n_elevation) if n_elevation > 1 else torch.zeros(1)
    return az[None].expand(n_elevation, -1), el[:, None].expand(-1, n_azimuth)


@torch.no_grad()
def alignment_map(p: Pretrained, frames: torch.Tensor, foa: torch.Tensor, *, grid: tuple[int, int] = (36, 9),
                  fov: float = math.radians(60), max_elevation: float = math.radians(60),
                  score_fn: ScoreFn | None = None, score: str = "spatial"):
    """Alignment score over a grid of directions for one window.

    Parameters
    ----------
    p : Pretrained
    frames : torch.Tensor uint8 (T, 3, H, W), equirectangular (T = the model's frames)
    foa : torch.Tensor (4, N), ambiX/SN3D at the model's rate (1 s)
    grid : (n_azimuth, n_elevation)
    fov : crop field of view, radians
    score_fn : optional replacement of the model's score (tests, oracles)
    score : {"spatial", "alignment"}
        ``alignment``: the model's alignment of each crop with its own audio
        (:meth:`Pretrained.alignment`). ``spatial`` (default): how much better
        the crop's video matches its own rotation of the sound field than the
        three other rotations of the group — the log-softmax, over the four
        audios, of :meth:`Pretrained.spatial_scores` at the crop's own audio,
        at the training temperature. A crop showing nothing that sounds fits
        every rotation about equally (a low score); one showing the source fits
        only the rotation that puts the source in front.

    Returns
    -------
    scores, azimuth, elevation : torch.Tensor (n_elevation, n_azimuth)
    """
    az, el = direction_grid(grid[0], grid[1], max_elevation=max_elevation)
    if score_fn is not None:
        return score_fn(az, el, frames, foa), az, el
    rows, cols = az.shape
    quarter = cols // 4
    # clips of 4 crops 90° apart: clip (r, c) holds columns c, c+q, c+2q, c+3q of row r
    col_index = torch.arange(quarter)[:, None] + quarter * torch.arange(4)[None]  # (q, 4)
    caz = az[:, col_index].reshape(-1, 4)  # (rows·q, 4)
    cel = el[:, col_index].reshape(-1, 4)
    flat_az, flat_el = caz.reshape(-1).to(p.device), cel.reshape(-1).to(p.device)
    crops = projection.gnomonic_crop(frames.to(p.device), flat_az, flat_el, torch.full_like(flat_az, fov),
                                     p.crop_size).unflatten(0, caz.shape)  # (B, 4, T, 3, S, S)
    video = p.video_input(crops)  # (B, 4, 3, T, S, S)
    audio = p.foa_input(foa[None, None].to(p.device), caz.to(p.device), cel.to(p.device))  # (B, 4, C, 100, 128)
    b = video.shape[0]
    v, a = p.encode(video.flatten(0, 1), audio.flatten(0, 1))
    directions = torch.stack([caz, cel], dim=-1).to(p.device)  # (B, 4, 2)
    v, a = v.unflatten(0, (b, 4)), a.unflatten(0, (b, 4))
    if score == "alignment":
        scores = p.alignment(v, a, directions).cpu()  # (B, 4)
    elif score == "spatial":
        s = p.spatial_scores(v, a, directions) / p.config.temperature  # (B, 4 audio, 4 video)
        scores = s.log_softmax(dim=1).diagonal(dim1=1, dim2=2).cpu()  # (B, 4): own audio among the four
    else:
        raise InputError(f"score must be one of {SCORES}, got {score!r}")
    out = torch.empty(rows, cols)
    out[:, col_index.reshape(-1)] = scores.reshape(rows, quarter * 4)
    return out, az, el


def peak_direction(scores: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor) -> tuple[float, float]:
    """Direction (azimuth, elevation) of the highest score."""
    i = int(torch.argmax(scores))
    return float(azimuth.reshape(-1)[i]), float(elevation.reshape(-1)[i])


def draw_heatmap(path: str | os.PathLike, frame: np.ndarray, scores: torch.Tensor, azimuth: torch.Tensor,
                 elevation: torch.Tensor, *, objects=(), title: str = "") -> Path:
    """The score grid over the equirect frame (PNG), with ground-truth objects marked when given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = frame.shape[:2]
    u, v = sphere.direction_to_equirect(azimuth, elevation, w, h)
    fig, ax = plt.subplots(figsize=(10, 5.6), constrained_layout=True)
    ax.imshow(frame, extent=(0, w, h, 0))
    du = w / azimuth.shape[1]
    dv = (v[1, 0] - v[0, 0]).item() if azimuth.shape[0] > 1 else h / 4
    extent = (float(u.min()) - du / 2, float(u.max()) + du / 2, float(v.max()) + dv / 2, float(v.min()) - dv / 2)
    im = ax.imshow(scores.numpy(), extent=extent, cmap="inferno", alpha=0.55, interpolation="bilinear")
    pa, pe = peak_direction(scores, azimuth, elevation)
    pu, pv = sphere.direction_to_equirect(pa, pe, w, h)
    ax.plot(float(pu), float(pv), "*", ms=22, mfc="cyan", mec="k", label="peak")
    for obj in objects:
        ou, ov = sphere.direction_to_equirect(obj.azimuth, obj.elevation, w, h)
        ax.plot(float(ou), float(ov), "o", ms=12, mfc="none", mec="lime" if obj.sounding else "white", mew=2.5,
                label=f"{obj.label} ({'sounding' if obj.sounding else 'silent'})")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([0, w / 4, w / 2, 3 * w / 4, w], ["180°", "90°", "0°", "−90°", "−180°"])
    ax.set_yticks([0, h / 2, h], ["90°", "0°", "−90°"])
    ax.legend(loc="lower right", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.7, label="audio-visual alignment score")
    ax.set_title(title or "where the model hears the sound")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------ CLI

def localize_file(checkpoint: str | os.PathLike, video: Path, *, audio: Path | None = None, layout: str = "ambix",
                  time_s: float | None = None, grid: tuple[int, int] = (36, 9), fov_deg: float = 60.0,
                  score: str = "spatial", out: Path | None = None, device: str | None = None,
                  overwrite: bool = False) -> Path:
    """``avsa localize``: the heatmap of one window of a 360° video, drawn to a PNG; prints where it peaks.

    Parameters
    ----------
    checkpoint : path
        Saved model folder, checkpoint ``.pt`` or run folder.
    video : Path
        A 360° video with FOA (a prepared clip, or any file).
    audio : Path, optional
        Separate audio file (default: the video's track, or the prepared clip's ``.flac`` beside it).
    layout : str
        Audio channel layout (:data:`avsa.media.layouts.LAYOUTS`).
    time_s : float, optional
        Window start in seconds (default: the middle of the video).
    grid : (int, int)
        Azimuths × elevations (azimuths a multiple of 4).
    fov_deg : float
    score : {"spatial", "alignment"}
        As :func:`alignment_map`.
    out : Path, optional
        The PNG (default: VIDEO stem + ``-localization.png`` in the current folder).
    device : str, optional
    overwrite : bool
        Replace an existing PNG.

    Returns
    -------
    Path of the PNG.

    Raises
    ------
    InputError
        Before any work, if the PNG exists and ``overwrite`` is false.
    """
    from avsa.media import io
    from avsa.media.groundtruth import load as load_groundtruth
    from avsa.media.outputs import check_output, safe_output

    out = check_output(Path(out) if out is not None else Path.cwd() / f"{Path(video).stem}-localization.png",
                       overwrite=overwrite)
    p = load_pretrained(checkpoint, device=device)
    n_az, n_el = grid
    audio_path = audio or (video.with_suffix(".flac") if video.with_suffix(".flac").exists() else video)
    info = io.probe(video)
    d = p.config.data
    span = d.window_s
    start = time_s if time_s is not None else max(0.0, info.duration_s / 2 - span / 2)
    if start < 0 or start + span > info.duration_s + 1e-6:
        raise MediaError(video, f"window {start:g}–{start + span:g} s is outside the video ({info.duration_s:g} s)")
    frame_start = start + span / 2 - d.n_frames / d.fps / 2
    size = (p.equirect_width, p.equirect_width // 2) if (info.width or 0) > p.equirect_width else None
    frames = io.read_frames(video, start_s=frame_start, duration_s=d.n_frames / d.fps, fps=d.fps,
                            size=size)[:d.n_frames]
    foa = io.read_audio(audio_path, start_s=start, duration_s=span, sample_rate=d.sample_rate, layout=layout)
    frames_t = torch.as_tensor(frames).permute(0, 3, 1, 2)
    scores, az, el = alignment_map(p, frames_t, torch.as_tensor(foa), grid=(n_az, n_el),
                                   fov=math.radians(fov_deg), score=score)
    objects = ()
    gt_path = video.with_suffix(".json")
    if gt_path.exists():
        objects = load_groundtruth(gt_path).at(start + span / 2)
    middle = frames[len(frames) // 2]
    pa, pe = peak_direction(scores, az, el)
    with safe_output(out, overwrite=overwrite) as temporary:
        draw_heatmap(temporary, middle, scores, az, el, objects=objects,
                     title=f"{video.name} at {start + span / 2:.2f} s — peak at θ={math.degrees(pa):.0f}°, "
                           f"φ={math.degrees(pe):.0f}° ({p.stage.upper()} model)")
    print(f"wrote {out} (peak at azimuth {math.degrees(pa):.0f}°, elevation {math.degrees(pe):.0f}°)")
    return out
