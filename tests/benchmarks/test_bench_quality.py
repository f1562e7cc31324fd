"""benchmarks/bench_quality.py end to end on tiny random pipelines (saved like the shipped weights will be):
every sub-benchmark reports every figure, a rerun resumes without regenerating, other settings are refused, and
the SDEdit baseline runs exactly the tail of the schedule."""

import json

import numpy as np
import pytest
import torch

from avgen.flow_matching import linear_quadratic_sigmas
from avgen.muxer import write_video
from tests.benchmarks import load_script
from tests.pipelines.test_video_edit import get_pipeline as edit_pipeline
from tests.pipelines.tiny import avgen_pipeline


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_quality")


@pytest.fixture(scope="module")
def run(tmp_path_factory, bench):
    """One full run: 2 prompts / pairs per split, 1 baseline each, 1 diversity prompt with 2 seeds, 1 s at 24 fps
    and 2 s at 16 fps, 2 steps."""
    root = tmp_path_factory.mktemp("quality")
    avgen_pipeline().save_pretrained(root / "avgen")
    edit_pipeline(with_audio=True).save_pretrained(root / "edit")
    argv = [
        "--pipeline", str(root / "avgen"), "--edit-pipeline", str(root / "edit"), "--out", str(root / "out"),
        "--results", str(root / "results"), "--n", "2", "--baseline-n", "1", "--diversity", "1", "--diversity-seeds", "2",
        "--durations", "1@24", "2@16", "--steps", "2", "--device", "cpu",
    ]  # fmt: skip
    assert bench.main(argv) == 0
    return root, argv


GROUPS = {
    "t2v": {"heldin": 2, "heldout": 2, "heldout pairs": 1, "heldout captions": 1, "diversity": 2,
            "random weights/heldin": 1, "random weights/heldout": 1},
    "video": {"heldin": 2, "heldout": 2, "heldout pairs": 1, "heldout captions": 1, "diversity": 2,
              "random weights/heldin": 1, "random weights/heldout": 1},
    "foley": {"video+text/heldin": 2, "video+text/heldout": 2, "text only (null video)/heldin": 1, "text only (null video)/heldout": 1},
    "edit": {"edit model/heldin": 2, "edit model/heldout": 2, "SDEdit baseline/heldin": 1, "SDEdit baseline/heldout": 1,
             "autoencoder only/heldin": 1, "autoencoder only/heldout": 1},
    "upsample": {"upsampler": 2},
}  # fmt: skip


def test_every_sub_benchmark_reports_every_figure(run, bench):
    root, _ = run
    results = json.loads((root / "results" / "quality.json").read_text())
    assert set(results) == set(bench.BENCHES)
    for name, groups in GROUPS.items():
        assert set(results[name]["formats"]) == {"1s@24fps", "2s@16fps"}
        for figures in results[name]["formats"].values():
            assert {group: figures[group]["clips"] for group in figures} == groups
            for group in figures.values():
                assert set(bench.TABLE_ROWS[name]) <= set(group)
    t2v = results["t2v"]["formats"]["1s@24fps"]
    for key in ("video_adherence", "audio_adherence", "av_align", "consistency/flicker"):
        assert t2v["heldin"][key] is not None and t2v["random weights/heldin"][key] is not None
    foley = results["foley"]["formats"]["2s@16fps"]["video+text/heldin"]
    assert foley["audio_adherence"] is not None
    assert sum(foley[f"sync/{kind}/events"] for kind in ("contact", "footstep", "flash")) > 0  # the renders have events
    for group in results["edit"]["formats"]["1s@24fps"].values():
        assert 0 <= group["edit/success"] <= 1
    upsample = results["upsample"]["formats"]["1s@24fps"]["upsampler"]
    assert all(upsample[key] is not None for key in bench.TABLE_ROWS["upsample"])
    table = (root / "results" / "quality.md").read_text()
    assert table.count("\n## ") == 10 and "| edit/trajectory_error_px |" in table and "| sync/flash/within_one_frame |" in table
    # each folder is an `avgen eval` folder: metadata.jsonl and the per-clip report
    assert (root / "out" / "edit" / "1s@24fps" / "report.json").is_file()


def test_rerun_resumes_without_regenerating(run, bench):
    root, argv = run
    clips = sorted((root / "out").rglob("*.mp4"))
    before = {path: path.stat().st_mtime_ns for path in clips}
    results = (root / "results" / "quality.json").read_text()
    assert bench.main(argv) == 0
    assert {path: path.stat().st_mtime_ns for path in sorted((root / "out").rglob("*.mp4"))} == before
    assert json.loads((root / "results" / "quality.json").read_text()) == json.loads(results)  # the judge is deterministic


def test_other_settings_are_refused_before_any_work(run, bench, capsys):
    root, argv = run
    assert bench.main([*argv, "--steps", "3"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_sdedit_runs_the_tail_of_the_schedule_from_the_noised_source(bench, tmp_path, monkeypatch):
    pipe = avgen_pipeline()
    source = write_video(tmp_path / "source.mp4", np.full((8, 32, 32, 3), 90, np.uint8), 24)
    times = []
    forward = pipe.transformer.forward

    def spy(*args, **kwargs):
        times.append(float(kwargs["timestep"][0]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    steps, sigma = 6, 0.9  # sigmas 1, .999, .998, .997, .886, .553: the last two steps run
    output = bench.sdedit(pipe, source, "a red ball", steps, sigma, torch.Generator().manual_seed(0))
    sigmas = linear_quadratic_sigmas(steps)
    skip = next(index for index, value in enumerate(sigmas) if value <= sigma)
    assert skip == 4
    np.testing.assert_allclose(times, [1 - s for s in sigmas[skip:]], atol=1e-6)  # guidance: one batched forward a step
    assert output.frames.shape == (1, 8, 32, 32, 3) and output.audio is not None


def test_the_autoencoder_ceiling_is_the_source_through_the_vae_only(bench, tmp_path, monkeypatch):
    """No transformer runs; the frames are the vae's decode of the source's latents, with the source's sound."""
    pipe = edit_pipeline()
    frames = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    source = write_video(tmp_path / "source.mp4", frames, 24, audio=np.zeros((1, 16_000 // 3), np.float32), sample_rate=16_000)
    monkeypatch.setattr(pipe.transformer, "forward", lambda *a, **k: pytest.fail("the transformer ran"))
    output = bench.autoencoder_roundtrip(pipe, source)
    decoded = torch.from_numpy(bench.evaluate._decode(source)[0]).permute(0, 3, 1, 2)[None] / 255  # (1, F, 3, H, W)
    latents = pipe.encode_source(decoded) / pipe.vae.config.scaling_factor
    with torch.no_grad():
        expected = pipe.vae.decode(latents, num_frames=8).sample.clamp(-1, 1) / 2 + 0.5  # (1, 3, F, H, W) in [0, 1]
    assert output.frames.shape == (1, 8, 32, 32, 3) and output.audio.shape[-1] == 16_000 // 3
    np.testing.assert_allclose(output.frames[0], expected[0].permute(1, 2, 3, 0).numpy(), atol=1e-5)


def test_baseline_only_generates_and_judges_just_the_random_weights_rows(run, bench, tmp_path):
    """A baseline run beside a model run: the same random rows (prompts, noise, initialisation), nothing else."""
    root, _ = run
    argv = ["--pipeline", str(root / "avgen"), "--out", str(tmp_path / "out"), "--results", str(tmp_path / "results"),
            "--only", "t2v", "--n", "2", "--baseline-n", "1", "--diversity", "1", "--durations", "1@24", "--steps", "2",
            "--device", "cpu", "--baseline-only"]  # fmt: skip
    assert bench.main(argv) == 0
    folder = tmp_path / "out" / "t2v" / "1s@24fps"
    assert sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.mp4")) == [
        "random/heldin-00000.mp4", "random/heldout-00000.mp4"]  # fmt: skip
    figures = json.loads((tmp_path / "results" / "quality.json").read_text())["t2v"]["formats"]["1s@24fps"]
    assert set(figures) == {"random weights/heldin", "random weights/heldout"}
    full = json.loads((root / "results" / "quality.json").read_text())["t2v"]["formats"]["1s@24fps"]
    for group in figures:
        assert figures[group] == full[group]  # the full run's random rows, judged the same


@pytest.mark.parametrize("extra", [["--only", "foley"], ["--baseline-n", "0"]])
def test_baseline_only_needs_a_random_weights_baseline(bench, extra, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--baseline-only", "--only", "t2v", *extra])
    assert "--baseline-only needs" in capsys.readouterr().err


def test_foley_sync_pools_the_renders_events_over_clips_and_kinds(bench, monkeypatch):
    """One clip with most events unsounded (its own median is inf) must not make the group's median inf: the median
    and the share within a frame are over all events of all clips and kinds."""
    offsets = {"a": {"contact": np.array([0.5, np.inf]), "footstep": np.array([np.inf]), "flash": np.array([])},
               "b": {"contact": np.array([0.2, 0.4, 0.9]), "footstep": np.array([]), "flash": np.array([])}}  # fmt: skip
    monkeypatch.setattr(bench, "clip_sync_offsets", lambda record, row: offsets[row["name"]])
    figures = bench.truth_sync([({"fps": 20}, {"name": "a"}), ({"fps": 20}, {"name": "b"})], None)
    assert figures["sync/median_abs_offset_frames"] == pytest.approx(0.7)  # of 0.2 0.4 0.5 0.9 inf inf
    assert figures["sync/median_abs_offset_ms"] == pytest.approx(35.0)  # 0.7 frames at 20 fps
    assert figures["sync/within_one_frame"] == pytest.approx(4 / 6)
    assert figures["sync/contact/events"] == 5 and figures["sync/contact/within_one_frame"] == pytest.approx(4 / 5)
    assert figures["sync/footstep/median_abs_offset_frames"] == np.inf and figures["sync/flash/events"] == 0
