"""``avsa calibrate write|read``: find the channel map of a platform's FOA re-encoding with one test video.

::

    avsa calibrate write calibration.mp4          # upload it, download the platform's version, then
    avsa calibrate read downloaded.mp4            # prints the --channel-map for avsa prepare

How it works: :mod:`avsa.media.calibrate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avsa.media.calibrate import BURST_S, PATH_DEG, read, write
from avsa.media.outputs import check_output


def parse_channels(text: str) -> tuple[int, ...]:
    """``--channels 0,1,2,3``: raw channel indices."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected raw channel indices such as 0,1,2,3") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="{write,read}")
    w = sub.add_parser("write", help="write the calibration video")
    w.add_argument("out", type=Path, help="output .mp4")
    w.add_argument("--burst", type=float, default=BURST_S, help="seconds per direction")
    w.add_argument("--width", type=int, default=512, help="equirect width (height = width / 2)")
    w.add_argument("--sample-rate", type=int, default=48000)
    w.add_argument("--audio-codec", default="aac", help="aac (default), flac, opus, pcm_s16le (.mov) ...")
    w.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (default: refuse)")
    r = sub.add_parser("read", help="report the channel map of a (re-encoded) calibration video")
    r.add_argument("file", type=Path, help="the calibration video as the platform returned it")
    r.add_argument("--burst", type=float, default=BURST_S, help="seconds per direction it was written with")
    r.add_argument("--channels", type=parse_channels, default=None, metavar="I,J,K,L",
                   help="search the map among these raw channels only (default: all of a 4-channel file; "
                        "with more, the first four, then all)")


def run(args: argparse.Namespace) -> int:
    if args.action == "write":
        # refuse an existing OUT or a folder before rendering; io.write_av then writes through a
        # temporary in OUT's folder, so a failed write never touches a file that was there
        check_output(args.out, overwrite=args.overwrite)
        out = write(args.out, burst_s=args.burst, width=args.width, sample_rate=args.sample_rate,
                    audio_codec=args.audio_codec)
        path = ", ".join(f"({az}°, {el}°)" for az, el in PATH_DEG)
        print(f"wrote {out}: a noise burst every {args.burst:g} s at {path} (azimuth left of front, elevation up)")
        return 0
    c = read(args.file, burst_s=args.burst, channels=args.channels)
    print(f"{args.file}: {c.raw_channels} raw channels, normalisation {c.normalisation}")
    print(f"  audio offset {c.offset_s:+.3f} s (removed before the fit; positive: the audio is late; "
          f"correlation with the calibration signal {c.correlation:.2f})")
    for note in c.notes:
        print(f"  note: {note}")
    for a in c.assignment:
        print(f"  ambiX {a['ambix']} = {'-' if a['sign'] < 0 else '+'}raw {a['raw']}  "
              f"(gain vs W {a['gain']:.3f}, fit residual {a['residual']:.3f})")
    print(f"channel map: {c.channel_map}")
    how = f"--layout {c.layout}" if c.layout else f"--channel-map {c.channel_map}"
    print(f"prepare with: avsa prepare SRC --out CACHE {how}")
    return 0
