"""benchmarks/bench_camera.py on a tiny random pipeline: every clip is judged rendered, round-tripped and denoised
at each flow time, with its camera and the swapped one; the judge names the rendered clips' cameras."""

from tests.benchmarks import load_script
from tests.pipelines.test_text_to_video import get_pipeline


def test_camera_bench_judges_rendered_round_tripped_and_denoised_clips():
    bench = load_script("bench_camera")
    result = bench.run(get_pipeline(), count=1, seed=0, duration=1.0, size=32)
    assert [row["camera"] for row in result["clips"]] == list(bench.CAMERAS)
    for row in result["clips"]:
        assert row["rendered"] == row["camera"]  # the judge reads the world's own clips right
        assert all(len(row[f"t={t}"]) == 2 for t in bench.TIMES)  # the caption's camera and the swapped one
    assert set(result["summary"]["static"]) == {"rendered", "round_trip", *(f"t={t}" for t in bench.TIMES),
                                                *(f"t={t} swapped" for t in bench.TIMES)}
    assert all(figures["rendered"] == 1.0 for figures in result["summary"].values())
