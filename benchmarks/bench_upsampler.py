"""The spatial upsampler's speed: its frames-in-the-batch layout (models/upsampler.py: 2D convolutions on
channels-last frames) against the same network written with Conv3d kernels on (B, C, F, H, W), the layout it
had before (the reference of tests/models/test_upsampler.py, which also checks that both compute the same).
Same weights, inputs and threads, interleaved, medians; inference on one 50-frame window (the pipeline's 32
frames + 2 x 9 of context) and one training step (batch 4 x 8 frames, L1 loss, backward).

    .venv/bin/python benchmarks/bench_upsampler.py [--weights weights/tiny/upsampler] [--repeats 5]
Writes benchmarks/results/upsampler_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.models.test_upsampler import reference_upsample  # noqa: E402

from avgen.models.upsampler import SpatialUpsampler  # noqa: E402
from avgen.precision import device_name  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=ROOT / "weights" / "tiny" / "upsampler")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "upsampler_cpu.json")
    args = parser.parse_args()
    model = SpatialUpsampler.from_pretrained(args.weights).float()
    window = torch.rand(1, 3, 50, 64, 64) * 2 - 1  # (B, 3, F, H, W) in [-1, 1]
    low, high = torch.rand(4, 3, 8, 64, 64) * 2 - 1, torch.rand(4, 3, 8, 128, 128) * 2 - 1
    layouts = {"frames in the batch (2D convs, channels-last)": model, "Conv3d on (B, C, F, H, W)": lambda x: reference_upsample(model, x)}

    def inference(run):
        with torch.no_grad():
            run(window)

    def training_step(run):
        model.zero_grad(set_to_none=True)
        (run(low) - high).abs().mean().backward()

    rows = []
    for mode, work in (("inference, 50 frames", inference), ("training step, 4 x 8 frames", training_step)):
        times = {name: [] for name in layouts}
        for run in layouts.values():  # warm-up: oneDNN picks its kernels on the first call
            work(run)
        for _ in range(args.repeats):
            for name, run in layouts.items():
                start = time.perf_counter()
                work(run)
                times[name].append(time.perf_counter() - start)
        ours = float(np.median(times[next(iter(layouts))]))
        rows += [{"layout": name, "mode": mode, "median_s": float(np.median(t)), "time_vs_ours": float(np.median(t)) / ours}
                 for name, t in times.items()]  # fmt: skip
    for row in rows:
        print(f"{row['mode']:28s} {row['layout']:48s} {row['median_s']:7.3f} s  x{row['time_vs_ours']:.2f}")
    meta = {"device": device_name("cpu"), "threads": torch.get_num_threads(), "torch": torch.__version__, "repeats": args.repeats,
            "weights": str(args.weights.relative_to(ROOT) if args.weights.is_relative_to(ROOT) else args.weights)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
