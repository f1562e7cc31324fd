"""The same command, the same bytes: `avgen generate` run N times while another process loads every core.

    .venv/bin/python benchmarks/bench_determinism.py [--runs 10] [--pipeline weights/tiny] [--no-load]

Each run is the command as a user types it (a fresh process: loading, the default 10 s / 24 fps clip with
sound, the upsampler, the mux), with one prompt and seed, and `--no-credentials`: a C2PA signature differs at
every signing by design (an ECDSA nonce, the signing time, new manifest ids), so a signed file cannot repeat
its bytes. With --signed the runs are signed (the default command) and compared as bench_batch_kills does,
with the manifest's payload zeroed: everything the models and the muxer wrote. Beside it a load process keeps every core busy
with fp32 and bf16 matmuls (the two kinds of work whose relative speed a per-process timing used to read
to pick the precision, which flipped the output's bytes under load: issue 45). Reports the sha256 of each
file, the MP4's precision tag and each run's wall time; passes iff every file has the same sha256.
Writes benchmarks/results/determinism.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_batch_kills import without_manifest  # noqa: E402  (benchmarks/ is not a package)

from avgen.atomic import write_text  # noqa: E402
from avgen.precision import machine  # noqa: E402

PROMPT = "A red ball bounces on a grassy field under a thunderstorm, static camera."


def load(stop: multiprocessing.Event) -> None:
    """Busy every core: alternating fp32 and bf16 matmuls on all threads until `stop` is set."""
    import torch

    torch.set_num_threads(os.cpu_count())
    a = torch.randn(512, 512)
    while not stop.is_set():
        for dtype in (torch.float32, torch.bfloat16):
            x = a.to(dtype)
            for _ in range(20):
                x = (x @ x).clamp(-1, 1)


def sha256(path: Path, signed: bool) -> str:
    data = path.read_bytes()
    return hashlib.sha256(without_manifest(data) if signed else data).hexdigest()


def precision_tag(path: Path) -> str | None:
    with av.open(str(path)) as container:
        return container.metadata.get("precision")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pipeline", default=str(ROOT / "weights" / "tiny"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-load", action="store_true", help="run without the load process")
    parser.add_argument("--signed", action="store_true", help="sign the files (the default command) and compare them without the manifest's payload")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "determinism.json")
    args = parser.parse_args(argv)

    stop = multiprocessing.Event()
    loader = None if args.no_load else multiprocessing.Process(target=load, args=(stop,), daemon=True)
    if loader is not None:
        loader.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(args.runs):
                out = Path(tmp) / f"run{run}.mp4"
                command = [sys.executable, "-m", "avgen.cli", "generate", PROMPT, "--seed", str(args.seed),
                           "--model", args.pipeline, "-o", str(out)] + ([] if args.signed else ["--no-credentials"])
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, text=True)
                rows.append({"run": run, "sha256": sha256(out, args.signed), "precision": precision_tag(out),
                             "seconds": round(time.perf_counter() - start, 1)})
                print(rows[-1], flush=True)
    finally:
        stop.set()
        if loader is not None:
            loader.join(timeout=30)
    hashes = sorted({row["sha256"] for row in rows})
    report = {"machine": machine("cpu"), "load": not args.no_load, "command": "avgen generate PROMPT --seed SEED --model PIPELINE -o OUT",
              "prompt": PROMPT, "seed": args.seed, "pipeline": os.path.relpath(args.pipeline, ROOT),
              "signed": args.signed,
              "hashed": "the file without its C2PA manifest's payload" if args.signed else "the whole file",
              "distinct_sha256": len(hashes), "rows": rows}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.results, json.dumps(report, indent=1) + "\n")
    print(f"{len(rows)} runs, {len(hashes)} distinct sha256 ({report['machine']['cpu']}, {report['machine']['cpus']} CPUs, bf16 units {report['machine']['cpu_bf16_units']}, load {'on' if report['load'] else 'off'})")
    return 0 if len(hashes) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
