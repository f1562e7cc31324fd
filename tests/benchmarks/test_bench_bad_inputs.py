"""benchmarks/bench_bad_inputs.py on a few cases of each surface, with a tiny random pipeline: each bad input is
refused with its own message, before any model ran, and leaves nothing on disk; the table is written."""

import json

import pytest

from tests.benchmarks import load_script
from tests.pipelines.tiny import avgen_pipeline

CASES = [
    "cli/generate_duration_nan", "cli/generate_model_without_transformer", "cli/foley_theora_into_mp4", "api/duration_huge",
    "api/write_video_sample_rate", "space/generate_seed_negative", "space/add_sound_theora", "space/generate_model_nan_weights",
    "loader/nan", "loader/pickle_only",
]  # fmt: skip


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-inputs")
    avgen_pipeline().save_pretrained(folder / "model")
    assert load_script("bench_bad_inputs").main(["--model", str(folder / "model"), "--only", *CASES, "--results", str(folder)]) == 0
    assert (folder / "bad_inputs.md").read_text().count("\n| ") == 1 + len(CASES)  # the header and a row each
    return {f"{row['surface']}/{row['case']}": row for row in json.loads((folder / "bad_inputs.json").read_text())["rows"]}


def test_every_case_is_refused_before_compute_leaving_nothing(table):
    assert sorted(table) == sorted(name for case in CASES for name in table if name.startswith(case)) and len(table) == len(CASES)
    for name, row in table.items():
        assert row["stage"] == "checks", (name, row)  # nothing loaded, nothing ran
        assert row["left_on_disk"] == [], (name, row)
        assert (row["exit_code"] == 2) if row["surface"] == "cli" else row["exception"] is not None, (name, row)


def test_the_messages_are_the_specific_ones(table):
    assert table["cli/generate_duration_nan"]["error"] == "avgen generate: --duration must be a positive number of seconds; got nan"
    assert table["cli/generate_model_without_transformer"]["error"].endswith("models/no_folder_transformer/transformer is missing: "
                                                                            "<tmp>/materials/models/no_folder_transformer/model_index.json lists the component 'transformer'")
    assert table["loader/nan"]["error"].startswith("<tmp>/materials/models/nan/transformer/diffusion_pytorch_model.safetensors holds NaN")
    assert table["loader/pickle_only"]["exception"] == "FileNotFoundError"
    assert table["space/generate_seed_negative"]["error"].startswith("The seed must be a whole number")
    assert table["api/duration_huge"]["exception"] == "ValueError"
    assert table["cli/foley_theora_into_mp4"]["error"].endswith("old.ogv' holds theora video, which an MP4 cannot carry; write an MKV "
                                                                "file instead (.mkv), which keeps the video stream as it is")
    assert table["space/add_sound_theora"]["error"].startswith("old.mkv holds theora video, which cannot go as it is into the MP4")
    assert table["space/generate_model_nan_weights"]["error"].startswith(
        "The model cannot be loaded: <tmp>/materials/models/nan/transformer/diffusion_pytorch_model.safetensors holds NaN"
    )
