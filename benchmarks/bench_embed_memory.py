"""Peak memory of ``Model.embed_video`` on a long 5.7K 360° file, and on a 1-min one of the same frames.

    python benchmarks/bench_embed_memory.py [--seconds 600 --width 5760 --fps 2 --hop 5 --keep DIR]

Encodes a 10-s 5760×2880 segment (H.264, moving gradients, ``--fps`` frames a second), stream-copies it
into a 1-min file and a long file of ``--seconds`` (no re-encoding: seconds to make), saves an
untrained model of the full configuration (``full/foa-iv-objects``: the paper's encoders, 112-px crops)
and runs ``avsa.load(...).embed_video(file, hop=...)`` in a fresh process per file, printing each
process's peak resident memory. The goal: at most 2 GiB for the long file, and no growth with the
file's length beyond the 1-min file's (the file is decoded in a stream at the model's equirect width,
never held whole; a file shorter than a batch of windows peaks lower).
Most of the time is the long file's decoding and the model's windows (``--hop`` sets how many); ``--fps``
keeps the segment's encoding short.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SEGMENT_S = 10
_MEASURE = """
import json, resource, sys, time
import avsa
model = avsa.load(sys.argv[1], device="cpu")
t0 = time.time()
emb, times = model.embed_video(sys.argv[2], hop=float(sys.argv[3]))
print(json.dumps({"windows": int(emb.shape[0]), "seconds": time.time() - t0,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_segment(path: Path, width: int, fps: int) -> None:
    """``SEGMENT_S`` seconds of moving colour gradients at ``width`` × ``width/2``."""
    h = width // 2
    x = np.linspace(0, 255, width, dtype=np.float32)[None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps), options={"preset": "ultrafast", "crf": "30"})
        stream.width, stream.height, stream.pix_fmt = width, h, "yuv420p"
        for i in range(SEGMENT_S * fps):
            img = np.empty((h, width, 3), np.uint8)
            img[..., 0] = (x + 4 * i) % 256
            img[..., 1] = y
            img[..., 2] = ((x + y) / 2 + 8 * i) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def repeat(src: Path, dst: Path, copies: int) -> None:
    """Stream-copy ``src`` ``copies`` times into ``dst``, each copy's timestamps after the last."""
    with av.open(str(src)) as probe:
        pts = sorted(p.pts for p in probe.demux(probe.streams.video[0]) if p.size)
    span = pts[-1] + (pts[-1] - pts[-2])
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream_in = inp.streams.video[0]
        stream_out = out.add_stream_from_template(stream_in)
        for k in range(copies):
            inp.seek(0)
            for packet in inp.demux(stream_in):
                if packet.dts is None:
                    continue
                packet.pts += k * span
                packet.dts += k * span
                packet.stream = stream_out
                out.mux(packet)


def save_full_model(folder: Path) -> None:
    """An untrained full-size foa-iv-objects model as a saved folder (memory does not depend on the weights)."""
    import torch

    from avsa.inference.model import save_pretrained
    from avsa.inference.pretrained import Pretrained
    from avsa.train.config import load_config, stage_model

    cfg = load_config("full/foa-iv-objects", ["data.cache=", f"out={folder / 'none'}"])
    p = Pretrained(config=cfg, stage="avsa", model=stage_model(cfg, "avsa").eval(), mean=None, std=None,
                   device=torch.device("cpu"), checkpoint="(untrained)", equirect_width=512)
    save_pretrained(p, folder / "model", overwrite=True)


def measure(model: Path, video: Path, hop: float) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(model), str(video), str(hop)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600, help="length of the long file")
    parser.add_argument("--width", type=int, default=5760)
    parser.add_argument("--fps", type=int, default=2)
    parser.add_argument("--hop", type=float, default=5.0, help="seconds between embedded windows")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the files in (reused)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="avsa-embed-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    segment, minute = folder / f"segment-{args.width}.mp4", folder / f"minute-{args.width}.mp4"
    long = folder / f"long-{args.width}-{args.seconds}.mp4"
    t0 = time.time()
    if not segment.exists():
        write_segment(segment, args.width, args.fps)
    if not minute.exists():
        repeat(segment, minute, 60 // SEGMENT_S)
    if not long.exists():
        repeat(segment, long, max(1, args.seconds // SEGMENT_S))
    if not (folder / "model" / "model.safetensors").exists():
        save_full_model(folder)
    print(f"files ready in {time.time() - t0:.0f} s: {long.name} ({long.stat().st_size / 1e6:.0f} MB)", flush=True)
    for video in (minute, long):
        r = measure(folder / "model", video, args.hop)
        print(f"{video.name}: {r['windows']} windows in {r['seconds']:.0f} s, peak RSS {r['peak_mib']:.0f} MiB",
              flush=True)
    print("goal: the long file <= 2048 MiB, and about the 1-min file's peak")


if __name__ == "__main__":
    main()
