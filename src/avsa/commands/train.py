"""``avsa train``: run the AVC → AVSA curriculum from a config.

Examples::

    avsa train --config tiny/foa-iv data.cache=demo_out/cache
    avsa train --config my.yaml avsa.steps=2000 stages=avsa init=runs/x/checkpoints/avc.pt
    torchrun --nproc_per_node=4 -m avsa.cli train --config full/foa-iv data.cache=/data/cache
    avsa train --resume runs/tiny-foa-iv-20260101-120000
"""

from __future__ import annotations

import argparse

from avsa.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", help="YAML file, or a packaged config such as tiny/foa-iv or full/baseline")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.add_argument("--run-dir", help="write the run here instead of OUT/NAME-TIMESTAMP (a folder that "
                        "holds a run is continued only with the same config)")
    parser.add_argument("--new-run", action="store_true",
                        help="if --run-dir already holds a run, write a new one to RUN_DIR-2, -3 … instead")
    parser.add_argument("--list-configs", action="store_true", help="list the packaged configs and exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override config values (dotted keys)")


def run(args: argparse.Namespace) -> int:
    from avsa.train.config import load_config, packaged_configs

    if args.list_configs:
        print("\n".join(packaged_configs()))
        return 0
    from avsa.train.trainer import resume, train

    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume takes the run's saved config; do not pass --config or overrides")
        run_dir = resume(args.resume)
    else:
        if not args.config:
            raise ConfigError("give --config FILE (or --resume RUN_DIR); --list-configs shows packaged ones")
        config = load_config(args.config, args.overrides)
        if not config.data.cache:
            raise ConfigError("data.cache is not set: add data.cache=PATH (a folder made by avsa prepare)")
        run_dir = train(config, run_dir=args.run_dir, new_run=args.new_run)
    print(f"run folder: {run_dir}")
    return 0
