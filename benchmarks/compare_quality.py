"""Paired comparison of two models judged on the same prompts and noise (bench_quality.py folders).

    .venv/bin/python benchmarks/compare_quality.py BASE_REPORT [BASE_REPORT ...] --against CANDIDATE_REPORT [...]
        [--figure video_adherence] [--out results.json]

Each REPORT is the report.json `avgen eval` (and bench_quality.py) writes beside a folder's MP4s. Clips are
paired by file name, which bench_quality.py derives from the prompt plan (split, index, seed), so two folders
generated with the same --seed, --n and --steps hold the same prompts with the same initial noise. Several
reports on each side are pooled (e.g. two prompt plans, --seed 0 and --seed 1, in their own folders).

--figure sync compares two foley folders (bench_quality.py --only foley) on the world's exact event times:
per split, the share of the input renders' events (ball contacts, footsteps, lightning flashes) with a generated
onset of the matching class within +-1 frame, pooled over events, and the difference's interval over clips.

Why paired: the same weights, prompts and seeds give different clips on different machines (CPU arithmetic),
which moved one model's figure by ~4 points across machines; a difference on the same prompts, on one machine,
with a bootstrap interval over prompts, is the figure a model is shipped on.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_quality import clip_sync_offsets  # noqa: E402  (benchmarks/ is not a package)

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


def shared_keys(base: dict[str, dict], candidate: dict[str, dict]) -> dict[str, list[str]]:
    """{split: the pair keys both sides hold, sorted}, splits without a shared clip left out. The held-out split is
    also given in its two parts (docs/world.md, held-out sets): "heldout: pairs", the clips whose subject is a
    held-out subject-colour pair (with a training or a held-out caption), and "heldout: phrasing", training specs
    told in held-out phrasing only (what a text encoder's grasp of paraphrase decides)."""
    shared = sorted(set(base) & set(candidate))
    if not shared:
        raise ValueError("the two sides share no clip: were they generated from the same prompt plan (--seed, --n)?")
    by_split = {split: [key for key in shared if base[key].get("split") == split] for split in SPLITS}
    heldout = by_split["heldout"]
    if any("held_out_pair" in base[key] for key in heldout):
        by_split["heldout: pairs"] = [key for key in heldout if base[key].get("held_out_pair")]
        by_split["heldout: phrasing"] = [key for key in heldout if not base[key].get("held_out_pair")]
    return {split: keys for split, keys in by_split.items() if keys}


def compare(base: dict[str, dict], candidate: dict[str, dict], figure: str = "video_adherence") -> dict:
    """Per split: the mean figure of each model on the shared prompts, the per-prompt difference (candidate - base)
    with its 90 % bootstrap interval, and per judged attribute how many prompts each model got right."""
    results = {}
    for split, keys in shared_keys(base, candidate).items():
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


def load_rows(paths: list[Path]) -> dict[str, dict]:
    """{pair key (as load_records): metadata row} from the metadata.jsonl beside each report."""
    rows = {}
    for index, path in enumerate(paths):
        for line in (Path(path).parent / "metadata.jsonl").read_text().splitlines():
            row = json.loads(line)
            rows[f"{index}/{row['file_name']}"] = row
    return rows


def compare_sync(base: dict[str, dict], candidate: dict[str, dict], rows: dict[str, dict]) -> dict:
    """Per split, on the clips both foley folders hold (the same input renders): events with a generated onset
    within +-1 frame, pooled over events, for each model and per event kind; the difference of the pooled shares
    with its 90 % interval over clips resampled with replacement."""
    results = {}
    for split, keys in shared_keys(base, candidate).items():
        counts = np.zeros((len(keys), 3))  # per clip: events, base within a frame, candidate within a frame
        kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for row_index, key in enumerate(keys):
            for side, record in ((1, base[key]), (2, candidate[key])):
                for kind, offsets in clip_sync_offsets(record, rows[key]).items():
                    within = int((offsets <= 1 + 1e-9).sum())
                    counts[row_index, side] += within
                    kinds[kind][side] += within
                    if side == 1:
                        counts[row_index, 0] += offsets.size
                        kinds[kind][0] += offsets.size
        if counts[:, 0].sum() == 0:
            continue
        rng = np.random.default_rng(0)
        draws = counts[rng.integers(0, len(keys), (10_000, len(keys)))].sum(1)  # (draws, 3)
        differences = (draws[:, 2] - draws[:, 1]) / np.maximum(draws[:, 0], 1)
        total = counts.sum(0)
        results[split] = {"clips": len(keys), "events": int(total[0]), "base": float(total[1] / total[0]),
                          "candidate": float(total[2] / total[0]), "difference": float((total[2] - total[1]) / total[0]),
                          "interval_90": [float(np.quantile(differences, 0.05)), float(np.quantile(differences, 0.95))],
                          "better_on": int((counts[:, 2] > counts[:, 1]).sum()), "worse_on": int((counts[:, 2] < counts[:, 1]).sum()),
                          "kinds": {kind: dict(zip(("events", "base", "candidate"), map(int, c))) for kind, c in sorted(kinds.items())}}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", nargs="+", type=Path, help="report.json files of the model compared against")
    parser.add_argument("--against", nargs="+", type=Path, required=True, help="report.json files of the candidate, same order")
    parser.add_argument("--figure", default="video_adherence", choices=("video_adherence", "audio_adherence", "sync"))
    parser.add_argument("--out", type=Path, default=None, help="write the comparison as JSON here")
    args = parser.parse_args()
    if len(args.base) != len(args.against):
        parser.error("give as many candidate reports as base reports (one per prompt plan, same order)")
    if args.figure == "sync":
        results = compare_sync(load_records(args.base), load_records(args.against), load_rows(args.base))
    else:
        results = compare(load_records(args.base), load_records(args.against), args.figure)
    for split, r in results.items():
        if args.figure == "sync":
            print(f"{split}: {r['clips']} clips, {r['events']} events; within +-1 frame: base {100 * r['base']:.1f} %, "
                  f"candidate {100 * r['candidate']:.1f} %, difference {100 * r['difference']:+.1f} points (90 % CI "
                  f"{100 * r['interval_90'][0]:+.1f}..{100 * r['interval_90'][1]:+.1f}), better on {r['better_on']} clips, worse on {r['worse_on']}")
            print("   " + ", ".join(f"{kind} {k['base']}->{k['candidate']}/{k['events']}" for kind, k in r["kinds"].items()))
            continue
        print(f"{split}: {r['prompts']} prompts, base {100 * r['base']:.1f} %, candidate {100 * r['candidate']:.1f} %, "
              f"difference {100 * r['difference']:+.1f} points (90 % CI {100 * r['interval_90'][0]:+.1f}..{100 * r['interval_90'][1]:+.1f}), "
              f"better on {r['better_on']}, worse on {r['worse_on']}")
        print("   " + ", ".join(f"{name} {h['base']}->{h['candidate']}/{h['prompted']}" for name, h in r["hits"].items()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
