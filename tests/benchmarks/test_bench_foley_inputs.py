"""benchmarks/bench_foley_inputs.py on a tiny pipeline and short clips: each clip's row holds the exact-length and
bit-exact checks and a peak, the 720p peak is set against the 64 px one, and the tables are written."""

import json
import subprocess
import sys

from tests.benchmarks import BENCHMARKS
from tests.pipelines.tiny import avgen_pipeline


def test_measures_each_clip_in_a_process_of_its_own(tmp_path):
    avgen_pipeline().save_pretrained(tmp_path / "model")
    out = tmp_path / "results" / "foley_inputs"
    argv = ["--model", str(tmp_path / "model"), "--only", "mkv-vfr,webm-29.97", "--resolutions", "64px,720p",
            "--seconds", "0.3", "--out", str(out), "--work", str(tmp_path / "work")]  # fmt: skip
    # a fresh interpreter: the script forks, which a process that has run torch's thread pool must not
    done = subprocess.run([sys.executable, str(BENCHMARKS / "bench_foley_inputs.py"), *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    rows = {row["case"]: row for row in report["rows"]}
    assert sorted(rows) == ["mkv-vfr-64px", "mkv-vfr-720p", "webm-29.97-64px", "webm-29.97-720p"]
    for row in rows.values():
        assert row["samples"] == row["expected_samples"] and row["video_bit_exact"] and row["peak_mb"] > 0
        assert row["output_video_seconds"] == row["video_seconds"]
    assert sorted(clip for clip, _ in report["peak_ratios"]) == ["mkv-vfr", "webm-29.97"]
    assert "| mkv-vfr-720p |" in out.with_suffix(".md").read_text()
    assert not list((tmp_path / "work").glob("*.mp4"))  # the clips are removed as they are measured
