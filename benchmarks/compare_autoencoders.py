"""Paired comparison of two video autoencoders judged on the same clips by bench_autoencoders.py.

    .venv/bin/python benchmarks/compare_autoencoders.py A/autoencoders_video.json B/autoencoders_video.json [--out FILE]

Both files must hold per-clip records ("clips") of the same clips (same --n, --held-out and seed: the truth of
every clip is checked to match). For each figure of the round trip, B - A with the 90 % bootstrap interval over
clips (clips resampled with replacement, the same draw for both models, 10,000 draws, seeded):
PSNR (mean of per-clip dB), each judged attribute (share of clips whose reconstruction is judged as the clip's
truth), and the events within +-1 frame (found / total over the resampled clips: a ratio of sums, so clips with
many events weigh more, as in the bench's own figure).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ATTRIBUTES = ("subject", "color", "motion", "direction", "background", "camera", "weather")
EVENTS = ("visual/contact", "visual/footstep", "visual/flash")
DRAWS = 10_000


def per_clip(report: dict) -> dict[str, np.ndarray]:
    """figure -> (N,) values for a mean, or (N, 2) [total, hit] (bench_autoencoders' event_hits) for a ratio of sums."""
    clips = report["clips"]
    values = {"psnr_db": np.array([c["psnr_db"] for c in clips])}
    for name in ATTRIBUTES:
        values[name] = np.array([float(c["reconstruction"]["judged"][name] == c["truth"][name]) for c in clips])
    for name in EVENTS:
        values[name] = np.array([c["reconstruction"]["events"][name] for c in clips], dtype=float)
    return values


def figure(values: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """The figure over the clips `rows`: a mean, or found / total; with a (D, N) index array, one per draw."""
    chosen = values[rows]
    if values.ndim == 1:
        return chosen.mean(axis=-1)
    return chosen[..., 1].sum(axis=-1) / np.maximum(chosen[..., 0].sum(axis=-1), 1)


def compare(a: dict, b: dict, seed: int = 0) -> list[dict]:
    if [c["truth"] for c in a["clips"]] != [c["truth"] for c in b["clips"]]:
        raise ValueError("the two reports were not made on the same clips (their truths differ)")
    va, vb = per_clip(a), per_clip(b)
    draws = np.random.default_rng(seed).integers(0, len(a["clips"]), size=(DRAWS, len(a["clips"])))
    rows = []
    for name in va:
        if va[name].ndim == 2 and va[name][:, 0].sum() == 0:
            continue  # no such event in these clips
        difference = figure(vb[name], draws) - figure(va[name], draws)
        low, high = np.percentile(difference, [5, 95])
        scale = 1 if name == "psnr_db" else 100  # shares as percentage points
        rows.append({"figure": name, "a": scale * float(figure(va[name])), "b": scale * float(figure(vb[name])),
                     "difference": scale * float(figure(vb[name]) - figure(va[name])), "ci90": [scale * float(low), scale * float(high)]})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = compare(json.loads(args.a.read_text()), json.loads(args.b.read_text()))
    print(f"{'figure':18s} {'A':>8s} {'B':>8s} {'B - A':>8s}  90 % CI")
    for row in rows:
        print(f"{row['figure']:18s} {row['a']:8.2f} {row['b']:8.2f} {row['difference']:+8.2f}  {row['ci90'][0]:+.2f}..{row['ci90'][1]:+.2f}")
    if args.out:
        args.out.write_text(json.dumps({"a": str(args.a), "b": str(args.b), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
