"""benchmarks/pool_quality.py: finished bench_quality runs of several prompt plans pool into one quality.json entry
with the figures bench_quality gives one run, and folders that do not belong together are refused."""

import json
import shutil

import numpy as np
import pytest

from tests.benchmarks import load_script
from tests.pipelines.tiny import avgen_pipeline


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two video-only runs of plans 0 and 1 (1 prompt a split, its random-weights baseline, 1 s at 24 fps, 2 steps)."""
    bench = load_script("bench_quality")
    root = tmp_path_factory.mktemp("pool")
    avgen_pipeline().save_pretrained(root / "avgen")
    for seed in (0, 1):
        argv = ["--pipeline", str(root / "avgen"), "--out", str(root / f"plan{seed}"), "--results", str(root / f"results{seed}"),
                "--only", "video", "--n", "1", "--baseline-n", "1", "--diversity", "0", "--durations", "1@24",
                "--steps", "2", "--device", "cpu", "--seed", str(seed)]  # fmt: skip
        assert bench.main(argv) == 0
    return root


def folder(root, seed):
    return root / f"plan{seed}" / "video" / "1s@24fps"


def test_one_folder_pools_to_the_figures_of_its_own_run(runs):
    script = load_script("pool_quality")
    figures, settings = script.pool([folder(runs, 0)], "video")
    assert figures == json.loads((runs / "results0" / "quality.json").read_text())["video"]["formats"]["1s@24fps"]
    assert settings["seed"] == [0] and settings["n"] == 1 and settings["baseline_n"] == 1


def test_two_plans_pool_every_clip_into_quality_json(runs, tmp_path):
    script = load_script("pool_quality")
    argv = ["video", str(folder(runs, 0)), str(folder(runs, 1)), "--results", str(tmp_path), "--out", str(tmp_path / "pooled.json")]
    assert script.main(argv) == 0
    results = json.loads((tmp_path / "quality.json").read_text())["video"]
    record = json.loads((tmp_path / "pooled.json").read_text())
    assert record["figures"] == results["formats"]["1s@24fps"] and record["settings"] == results["settings_by_format"]["1s@24fps"]
    figures, settings = results["formats"]["1s@24fps"], results["settings_by_format"]["1s@24fps"]
    assert settings["seed"] == [0, 1] and settings["n"] == 2 and settings["baseline_n"] == 2
    assert figures["heldin"]["clips"] == 2 and figures["random weights/heldout"]["clips"] == 2
    scores = [record["video_adherence"]["score"] for seed in (0, 1)
              for record in json.loads((folder(runs, seed) / "report.json").read_text())["clips"]
              if record["split"] == "heldin" and not record["file_name"].startswith("random/")]  # fmt: skip
    assert figures["heldin"]["video_adherence"] == pytest.approx(np.mean(scores))
    assert "| video_adherence |" in (tmp_path / "quality.md").read_text()


def test_folders_that_do_not_belong_together_are_refused(runs, tmp_path, capsys):
    script = load_script("pool_quality")
    other = tmp_path / "other" / "1s@24fps"
    shutil.copytree(folder(runs, 1), other)
    settings = json.loads((other / "settings.json").read_text())
    (other / "settings.json").write_text(json.dumps({**settings, "steps": 3}))
    with pytest.raises(ValueError, match="other settings"):
        script.pool([folder(runs, 0), other], "video")
    renamed = tmp_path / "renamed" / "2s@16fps"
    shutil.copytree(folder(runs, 1), renamed)
    with pytest.raises(ValueError, match="several formats"):
        script.pool([folder(runs, 0), renamed], "video")
    (renamed / "report.json").unlink()
    assert script.main(["video", str(renamed), "--results", str(tmp_path)]) == 2
    assert "report.json missing" in capsys.readouterr().err and not (tmp_path / "quality.json").exists()
