"""`avgen export RUN COMPONENT DESTINATION`: a trained component of a run as half-precision safetensors weights
with its MODEL_CARD.md (avgen/training/export.py).

    avgen export runs/vae vae weights/tiny/vae
"""

from __future__ import annotations

import argparse
import json

from avgen.training.export import DTYPES, export


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a training run directory (runs/...)")
    parser.add_argument("component", help="the component to export, e.g. vae, transformer, text_encoder")
    parser.add_argument("destination", help="the folder to write (e.g. weights/tiny/vae)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    parser.add_argument("--calibration-clips", type=int, default=32, help="clips measuring an autoencoder's latent std")


def run(args: argparse.Namespace) -> int:
    print(json.dumps(export(args.run_dir, args.component, args.destination, args.dtype, args.calibration_clips)))
    return 0
