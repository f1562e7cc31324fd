"""How often the judge is right, measured on rendered ground truth (`avgen world judge-accuracy`,
avgen/commands/judge_accuracy.py).

Renders clips over all attributes (both Movie Gen formats, 10 s @ 24 fps and 16 s @ 16 fps, plus
shorter clips at every world fps, several resolutions, held-out subject-colour pairs, second subjects),
sends a share of them through an MP4 round trip (H.264 yuv420p + AAC, as generated clips are judged),
runs the judge on the decoded clip and compares its verdict with the ground truth:

- attribute accuracy: share of clips where each judged attribute equals the truth (must be >= 95 %);
- event timing: truth events and judged events of the same kind are paired one to one (nearest first,
  within EVENT_MATCH_WINDOW_S); recall and precision count the pairs, and time accuracy is the share of
  truth events that have a judged event within +-1 frame (must be >= 95 %).
Visual events are those of the main subject while it is visible plus lightning flashes; audio
onsets are all sounding events (both subjects and thunder).
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from avgen.muxer import read_video, write_video
from avgen.world import judge, metrics, render_clip
from avgen.world.spec import ClipSpec, GroundTruth, sample_spec

PASS_LEVEL = 0.95  # every attribute accuracy and event time accuracy must reach this (docs/world.md, "The judge")
EVENT_MATCH_WINDOW_S = 0.25  # a judged event farther than this from every truth event is a false alarm
MOVIEGEN_SHARE = 0.3  # share of clips in the two Movie Gen formats (the rest are 2-6 s clips)
SHORT_DURATIONS_S = (2.0, 3.0, 4.0, 6.0)
HELD_OUT_SHARE = 0.15  # share of clips whose main subject is a held-out pair
# Truth event kind -> judged visual event kind / judged audio onset class.
VISUAL_KIND = {"contact": "contact", "footstep": "footstep", "flash": "flash"}
AUDIO_CLASS = {"contact": "impact", "footstep": "footstep", "thunder": "thunder"}
ATTRIBUTES = ("subject", "color", "motion", "direction", "speed", "background", "camera", "weather", "ambience", "music", "subject_sounds")


def accuracy_specs(n: int, resolutions, fps_options, seed: int) -> list[ClipSpec]:
    """n random clips covering every attribute, format, resolution and fps (deterministic in seed)."""
    rng = np.random.default_rng(seed)
    specs = []
    for index in range(n):
        resolution = int(resolutions[index % len(resolutions)])
        if rng.random() < MOVIEGEN_SHARE and set(fps_options) & {16, 24}:
            duration, fps = [(10.0, 24), (16.0, 16)][rng.integers(2)]
            if fps not in fps_options:
                duration, fps = (10.0, 24) if fps == 16 else (16.0, 16)
        else:
            fps = int(fps_options[rng.integers(len(fps_options))])
            duration = float(SHORT_DURATIONS_S[rng.integers(len(SHORT_DURATIONS_S))])
        held_out = rng.random() < HELD_OUT_SHARE
        specs.append(sample_spec(rng, held_out=held_out, resolution=resolution, fps=fps, duration=duration))
    return specs


def truth_attributes(truth: GroundTruth) -> dict:
    spec = truth.spec
    subject = spec.subject
    return {
        "subject": subject.kind,
        "color": subject.color,
        "motion": subject.motion,
        "direction": subject.direction,
        "speed": subject.speed,
        "background": spec.background,
        "camera": spec.camera,
        "weather": spec.weather,
        "ambience": spec.weather,
        "music": spec.music,
        "subject_sounds": sorted(
            {metrics.expected_subject_sound(s.kind, s.motion) for s in (subject, spec.second) if s is not None} - {"none"}
        ),
    }


def judged_attributes(verdict: dict) -> dict:
    subject = verdict["subject"]
    judged = {key: subject[key] for key in ("motion", "direction", "speed", "color")}
    judged["subject"] = subject["kind"]
    judged.update({key: verdict[key] for key in ("background", "camera", "weather", "ambience", "music", "subject_sounds")})
    return judged


def match_events(truth_times, judged_times) -> list[float]:
    """Pair truth and judged events one to one, nearest pairs first, within EVENT_MATCH_WINDOW_S.
    Returns the |offset| (s) of each pair."""
    truth_times, judged_times = np.asarray(truth_times, float), np.asarray(judged_times, float)
    if truth_times.size == 0 or judged_times.size == 0:
        return []
    distance = np.abs(truth_times[:, None] - judged_times[None, :])  # (T, J)
    offsets = []
    for flat in np.argsort(distance, axis=None):
        i, j = np.unravel_index(flat, distance.shape)
        if distance[i, j] > EVENT_MATCH_WINDOW_S:
            break
        if np.isfinite(distance[i, j]):
            offsets.append(float(distance[i, j]))
            distance[i, :] = np.inf
            distance[:, j] = np.inf
    return offsets


def _visible_truth_events(truth: GroundTruth, kind: str) -> list[float]:
    """Truth events of `kind` that can be seen: lightning always, the main subject's while it is visible."""
    fps = truth.spec.fps
    times = []
    for event in truth.events:
        if event.kind != kind or event.subject not in (0, -1):
            continue
        frame = min(int(event.time * fps), len(truth.visible) - 1)
        if event.subject == -1 or truth.visible[frame]:
            times.append(event.time)
    return times


def judge_one(job: tuple[ClipSpec, bool]) -> dict:
    """Render one clip, optionally round-trip it through MP4, judge it, compare with the truth."""
    spec, through_mp4 = job
    clip = render_clip(spec)
    frames, audio, fps, sample_rate = clip.frames, clip.audio, clip.fps, clip.sample_rate
    if through_mp4:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "clip.mp4"
            write_video(path, frames, fps, audio=audio, sample_rate=sample_rate)
            decoded = read_video(path)
        frames, audio, fps, sample_rate = decoded.frames, decoded.audio, decoded.fps, decoded.sample_rate
    started = time.time()
    verdict = judge.judge_clip(frames, audio, fps, sample_rate)
    judge_seconds = time.time() - started
    truth = clip.truth
    record = {
        "spec": spec.to_dict(),
        "mp4": through_mp4,
        "judge_seconds": judge_seconds,
        "truth": truth_attributes(truth),
        "judged": judged_attributes(verdict),
        "events": {},
    }
    for truth_kind, judged_kind in VISUAL_KIND.items():
        truth_times = _visible_truth_events(truth, truth_kind)
        judged_times = [e["time"] for e in verdict["visual_events"] if e["kind"] == judged_kind]
        record["events"][f"visual/{truth_kind}"] = (len(truth_times), len(judged_times), match_events(truth_times, judged_times))
    for truth_kind, onset_class in AUDIO_CLASS.items():
        truth_times = truth.events_of(truth_kind)
        judged_times = [o["time"] for o in verdict["audio_onsets"] if o["kind"] == onset_class]
        record["events"][f"audio/{truth_kind}"] = (len(truth_times), len(judged_times), match_events(truth_times, judged_times))
    return record


def measure(specs: list[ClipSpec], mp4_share: float = 1.0, workers: int = 2, seed: int = 0) -> dict:
    """Judge every spec's clip and aggregate the accuracy report (JSON-serialisable)."""
    rng = np.random.default_rng(seed + 1)
    jobs = [(spec, bool(rng.random() < mp4_share)) for spec in specs]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            records = pool.map(judge_one, jobs, chunksize=4)
    else:
        records = [judge_one(job) for job in jobs]
    return aggregate(records)


def aggregate(records: list[dict]) -> dict:
    attributes = {}
    errors = defaultdict(lambda: defaultdict(int))  # attribute -> "truth -> judged" -> count
    for attribute in ATTRIBUTES:
        pairs = [(r["truth"][attribute], r["judged"][attribute]) for r in records if r["truth"][attribute] is not None]
        for wanted, got in pairs:
            if wanted != got:
                errors[attribute][f"{wanted} -> {got}"] += 1
        attributes[attribute] = {"clips": len(pairs), "accuracy": float(np.mean([w == g for w, g in pairs])) if pairs else None}
    events = {}
    for key in records[0]["events"]:
        truth_count = sum(r["events"][key][0] for r in records)
        judged_count = sum(r["events"][key][1] for r in records)
        offsets = np.array([o for r in records for o in r["events"][key][2]])
        within = sum(int(np.sum(np.array(r["events"][key][2]) <= 1.0 / r["spec"]["fps"] + 1e-9)) for r in records)
        events[key] = {
            "truth": truth_count,
            "judged": judged_count,
            "recall": len(offsets) / truth_count if truth_count else None,
            "precision": len(offsets) / judged_count if judged_count else None,
            "time_accuracy": within / truth_count if truth_count else None,
            "median_abs_offset_ms": float(np.median(offsets) * 1000) if offsets.size else None,
        }
    passed = all(a["accuracy"] is None or a["accuracy"] >= PASS_LEVEL for a in attributes.values()) and all(
        e["time_accuracy"] is None or e["time_accuracy"] >= PASS_LEVEL for e in events.values()
    )
    by_format = defaultdict(int)
    for r in records:
        by_format[f"{r['spec']['resolution']}px {r['spec']['fps']}fps {r['spec']['duration']:g}s"] += 1
    return {
        "clips": len(records),
        "mp4_round_trips": sum(r["mp4"] for r in records),
        "mean_judge_seconds": float(np.mean([r["judge_seconds"] for r in records])),
        "attributes": attributes,
        "events": events,
        "errors": {k: dict(v) for k, v in errors.items()},
        "formats": dict(sorted(by_format.items())),
        "passed": passed,
    }


def format_report(report: dict) -> str:
    lines = [
        f"judge accuracy on {report['clips']} rendered clips ({report['mp4_round_trips']} through MP4), "
        f"judge {report['mean_judge_seconds']:.2f} s/clip",
        "",
        f"{'attribute':<15}{'clips':>7}{'accuracy':>10}",
    ]
    for name, a in report["attributes"].items():
        flag = "" if a["accuracy"] is None or a["accuracy"] >= PASS_LEVEL else "  FAIL"
        lines.append(f"{name:<15}{a['clips']:>7}{_pct(a['accuracy']):>10}{flag}")
    lines += ["", f"{'events':<17}{'truth':>7}{'judged':>8}{'recall':>9}{'precision':>11}{'within 1 frame':>16}{'median ms':>11}"]
    for name, e in report["events"].items():
        flag = "" if e["time_accuracy"] is None or e["time_accuracy"] >= PASS_LEVEL else "  FAIL"
        median = "–" if e["median_abs_offset_ms"] is None else f"{e['median_abs_offset_ms']:.1f}"
        lines.append(
            f"{name:<17}{e['truth']:>7}{e['judged']:>8}{_pct(e['recall']):>9}{_pct(e['precision']):>11}"
            f"{_pct(e['time_accuracy']):>16}{median:>11}{flag}"
        )
    if report["errors"]:
        lines += ["", "errors (truth -> judged: clips):"]
        for name, confusions in report["errors"].items():
            lines.append(f"  {name}: " + ", ".join(f"{k}: {v}" for k, v in sorted(confusions.items(), key=lambda kv: -kv[1])))
    lines += ["", "PASSED" if report["passed"] else f"FAILED (every figure must reach {PASS_LEVEL:.0%})"]
    return "\n".join(lines)


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"

