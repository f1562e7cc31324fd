"""benchmarks/bench_foley_generated.py on a tiny end-to-end run: the generated pictures are kept byte for byte,
only the sound is new and follows the setting; the random-weights rows are left out; reruns resume; a folder
made with other settings is refused."""

import json

import pytest

from avgen.muxer import read_video
from tests.benchmarks import load_script
from tests.commands.test_foley import video_packets
from tests.pipelines.tiny import avgen_pipeline


@pytest.fixture(scope="module")
def end_to_end(tmp_path_factory):
    root = tmp_path_factory.mktemp("foley_generated")
    avgen_pipeline().save_pretrained(root / "avgen")
    argv = ["--only", "t2v", "--pipeline", str(root / "avgen"), "--out", str(root / "out"), "--results", str(root / "results"),
            "--n", "1", "--baseline-n", "1", "--diversity", "0", "--durations", "1@24", "--steps", "2", "--device", "cpu"]  # fmt: skip
    assert load_script("bench_quality").main(argv) == 0
    return root, root / "out" / "t2v" / "1s@24fps"


def test_resounds_the_generated_pictures_and_judges_them(end_to_end):
    root, source = end_to_end
    bench = load_script("bench_foley_generated")
    common = [str(source), "--pipeline", str(root / "avgen"), "--steps", "2"]
    assert bench.main([*common, "--out", str(root / "vg1")]) == 0
    assert bench.main([*common, "--out", str(root / "vg2"), "--video-guidance-scale", "2"]) == 0
    names = [json.loads(line)["file_name"] for line in (root / "vg1" / "0-out" / "metadata.jsonl").read_text().splitlines()]
    assert names == ["heldin-00000.mp4", "heldout-00000.mp4"]  # the random-weights rows are not re-sounded
    for name in names:
        plain, guided = root / "vg1" / "0-out" / name, root / "vg2" / "0-out" / name
        assert video_packets(plain)[:2] == video_packets(source / name)[:2] == video_packets(guided)[:2]
        assert read_video(guided).metadata["video_guidance"] == "2.0" and read_video(plain).metadata["video_guidance"] == "1.0"
        assert abs(read_video(plain).audio - read_video(guided).audio).max() > 1e-3
    report = json.loads((root / "vg2" / "0-out" / "report.json").read_text())
    assert [clip["file_name"] for clip in report["clips"]] == names and "sync/within_one_frame" in report["summary"]["all"]
    summary = json.loads((root / "vg2" / "summary.json").read_text())[str(root / "vg2" / "0-out")]["heldin"]
    assert summary["events"] == sum(summary[f"{kind}/events"] for kind in ("contact", "footstep", "flash")) >= summary["within_one_frame"]
    before = (root / "vg2" / "0-out" / names[0]).stat().st_mtime_ns
    assert bench.main([*common, "--out", str(root / "vg2"), "--video-guidance-scale", "2"]) == 0  # resumes
    assert (root / "vg2" / "0-out" / names[0]).stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="other settings"):
        bench.main([*common, "--out", str(root / "vg2"), "--video-guidance-scale", "3"])
    with pytest.raises(ValueError, match="video_guidance_scale must be a finite number >= 1"):
        bench.main([*common, "--out", str(root / "bad"), "--video-guidance-scale", "0.5"])
    assert not (root / "bad").exists()
