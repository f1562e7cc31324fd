"""Paired comparison of two models judged on the same prompts and noise (bench_quality.py folders).

    .venv/bin/python benchmarks/compare_quality.py BASE_REPORT [BASE_REPORT ...] --against CANDIDATE_REPORT [...]
        [--figure video_adherence] [--out results.json]

Each REPORT is the report.json `avgen eval` (and bench_quality.py) writes beside a folder's MP4s. Clips are
paired by file name, which bench_quality.py derives from the prompt plan (split, index, seed), so two folders
generated with the same --seed, --n and --steps hold the same prompts with the same initial noise. Several
reports on each side are pooled (e.g. two prompt plans, --seed 0 and --seed 1, in their own folders).

Why paired: the same weights, prompts and seeds give different clips on different machines (CPU arithmetic),
which moved one model's figure by ~4 points across sessions; a difference on the same prompts, on one machine,
with a bootstrap interval over prompts, is the figure a model is shipped on.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

SPLITS = ("heldin", "heldout")


def load_records(paths: list[Path]) -> dict[str, dict]:
    """{pair key: clip record} pooled over reports; the key is the report's folder name and the clip's file."""
    records = {}
    for index, path in enumerate(paths):
        for record in json.loads(Path(path).read_text())["clips"]:
            records[f"{index}/{record['file_name']}"] = record
    return records


def bootstrap_interval(differences: np.ndarray, level: float = 0.9, draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """The `level` interval of the mean of `differences` (N,) over prompts resampled with replacement."""
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (draws, len(differences)))].mean(1)  # (draws,)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def compare(base: dict[str, dict], candidate: dict[str, dict], figure: str = "video_adherence") -> dict:
    """Per split: the mean figure of each model on the shared prompts, the per-prompt difference (candidate - base)
    with its 90 % bootstrap interval, and per judged attribute how many prompts each model got right."""
    shared = sorted(set(base) & set(candidate))
    if not shared:
        raise ValueError("the two sides share no clip: were they generated from the same prompt plan (--seed, --n)?")
    results = {}
    for split in SPLITS:
        keys = [key for key in shared if base[key].get("split") == split]
        if not keys:
            continue
        a = np.array([base[key][figure]["score"] for key in keys], dtype=float)
        b = np.array([candidate[key][figure]["score"] for key in keys], dtype=float)
        low, high = bootstrap_interval(b - a)
        hits: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # attribute -> [prompted, base right, candidate right]
        for key in keys:
            for attribute, hit in base[key][figure]["hits"].items():
                hits[attribute][0] += 1
                hits[attribute][1] += int(bool(hit))
                hits[attribute][2] += int(bool(candidate[key][figure]["hits"].get(attribute)))
        results[split] = {"prompts": len(keys), "base": float(a.mean()), "candidate": float(b.mean()),
                          "difference": float((b - a).mean()), "interval_90": [low, high],
                          "better_on": int((b > a).sum()), "worse_on": int((b < a).sum()),
                          "hits": {name: dict(zip(("prompted", "base", "candidate"), counts)) for name, counts in sorted(hits.items())}}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", nargs="+", type=Path, help="report.json files of the model compared against")
    parser.add_argument("--against", nargs="+", type=Path, required=True, help="report.json files of the candidate, same order")
    parser.add_argument("--figure", default="video_adherence", choices=("video_adherence", "audio_adherence"))
    parser.add_argument("--out", type=Path, default=None, help="write the comparison as JSON here")
    args = parser.parse_args()
    if len(args.base) != len(args.against):
        parser.error("give as many candidate reports as base reports (one per prompt plan, same order)")
    results = compare(load_records(args.base), load_records(args.against), args.figure)
    for split, r in results.items():
        print(f"{split}: {r['prompts']} prompts, base {100 * r['base']:.1f} %, candidate {100 * r['candidate']:.1f} %, "
              f"difference {100 * r['difference']:+.1f} points (90 % CI {100 * r['interval_90'][0]:+.1f}..{100 * r['interval_90'][1]:+.1f}), "
              f"better on {r['better_on']}, worse on {r['worse_on']}")
        print("   " + ", ".join(f"{name} {h['base']}->{h['candidate']}/{h['prompted']}" for name, h in r["hits"].items()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
