"""`avgen world judge-accuracy`: how often the judge is right, measured on rendered ground truth
(avgen/world/judge_accuracy.py)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from avgen.world.judge_accuracy import accuracy_specs, format_report, measure
from avgen.world.spec import WORLD_FPS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=500, help="number of clips to render and judge")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128], help="64: the model's, 128: the upsampler's")
    parser.add_argument("--fps", type=int, nargs="+", default=list(WORLD_FPS), choices=WORLD_FPS)
    parser.add_argument("--mp4-share", type=float, default=1.0, help="share of clips judged after an MP4 round trip")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")


def run(args: argparse.Namespace) -> int:
    specs = accuracy_specs(args.n, args.resolutions, args.fps, args.seed)
    started = time.time()
    report = measure(specs, mp4_share=args.mp4_share, workers=args.workers, seed=args.seed)
    report["seconds"] = round(time.time() - started, 1)
    print(format_report(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
        print(f"report: {args.out}")
    return 0 if report["passed"] else 1
