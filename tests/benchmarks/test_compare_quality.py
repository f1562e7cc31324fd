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


def test_reports_from_other_plans_are_refused(tmp_path):
    bench = load_script("compare_quality")
    base = bench.load_records([write_report(tmp_path / "a.json", [0.5], split="heldin")])
    other = {"0/elsewhere.mp4": {"split": "heldin", "video_adherence": {"score": 1.0, "hits": {}}}}
    with pytest.raises(ValueError, match="share no clip"):
        bench.compare(base, other)
