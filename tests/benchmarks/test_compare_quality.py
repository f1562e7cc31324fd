"""benchmarks/compare_quality.py: pairs clips by plan and file, and its interval tells a real gain from noise."""

import json

import numpy as np
import pytest

from tests.benchmarks import load_script


def write_report(path, scores, split="heldin", hits=None):
    clips = [{"file_name": f"{split}-{i:05d}.mp4", "split": split,
              "video_adherence": {"score": float(score), "hits": hits[i] if hits else {"subject": bool(score > 0.5)}}}
             for i, score in enumerate(scores)]
    path.write_text(json.dumps({"summary": {}, "clips": clips}))
    return path


def test_a_consistent_gain_has_an_interval_above_zero_and_noise_does_not(tmp_path):
    bench = load_script("compare_quality")
    rng = np.random.default_rng(0)
    base = rng.random(40)
    better = bench.compare(bench.load_records([write_report(tmp_path / "a.json", base)]),
                           bench.load_records([write_report(tmp_path / "b.json", base + 0.1)]))["heldin"]
    assert better["difference"] == pytest.approx(0.1) and better["interval_90"][0] > 0.05
    assert better["better_on"] == 40 and better["worse_on"] == 0
    noise = bench.compare(bench.load_records([write_report(tmp_path / "a.json", base)]),
                          bench.load_records([write_report(tmp_path / "c.json", rng.permutation(base))]))["heldin"]
    assert noise["interval_90"][0] < 0 < noise["interval_90"][1]


def test_reports_pool_by_plan_and_count_attribute_hits(tmp_path):
    bench = load_script("compare_quality")
    hits_a = [{"subject": True, "color": False}, {"subject": False, "color": False}]
    hits_b = [{"subject": True, "color": True}, {"subject": True, "color": False}]
    base = [write_report(tmp_path / "a0.json", [0.5, 0.0], hits=hits_a), write_report(tmp_path / "a1.json", [0.5, 0.0], hits=hits_a)]
    candidate = [write_report(tmp_path / "b0.json", [1.0, 0.5], hits=hits_b), write_report(tmp_path / "b1.json", [1.0, 0.5], hits=hits_b)]
    result = bench.compare(bench.load_records(base), bench.load_records(candidate))["heldin"]
    assert result["prompts"] == 4  # the same file names in two plans are two prompts
    assert result["hits"]["subject"] == {"prompted": 4, "base": 2, "candidate": 4}
    assert result["hits"]["color"] == {"prompted": 4, "base": 0, "candidate": 2}


def test_the_held_out_split_is_also_compared_in_its_pair_and_phrasing_parts(tmp_path):
    bench = load_script("compare_quality")
    a, b = write_report(tmp_path / "a.json", [0.0] * 6, split="heldout"), write_report(tmp_path / "b.json", [0.0, 1.0] * 3, split="heldout")
    for path in (a, b):  # clips 0, 2, 4 hold a held-out pair; 1, 3, 5 are training specs in held-out phrasing
        report = json.loads(path.read_text())
        for i, clip in enumerate(report["clips"]):
            clip["held_out_pair"] = i % 2 == 0
        path.write_text(json.dumps(report))
    result = bench.compare(bench.load_records([a]), bench.load_records([b]))
    assert result["heldout"]["prompts"] == 6 and result["heldout"]["difference"] == pytest.approx(0.5)
    assert result["heldout: pairs"]["prompts"] == 3 and result["heldout: pairs"]["difference"] == 0
    assert result["heldout: phrasing"]["prompts"] == 3 and result["heldout: phrasing"]["difference"] == 1


def test_reports_from_other_plans_are_refused(tmp_path):
    bench = load_script("compare_quality")
    base = bench.load_records([write_report(tmp_path / "a.json", [0.5], split="heldin")])
    other = {"0/elsewhere.mp4": {"split": "heldin", "video_adherence": {"score": 1.0, "hits": {}}}}
    with pytest.raises(ValueError, match="share no clip"):
        bench.compare(base, other)


def test_sync_counts_the_renders_exact_events_and_pairs_clips(tmp_path):
    from avgen.world import simulate
    from avgen.world.evalset import plan_clip
    from avgen.world.metrics import ONSET_CLASS_OF_EVENT
    from avgen.world.spec import ClipSpec

    bench = load_script("compare_quality")
    rows, events = [], []
    for index in range(12):  # the events of each clip's input render, as foley's metadata.jsonl gives them
        plan = plan_clip(index, "heldin", 0, resolution=32, fps=24, duration=4.0)
        rows.append({**plan, "file_name": f"heldin-{index:05d}.mp4"})
        events.append(simulate(ClipSpec.from_dict(plan["spec"])).events)
    assert sum(map(len, events)) > 10

    def write(name, shift_frames):  # a model whose onsets come shift_frames after every event (None: no onsets)
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        clips = [{"file_name": row["file_name"], "split": "heldin", "fps": 24, "verdict": {"audio_onsets": [] if shift_frames is None else [
            {"kind": ONSET_CLASS_OF_EVENT[e.kind], "time": e.time + shift_frames / 24} for e in clip_events if e.kind in ONSET_CLASS_OF_EVENT]}}
            for row, clip_events in zip(rows, events)]  # fmt: skip
        (folder / "report.json").write_text(json.dumps({"clips": clips}))
        return folder / "report.json"

    silent, synced, late = write("silent", None), write("synced", 0.5), write("late", 3)
    result = bench.compare_sync(bench.load_records([silent]), bench.load_records([synced]), bench.load_rows([silent]))["heldin"]
    counted = sum(1 for clip_events in events for e in clip_events if e.kind in ONSET_CLASS_OF_EVENT)
    assert result["events"] == counted and (result["base"], result["candidate"], result["difference"]) == (0.0, 1.0, 1.0)
    assert result["interval_90"][0] > 0.9 and result["worse_on"] == 0
    assert sum(kind["events"] for kind in result["kinds"].values()) == counted
    worse = bench.compare_sync(bench.load_records([synced]), bench.load_records([late]), bench.load_rows([synced]))["heldin"]
    assert worse["candidate"] == 0.0 and worse["interval_90"][1] < -0.9  # 3 frames late is not within one frame
