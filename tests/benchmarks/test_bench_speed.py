"""benchmarks/bench_speed.py end to end on a tiny random pipeline: every stage is timed (the stages and
"other" add up to the total), scaling rows come from their own processes, and the tables are written."""

import json

import pytest

from tests.benchmarks import load_script
from tests.pipelines.tiny import avgen_pipeline


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_speed")


def test_speed_report_splits_every_stage_and_scales(bench, tmp_path):
    avgen_pipeline().save_pretrained(tmp_path / "avgen")
    argv = ["--pipeline", str(tmp_path / "avgen"), "--results", str(tmp_path / "results"), "--formats", "0.5@24",
            "--repeats", "1", "--steps", "2", "--dtypes", "fp32", "bf16", "--t2v-durations", "0.5", "--long-form-durations", "0.5", "1", "--device", "cpu",
            "--t2v-sizes", "16", "--upsampler-sizes", "8", "16", "--size-seconds", "0.5",
            "--peak-size", "256"]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads((tmp_path / "results" / "speed_cpu.json").read_text())
    row, row_bf16 = report["formats"]
    assert (row["dtype"], row_bf16["dtype"]) == ("fp32", "bf16")
    stages = row["stages"]
    assert set(stages) == set(bench.STAGES) | {"other"}
    for stage in bench.STAGES:  # every stage ran and was timed
        assert stages[stage] > 0, stage
    assert sum(stages.values()) == pytest.approx(row["seconds"])
    assert row["transformer_calls"] == 2 and row["transformer_flops"] > 0 and 0 < row["transformer_mfu_fp32"]
    assert row["seconds_per_generated_second"] == pytest.approx(row["seconds"] / 0.5)
    assert [(r["kind"], r["duration"], r.get("size")) for r in report["scaling"]] == [
        ("t2v", 0.5, None), ("long-form", 0.5, None), ("long-form", 1.0, None),
        ("t2v size", 0.5, 16), ("upsampler size", 0.5, 8), ("upsampler size", 0.5, 16)]
    assert all(r["peak_memory_mb"] > 0 for r in report["scaling"])
    table = (tmp_path / "results" / "speed_cpu.md").read_text()
    assert "| 0.5@24 | bf16 |" in table and "Scaling with resolution, upsampler alone, 24 fps, 0.5 s" in table


def test_conditions_per_call_against_per_step_in_one_run(bench, tmp_path):
    avgen_pipeline(with_upsampler=False).save_pretrained(tmp_path / "avgen")
    argv = ["--pipeline", str(tmp_path / "avgen"), "--results", str(tmp_path / "results"), "--formats", "0.5@24", "--repeats", "1",
            "--steps", "2", "--dtypes", "fp32", "--compare-conditions", "--t2v-durations", "--long-form-durations", "--t2v-sizes",
            "--upsampler-sizes", "--device", "cpu", "--peak-size", "64"]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads((tmp_path / "results" / "speed_cpu.json").read_text())
    assert [row["conditions"] for row in report["formats"]] == ["per-call"]  # the main table stays the per-call path
    (row,) = report["conditions"]
    assert (row["format"], row["dtype"], row["identical_outputs"]) == ("0.5@24", "fp32", True)
    for stage in ("total", "video transformer", "audio transformer"):
        assert row[stage]["ratio"] == pytest.approx(row[stage]["per-step"] / row[stage]["per-call"])
    assert "| 0.5@24 | fp32 |" in (tmp_path / "results" / "speed_cpu.md").read_text().split("per-step / per-call")[1]


def test_speed_refuses_a_folder_without_a_pipeline(bench, tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--pipeline", str(tmp_path), "--results", str(tmp_path / "results")])
