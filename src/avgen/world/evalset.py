"""A fixed evaluation set on disk: one MP4 per clip and a `metadata.jsonl` (the folder convention that
`avgen eval` and `VideoFolderDataset` read).

Each line: file_name, text (the caption), split, heldout_pair, heldout_paraphrase, spec (ClipSpec dict),
truth (GroundTruth dict) and, with hires=True, reference_file: the same spec rendered at twice the
resolution under hires/, the reference of the upsampler's evaluation.

Splits. Clip i is drawn from SeedSequence(seed, spawn_key=(i,)), so a set written with a larger n
starts with the clips of the smaller one.
    heldin   the training distribution: no held-out pair, captions from the train paraphrases.
    heldout  three sub-kinds in turn, i % 3 ==
               0: held-out pair     the main subject is a held-out pair, train caption;
               1: held-out caption  a training spec, caption from the held-out paraphrases (with the
                                    same seed it is the spec of heldin clip i, a paired comparison);
               2: both              a held-out pair with a held-out caption.
             `heldout_pair` / `heldout_paraphrase` say which, so results can be reported per sub-kind.

Resumable: MP4s are written atomically and a record is appended to metadata.jsonl (and flushed) only
after its files exist; a re-run skips every clip whose record and files are there and renders the
rest. At the end metadata.jsonl is rewritten atomically in clip order. A folder written with other
options (another spec or caption for the same file name) is refused before any work.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avgen import atomic
from avgen.world.captions import caption
from avgen.world.spec import DEFAULT_SAMPLE_RATE, ClipSpec, sample_spec

EVAL_SPLITS: tuple[str, ...] = ("heldin", "heldout")
METADATA_NAME = "metadata.jsonl"
HIRES_DIR = "hires"


def plan_clip(index: int, split: str = "heldin", seed: int = 0, fps_tag: bool = False, **spec_options) -> dict:
    """The record of clip `index` without its truth (nothing is rendered). `spec_options` go to
    sample_spec: resolution, fps, duration, sample_rate."""
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {EVAL_SPLITS}; got {split!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    heldout_pair = split == "heldout" and index % 3 != 1
    heldout_paraphrase = split == "heldout" and index % 3 != 0
    spec = sample_spec(rng, held_out=heldout_pair, **spec_options)
    text = caption(spec, rng, "heldout" if heldout_paraphrase else "train", fps_tag)
    return {"file_name": f"{index:05d}.mp4", "text": text, "split": split, "heldout_pair": heldout_pair,
            "heldout_paraphrase": heldout_paraphrase, "spec": spec.to_dict()}


def write_evalset(
    out_dir: str | Path,
    n: int,
    split: str = "heldin",
    seed: int = 0,
    resolution: int = 64,
    fps: int | None = None,
    duration: float | None = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    hires: bool = False,
    fps_tag: bool = False,
    progress: bool = False,
) -> list[dict]:
    """Write (or complete) an evaluation set of `n` clips in `out_dir`; returns the n records.

    fps/duration: fixed for every clip, or None for sample_spec's defaults (each clip one of Movie
    Gen's two formats, 10 s at 24 fps or 16 s at 16 fps)."""
    from avgen.muxer import write_video
    from avgen.world import render_clip

    # 1. Check everything and plan every clip before any work.
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    plans = [plan_clip(i, split, seed, fps_tag, resolution=resolution, fps=fps, duration=duration, sample_rate=sample_rate)
             for i in range(n)]
    if hires:
        ClipSpec.from_dict(plans[0]["spec"]).replace(resolution=2 * resolution)  # raises if 2x is out of range
    out_dir = Path(out_dir)
    metadata_path = out_dir / METADATA_NAME
    records = _read_records(metadata_path)
    for plan in plans:
        old = records.get(plan["file_name"])
        if old is not None and any(old.get(key) != plan[key] for key in ("text", "split", "spec")):
            raise ValueError(f"{out_dir} holds an evaluation set written with other options ({plan['file_name']} differs); "
                             "use another folder")

    # 2. Render what is missing, appending each record once its files are complete.
    (out_dir / HIRES_DIR if hires else out_dir).mkdir(parents=True, exist_ok=True)
    _write_records(metadata_path, records)  # drops a line torn by a crash, so appending is safe
    todo = [plan for plan in plans if not _complete(out_dir, records.get(plan["file_name"]), hires)]
    if progress:
        from tqdm import tqdm

        todo = tqdm(todo, desc=f"evalset {split}", unit="clip")
    with open(metadata_path, "a") as metadata:
        for plan in todo:
            spec = ClipSpec.from_dict(plan["spec"])
            tags = {"generator": "avgen world renderer", "prompt": plan["text"]}
            clip = render_clip(spec)
            write_video(out_dir / plan["file_name"], clip.frames, clip.fps, clip.audio, clip.sample_rate, tags)
            record = {**plan, "truth": clip.truth.to_dict()}
            if hires:
                big = render_clip(spec.replace(resolution=2 * resolution))
                record["reference_file"] = f"{HIRES_DIR}/{plan['file_name']}"
                write_video(out_dir / record["reference_file"], big.frames, big.fps, big.audio, big.sample_rate, tags)
            metadata.write(json.dumps(record) + "\n")
            metadata.flush()
            records[plan["file_name"]] = record

    # 3. The final metadata, in clip order (records of clips beyond n from an earlier run are kept).
    _write_records(metadata_path, records)
    return [records[plan["file_name"]] for plan in plans]


def _complete(out_dir: Path, record: dict | None, hires: bool) -> bool:
    if record is None or not (out_dir / record["file_name"]).is_file():
        return False
    return not hires or ("reference_file" in record and (out_dir / record["reference_file"]).is_file())


def _read_records(path: Path) -> dict[str, dict]:
    """Records of an existing metadata.jsonl by file name; a torn last line (a crash while appending) is
    dropped, a bad line elsewhere is an error."""
    if not path.is_file():
        return {}
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = {}
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path} line {number} is not valid JSON; remove it or use another folder") from None
        records[record["file_name"]] = record
    return records


def _write_records(path: Path, records: dict[str, dict]) -> None:
    atomic.write_text(path, "".join(json.dumps(records[name]) + "\n" for name in sorted(records)))
