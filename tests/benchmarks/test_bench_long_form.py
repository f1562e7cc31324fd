"""benchmarks/bench_long_form.py: the seam figure sees a seam where there is one, and a run on a tiny random
pipeline reports time, windows and memory per duration."""

import json

import numpy as np
import pytest

from tests.benchmarks import load_script
from tests.pipelines.tiny import avgen_pipeline


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_long_form")


def test_seam_figures_flag_a_discontinuity_and_not_a_steady_sound(bench):
    rate = 16000
    time = np.arange(4 * rate) / rate
    steady = 0.1 * np.sin(2 * np.pi * 440 * time) + 0.01 * np.random.default_rng(0).standard_normal(time.size)
    seamed = steady.copy()
    seamed[2 * rate :] = 0.3 * np.sin(2 * np.pi * 1000 * time[2 * rate :])  # a hard join at 2 s
    clean = bench.seam_figures(steady.astype(np.float32), rate, [2.0], [1.0, 3.0])
    joined = bench.seam_figures(seamed.astype(np.float32), rate, [2.0], [1.0, 3.0])
    assert clean["edges_vs_mean"] == pytest.approx(1, abs=0.3)
    assert joined["edges_vs_mean"] > 3 * joined["between_vs_mean"]


def test_long_form_run_reports_every_duration(bench, tmp_path):
    avgen_pipeline().save_pretrained(tmp_path / "avgen")
    argv = ["--pipeline", str(tmp_path / "avgen"), "--durations", "0.5", "1.5", "--steps", "2", "--results", str(tmp_path / "results")]
    assert bench.main(argv) == 0
    rows = json.loads((tmp_path / "results" / "long_form_cpu.json").read_text())["rows"]
    assert [row["seconds_of_audio"] for row in rows] == [0.5, 1.5]
    assert rows[1]["windows"] >= rows[0]["windows"] and all(row["peak_memory_mb"] > 0 for row in rows)
