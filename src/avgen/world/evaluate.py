"""The world's benchmark on a folder of generated MP4s (`avgen eval FOLDER`, avgen/commands/evaluate.py).

The folder holds MP4s and a `metadata.jsonl`, one JSON object per clip:
    file_name   the MP4, relative to the folder (required)
    text        the prompt (required unless `spec` is given); parsed with captions.parse_caption
    spec        optional ClipSpec dict: when present it gives the prompted attributes instead of `text`
    split       optional group name, e.g. "held-in" / "held-out"; figures are reported per split
    edit        optional {"source_file": MP4, "attribute": name, "target": value}: editing metrics
    reference_file / input_file   optional: upsampling metrics against a high-resolution reference,
                beside bicubic upsampling of the low-resolution input
Clips with the same `text` (different seeds) form a group for the diversity metric.

Every clip is judged from its decoded frames and sound only (`judge.judge_clip`); the metadata only
says what was asked for. Baselines (random weights, text-only audio) are other folders evaluated the
same way.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections import defaultdict
from pathlib import Path

import numpy as np

from avgen.muxer import read_video
from avgen.world import judge, metrics
from avgen.world.captions import parse_caption
from avgen.world.spec import is_held_out

METADATA_NAME = "metadata.jsonl"
ALL = "all"
HELD_OUT_PAIRS_GROUP = "held-out pairs"  # clips whose prompted subject-colour pair is held out of training


# --- reading -----------------------------------------------------------------------------------
def read_metadata(folder: Path) -> list[dict]:
    path = Path(folder) / METADATA_NAME
    if not path.is_file():
        raise ValueError(f"{str(path)!r} not found: the folder needs a {METADATA_NAME} (one JSON line per clip)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "file_name" not in row or ("text" not in row and "spec" not in row):
            raise ValueError(f"{METADATA_NAME} line {number}: needs 'file_name' and 'text' (or 'spec')")
        rows.append(row)
    if not rows:
        raise ValueError(f"{str(path)!r} lists no clip")
    return rows


def prompted_of(row: dict) -> dict:
    """Prompted attributes of a metadata row: from its spec if given, else parsed from its text."""
    if row.get("spec") is not None:
        return metrics.prompted_attributes(row["spec"])
    return metrics.prompted_attributes(parse_caption(row["text"]))


def _decode(path: Path):
    video = read_video(path)
    audio = video.audio if video.audio is not None else np.zeros((1, 0), np.float32)
    return video.frames, audio, video.fps, video.sample_rate or 16_000


# --- one clip --------------------------------------------------------------------------------
def evaluate_clip(folder: Path, row: dict) -> dict:
    """All per-clip metrics of one metadata row (JSON-serialisable)."""
    frames, audio, fps, sample_rate = _decode(folder / row["file_name"])
    verdict = judge.judge_clip(frames, audio, fps, sample_rate)
    prompted = prompted_of(row)
    record = {
        "file_name": row["file_name"],
        "text": row.get("text"),
        "split": row.get("split"),
        "held_out_pair": bool(prompted["subject"] and prompted["color"] and is_held_out(prompted["subject"], prompted["color"])),
        "prompted": prompted,
        "verdict": verdict,
        "video_adherence": metrics.video_adherence(verdict, prompted),
        "audio_adherence": metrics.audio_adherence(verdict, prompted),
        "sync": metrics.event_sync(verdict, fps),
        "av_align": metrics.av_align(frames, audio, fps, sample_rate),
        "consistency": metrics.temporal_consistency(verdict, frames),
        "fps": fps,
        "resolution": int(frames.shape[1]),
    }
    if row.get("edit"):
        record["edit"] = _edit_metrics(folder, row["edit"], frames, verdict)
    if row.get("reference_file"):
        record["upsampling"] = _upsampling_metrics(folder, row, frames)
    return record


def _edit_metrics(folder: Path, edit: dict, frames: np.ndarray, verdict: dict) -> dict:
    """Success: the judged attribute is the target. Preservation: PSNR against the source outside the
    subject's boxes (grown) for a subject edit (colour, kind, motion), found by the judge in both clips;
    for a scene edit (background, weather, camera) on the subject's own pixels in both clips
    (`judge.subject_pixels`): its box would count the background around it, which the edit is meant to
    change (a perfect background edit scored 8-11 dB in the box)."""
    source, _, source_fps, _ = _decode(folder / edit["source_file"])
    source_verdict = judge.judge_video(source, source_fps)
    count = min(len(source), len(frames))
    source, frames = source[:count], frames[:count]
    subject_edit = edit["attribute"] in ("subject", "color", "motion", "direction", "speed")
    if subject_edit:
        shape = frames.shape[1:3]
        subject = metrics.subject_mask(verdict["track"]["box"][:count], shape)
        keep = ~(subject | metrics.subject_mask(source_verdict["track"]["box"][:count], shape))
    else:
        keep = judge.subject_pixels(frames, verdict) | judge.subject_pixels(source, source_verdict)
    return {
        "attribute": edit["attribute"],
        "target": edit["target"],
        "success": metrics.edit_success(verdict, edit["attribute"], edit["target"]),
        "preservation_psnr": metrics.preservation_psnr(source, frames, keep) if keep.any() else None,
    }


def _upsampling_metrics(folder: Path, row: dict, frames: np.ndarray) -> dict:
    reference, _, _, _ = _decode(folder / row["reference_file"])
    count = min(len(reference), len(frames))
    result = {"psnr": metrics.psnr(reference[:count], frames[:count]), "ssim": metrics.ssim(reference[:count], frames[:count])}
    if row.get("input_file"):
        from PIL import Image

        low, _, _, _ = _decode(folder / row["input_file"])
        size = (reference.shape[2], reference.shape[1])
        bicubic = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BICUBIC)) for f in low[:count]])
        result["bicubic_psnr"] = metrics.psnr(reference[:count], bicubic)
        result["bicubic_ssim"] = metrics.ssim(reference[:count], bicubic)
    return result


def _evaluate_star(job):
    return evaluate_clip(*job)


# --- the folder ------------------------------------------------------------------------------
def evaluate_folder(folder: Path, workers: int = 1) -> dict:
    """Judge every clip of the folder; returns {"summary": {group: figures}, "clips": [records]}."""
    folder = Path(folder)
    rows = read_metadata(folder)
    missing = [row["file_name"] for row in rows if not (folder / row["file_name"]).is_file()]
    if missing:
        raise ValueError(f"{len(missing)} clip(s) listed in {METADATA_NAME} are missing, e.g. {missing[0]!r}")
    jobs = [(folder, row) for row in rows]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            records = pool.map(_evaluate_star, jobs)
    else:
        records = [evaluate_clip(*job) for job in jobs]
    return {"summary": summarize(records), "clips": records}


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def summarize(records: list[dict]) -> dict:
    """Figures per group: all clips, each split, and the clips prompting a held-out pair."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[ALL].append(record)
        if record.get("split"):
            groups[record["split"]].append(record)
        if record["held_out_pair"]:
            groups[HELD_OUT_PAIRS_GROUP].append(record)
    return {name: _figures(group) for name, group in groups.items()}


def _figures(records: list[dict]) -> dict:
    figures: dict[str, float | int | None] = {"clips": len(records)}
    figures["video_adherence"] = _mean(r["video_adherence"]["score"] for r in records)
    for attribute in metrics.VIDEO_ATTRIBUTES:
        figures[f"video/{attribute}"] = _mean(
            float(r["video_adherence"]["hits"][attribute]) for r in records if attribute in r["video_adherence"]["hits"]
        )
    figures["audio_adherence"] = _mean(r["audio_adherence"]["score"] for r in records)
    for attribute in metrics.AUDIO_ATTRIBUTES:
        figures[f"audio/{attribute}"] = _mean(
            float(r["audio_adherence"]["hits"][attribute]) for r in records if attribute in r["audio_adherence"]["hits"]
        )
    # Sync pooled over events: each clip's median weighted by its event count would hide outliers, so
    # report the mean of per-clip medians and the event-weighted share within one frame.
    synced = [r["sync"] for r in records if r["sync"]["events"]]
    figures["sync/median_abs_offset_ms"] = _mean(s["median_abs_offset_ms"] for s in synced)
    events = sum(s["events"] for s in synced)
    figures["sync/within_one_frame"] = sum(s["within_one_frame"] * s["events"] for s in synced) / events if events else None
    figures["av_align"] = _mean(r["av_align"] for r in records)
    for key in ("color_stability", "identity_stability", "flicker"):
        figures[f"consistency/{key}"] = _mean(r["consistency"][key] for r in records)
    by_text: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("text"):
            by_text[record["text"]].append(record)
    groups = [group for group in by_text.values() if len(group) > 1]
    spread = [metrics.diversity([r["verdict"] for r in g], g[0]["fps"], g[0]["resolution"]) for g in groups]
    figures["diversity/trajectory"] = _mean(s["trajectory"] for s in spread)
    figures["diversity/event_times"] = _mean(s["event_times"] for s in spread)
    edits = [r["edit"] for r in records if "edit" in r]
    if edits:
        figures["edit/success"] = _mean(float(e["success"]) for e in edits)
        figures["edit/preservation_psnr"] = _mean(e["preservation_psnr"] for e in edits if e["preservation_psnr"] != math.inf)
    upsampled = [r["upsampling"] for r in records if "upsampling" in r]
    for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim"):
        if any(key in u for u in upsampled):
            figures[f"upsampling/{key}"] = _mean(u.get(key) for u in upsampled)
    return figures


def summary_markdown(summary: dict) -> str:
    """One row per figure, one column per group."""
    names = list(summary)
    rows = [key for key in summary[ALL]]
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in rows:
        cells = [_format(summary[name].get(key)) for name in names]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _format(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
