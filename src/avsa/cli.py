"""The ``avsa`` command line.

Each sub-command lives in its own module, ``avsa.commands.<command>`` (the
pipelines ``demo`` and ``experiments``: :mod:`avsa.demo`, :mod:`avsa.experiments`),
which defines ``add_arguments(parser)`` and ``run(args) -> int``; this file only
dispatches, importing a module when its command is used so ``avsa --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from avsa.errors import AvsaError

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("avsa.demo", "run the whole pipeline on a small synthetic world"),
    "synth": ("avsa.commands.synth", "write a synthetic 360° audio-visual world"),
    "prepare": ("avsa.commands.prepare", "turn a folder of 360° videos into a training cache"),
    "check": ("avsa.commands.check", "ambisonic validity test (paper Eq. 13) per file or clip"),
    "calibrate": ("avsa.commands.calibrate", "write / read a test video that reveals a re-encoding's FOA channel map"),
    "detect": ("avsa.commands.detect", "run an object detector over a prepared cache"),
    "stats": ("avsa.commands.stats", "compute per-mel-band feature statistics of a cache"),
    "train": ("avsa.commands.train", "train AVC / AVSA from a config"),
    "evaluate": ("avsa.commands.evaluate", "in-domain and downstream evaluation of a checkpoint"),
    "embed": ("avsa.commands.embed", "write embeddings of audio/video files"),
    "export": ("avsa.commands.export", "save a trained model as a shareable folder (safetensors + model card)"),
    "localize": ("avsa.commands.localize", "audio-visual alignment heatmap over a 360° clip"),
    "report": ("avsa.commands.report", "paper-style tables and training curves of runs"),
    "experiments": ("avsa.experiments", "train and report the paper's claims on the synthetic world"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"avsa: error: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"avsa {name}: not available in this version", file=sys.stderr)
            return 2
        raise
    sub = argparse.ArgumentParser(prog=f"avsa {name}", description=help_text)
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except AvsaError as exc:
        print(f"avsa {name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"avsa {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
