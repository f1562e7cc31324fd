"""Time render_clip (simulation + frames + audio + ground truth) on the clip formats that feed training.

The CPU is shared and noisy: each case is run several times and the median is reported (min beside it).
Writes benchmarks/results/world_render.json.

    .venv/bin/python benchmarks/bench_world_render.py [--repeats 7]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from avgen.precision import device_name
from avgen.world import render_clip, render_frames, simulate, synthesize_audio
from avgen.world.spec import ClipSpec, SubjectSpec

# Busy clips: a bouncing ball, a second subject (a walking person), a thunderstorm, upbeat music, tracking.
BASE = ClipSpec(
    subject=SubjectSpec("ball", "red", "bouncing", "right"),
    second=SubjectSpec("person", "blue", "walking", "left"),
    background="city intersection",
    weather="thunderstorm",
    music="upbeat",
    camera="tracking",
    seed=1,
)
CASES = {
    "10 s, 24 fps, 64x64": dict(duration=10.0, fps=24, resolution=64),
    "16 s, 16 fps, 64x64": dict(duration=16.0, fps=16, resolution=64),
    "10 s, 24 fps, 128x128": dict(duration=10.0, fps=24, resolution=128),
    "16 s, 16 fps, 128x128": dict(duration=16.0, fps=16, resolution=128),
    "10 s, 24 fps, 64x64, zoom in + rain": dict(duration=10.0, fps=24, resolution=64, camera="zoom in", weather="rain"),
}


def _median_time(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.process_time()  # CPU time of this process: less sensitive to other jobs than wall time
        fn()
        times.append(time.process_time() - start)
    return float(np.median(times)), float(np.min(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    render_clip(BASE.replace(duration=1.0))  # warm up imports and caches
    rows = []
    for name, changes in CASES.items():
        spec = BASE.replace(**changes)
        sim = simulate(spec)
        total = _median_time(lambda: render_clip(spec), args.repeats)
        parts = {
            "simulate": _median_time(lambda: simulate(spec), args.repeats)[0],
            "frames": _median_time(lambda: render_frames(sim), args.repeats)[0],
            "audio": _median_time(lambda: synthesize_audio(sim), args.repeats)[0],
        }
        rows.append({"case": name, "median_s": total[0], "min_s": total[1], **{f"{k}_s": v for k, v in parts.items()}})
    print(f"{'render_clip, CPU ms':40s} {'median':>7s} {'min':>7s} | {'simulate':>8s} {'frames':>7s} {'audio':>7s} (medians)")
    for r in rows:
        ms = {k: 1000 * v for k, v in r.items() if k != "case"}
        print(f"{r['case']:40s} {ms['median_s']:7.1f} {ms['min_s']:7.1f} | {ms['simulate_s']:8.1f} {ms['frames_s']:7.1f} {ms['audio_s']:7.1f}")
    out = Path(__file__).parent / "results" / "world_render.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"repeats": args.repeats, "timer": "time.process_time (CPU s)", "machine": device_name("cpu"),
            "numpy": np.__version__}
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
