"""Pool bench_quality.py folders of several world prompt plans into one entry of quality.json, so that a headline
figure stands on more prompts than one run holds (and a random-weights baseline run beside the model's):

    .venv/bin/python benchmarks/pool_quality.py t2v outputs/e2e-seed0/t2v/10s@24fps outputs/e2e-seed1/t2v/10s@24fps \
        outputs/e2e-random-seed0/t2v/10s@24fps outputs/e2e-random-seed1/t2v/10s@24fps [--results benchmarks/results]

Each FOLDER is one format folder of a finished bench_quality run (settings.json, metadata.jsonl, report.json): the
clips are not judged again, their records are pooled and grouped exactly as bench_quality groups one run
(bench_quality.t2v_groups, group_figures). The folders must hold one format and one model and sampler setting (the
plan seed may differ); pooled figures replace that format's entry in RESULTS/quality.json, whose settings name the
folders, the plan seeds and the clip counts, and quality.md is rewritten; --out FILE keeps the entry on its own too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_quality  # noqa: E402  (benchmarks/ is not a package)

from avgen.world import evaluate  # noqa: E402

POOLABLE = ("t2v", "video")


def load_pairs(folder: Path) -> tuple[list[tuple[dict, dict]], dict]:
    """(judged record, metadata row) of every clip of one finished run, and the run's settings."""
    for name in ("settings.json", evaluate.METADATA_NAME, "report.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a judged bench_quality folder: {name} missing")
    row_of = {row["file_name"]: row for row in evaluate.read_metadata(folder)}
    records = json.loads((folder / "report.json").read_text())["clips"]
    missing = sorted({record["file_name"] for record in records} ^ set(row_of))
    if missing:
        raise ValueError(f"{folder}: report.json and {evaluate.METADATA_NAME} disagree on {missing[:3]}: judge the folder again")
    return [(record, row_of[record["file_name"]]) for record in records], json.loads((folder / "settings.json").read_text())


def pool(folders: list[Path], bench: str = "t2v") -> tuple[dict, dict]:
    """The pooled figures per group and the settings naming what was pooled; refuses mixed formats or models."""
    if len({folder.name for folder in folders}) != 1:
        raise ValueError(f"the folders hold several formats ({sorted({f.name for f in folders})}): pool one format at a time")
    if len(set(folders)) != len(folders):
        raise ValueError("a folder is given twice")
    pairs, seeds, common = [], set(), None
    for folder in folders:
        folder_pairs, settings = load_pairs(folder)
        seeds.add(settings.pop("seed"))
        if common is not None and settings != common:
            raise ValueError(f"{folder} was generated with other settings ({settings}) than {folders[0]} ({common})")
        common = settings
        pairs += folder_pairs
    diversity_texts = {row["text"] for _, row in pairs if "extra_seed" in row}
    extra = bench_quality.judged_sync if bench == "t2v" else None  # as bench_quality.run_t2v
    figures = bench_quality.group_figures(pairs, bench_quality.t2v_groups(diversity_texts), extra)
    count = lambda method: sum(row["method"] == method and row["split"] == "heldin" and "extra_seed" not in row for _, row in pairs)  # noqa: E731
    settings = {**common, "seed": sorted(seeds), "n": count("model"), "baseline_n": count("random"),
                "pooled_from": [str(folder) for folder in folders]}  # fmt: skip
    return figures, settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", choices=POOLABLE)
    parser.add_argument("folders", nargs="+", type=Path, help="format folders of finished bench_quality runs")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where quality.json/.md are")
    parser.add_argument("--out", type=Path, default=None, help="also write the pooled entry alone here (a JSON record that later runs do not overwrite)")
    args = parser.parse_args(argv)
    try:
        figures, settings = pool(args.folders, args.bench)
    except (FileNotFoundError, ValueError) as error:
        print(f"pool_quality: {error}", file=sys.stderr)
        return 2
    json_path = args.results / "quality.json"
    results = json.loads(json_path.read_text()) if json_path.is_file() else {}
    entry = results.setdefault(args.bench, {"formats": {}, "settings_by_format": {}})
    name = args.folders[0].name
    entry["formats"][name] = figures
    entry.setdefault("settings_by_format", {})[name] = settings
    entry.setdefault("settings", settings)
    args.results.mkdir(parents=True, exist_ok=True)
    bench_quality._write_atomic(json_path, json.dumps(results, indent=1, default=evaluate._json_default))
    bench_quality._write_atomic(args.results / "quality.md", bench_quality.markdown(results))
    if args.out is not None:
        record = {"bench": args.bench, "format": name, "settings": settings, "figures": figures}
        bench_quality._write_atomic(args.out, json.dumps(record, indent=1, default=evaluate._json_default))
    clips = ", ".join(f"{group} {group_figures['clips']}" for group, group_figures in figures.items())
    print(f"pooled {len(args.folders)} folders into {json_path} ({args.bench}, {name}): clips {clips}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
