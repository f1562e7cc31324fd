"""`avgen eval FOLDER`: the world's benchmark on a folder of generated MP4s + metadata.jsonl
(avgen/world/evaluate.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from avgen.world.evaluate import _json_default, evaluate_folder, summary_markdown


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="folder with MP4s and metadata.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="JSON report (default: FOLDER/report.json)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the summary as Markdown")
    parser.add_argument("--workers", type=int, default=1, help="processes judging clips in parallel")


def run(args: argparse.Namespace) -> int:
    try:
        report = evaluate_folder(args.folder, workers=args.workers)
    except ValueError as error:
        print(f"avgen eval: {error}", file=sys.stderr)
        return 2
    out = args.out or args.folder / "report.json"
    out.write_text(json.dumps(report, indent=1, default=_json_default))
    table = summary_markdown(report["summary"])
    if args.markdown:
        args.markdown.write_text(f"# avgen eval: {args.folder}\n\n{table}\n")
    print(table)
    print(f"\nreport: {out}")
    return 0
