"""Clips per minute of `avgen batch`: the local engine, the Ray engine (2 workers) and a naive loop that loads the
pipeline again for every prompt (`avgen generate` per prompt, in this process: imports stay warm, so it measures
the reload, not Python's start), on the same prompts and seeds, in one run.

The model: the shipped weights (weights/tiny) when they exist, else a tiny random pipeline (tests/pipelines/tiny.py);
the JSON says which. Every figure includes loading (that is what a batch pays); the Ray one also starts Ray.
Writes benchmarks/results/batch.json (or --out).

    .venv/bin/python benchmarks/bench_batch.py [--n 16] [--steps 50] [--duration 2] [--fps 8] [--workers 2]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pipelines.tiny, for the random pipeline

from avgen.cli import main as avgen  # noqa: E402
from avgen.pipelines.text_to_audio_video import DEFAULT_WEIGHTS  # noqa: E402
from avgen.precision import device_name  # noqa: E402
from avgen.world.captions import caption  # noqa: E402
from avgen.world.spec import sample_spec  # noqa: E402


def model_folder(tmp: Path) -> tuple[Path, str]:
    if (DEFAULT_WEIGHTS / "model_index.json").is_file():
        return DEFAULT_WEIGHTS, "shipped weights (weights/tiny)"
    from tests.pipelines.tiny import avgen_pipeline

    avgen_pipeline().save_pretrained(tmp / "model")
    return tmp / "model", "tiny random pipeline (tests/pipelines/tiny.py; weights/tiny is not there)"


def batch(jobs_file: Path, out: Path, model: Path, steps: int, *extra: str) -> dict:
    code = avgen(["batch", str(jobs_file), "-o", str(out), "--model", str(model), "--steps", str(steps), *extra])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 0 and summary["ok"] == summary["jobs"], f"some jobs failed: {out / 'manifest.jsonl'}"
    return {"seconds": summary["seconds"], "clips_per_minute": summary["clips_per_minute"]}


def naive(jobs: list[dict], out: Path, model: Path, steps: int) -> dict:
    out.mkdir()
    start = time.perf_counter()
    for index, job in enumerate(jobs):
        argv = ["generate", job["prompt"], "-o", str(out / f"{index}.mp4"), "--model", str(model), "--steps", str(steps)]
        argv += ["--seed", str(job["seed"]), "--duration", str(job["duration"]), "--fps", str(job["fps"])]
        assert avgen(argv) == 0
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "clips_per_minute": round(60 * len(jobs) / seconds, 3)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16, help="prompts")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="Ray workers")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batch.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    jobs = [
        {"prompt": caption(sample_spec(rng), rng), "seed": index, "duration": args.duration, "fps": args.fps}
        for index in range(args.n)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, model_name = model_folder(tmp)
        jobs_file = tmp / "jobs.jsonl"
        jobs_file.write_text("".join(json.dumps(job) + "\n" for job in jobs))
        results = {"local": batch(jobs_file, tmp / "local", model, args.steps)}
        try:
            import ray.data  # noqa: F401

            results[f"ray ({args.workers} workers)"] = batch(
                jobs_file, tmp / "ray", model, args.steps, "--engine", "ray", "--num-workers", str(args.workers)
            )
        except ImportError:
            results["ray"] = "skipped: ray[data] is not installed"
        results["naive (reload per prompt)"] = naive(jobs, tmp / "naive", model, args.steps)

    local = results["local"]["clips_per_minute"]
    ratios = {name: round(r["clips_per_minute"] / local, 3) for name, r in results.items() if isinstance(r, dict)}
    meta = {
        "model": model_name, "prompts": args.n, "steps": args.steps, "duration_s": args.duration, "fps": args.fps,
        "machine": device_name("cpu"), "cpus": os.cpu_count(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "timer": "wall clock, model loading included",
    }  # fmt: skip
    for name, r in results.items():
        print(f"{name:28s} " + (f"{r['clips_per_minute']:8.2f} clips/min  {r['seconds']:7.1f} s  x{ratios[name]:.2f} of local" if isinstance(r, dict) else r))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results, "ratio_to_local": ratios}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
