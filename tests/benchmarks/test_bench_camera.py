"""benchmarks/bench_camera.py on a tiny random pipeline: every clip is judged rendered, round-tripped and denoised
at each flow time (one step, and sampled to the end), with its camera and the swapped one; the judge names the
rendered clips' cameras."""

from tests.benchmarks import load_script
from tests.pipelines.test_text_to_video import get_pipeline


def test_camera_bench_judges_rendered_round_tripped_and_denoised_clips():
    bench = load_script("bench_camera")
    result = bench.run(get_pipeline(), count=1, seed=0, duration=1.0, size=32, steps=4)
    assert [row["camera"] for row in result["clips"]] == list(bench.CAMERAS)
    for row in result["clips"]:
        assert row["rendered"] == row["camera"]  # the judge reads the world's own clips right
        for way in ("", "sampled "):  # the caption's camera and the swapped one
            assert all(len(row[f"{way}t={t}"]) == 2 for t in bench.TIMES)
    keys = [f"{way}t={t}{swapped}" for way in ("", "sampled ") for t in bench.TIMES for swapped in ("", " swapped")]
    assert set(result["summary"]["static"]) == {"rendered", "round_trip", *keys}
    assert all(figures["rendered"] == 1.0 for figures in result["summary"].values())
