"""`avgen assemble weights/tiny`: turn a folder of exported components into a loadable AVGenPipeline."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a folder of exported components (avgen export), e.g. weights/tiny")
    parser.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16")


def run(args: argparse.Namespace) -> int:
    from avgen.training.export import assemble

    print(f"AVGenPipeline written to {assemble(args.folder, args.dtype)}")
    return 0
