"""benchmarks/bench_batch_kills.py: its checker tells a whole, re-signed copy of a batch from a damaged one, and a run
with one kill on a tiny random pipeline ends with every clip identical to the uninterrupted run's."""

import json

import numpy as np
import pytest

from avgen import muxer, provenance
from tests.benchmarks import load_script
from tests.pipelines.tiny import avgen_pipeline


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_batch_kills")


def batch_folder(folder, clips: dict) -> None:
    """A batch's output as the command leaves it: signed MP4s, manifest.jsonl, summary.json."""
    folder.mkdir()
    for name, frames in clips.items():
        muxer.write_video(folder / f"{name}.mp4", frames, 8, sign=provenance.signing_step({"pipeline": "AVGenPipeline"}))
    lines = [json.dumps({"id": name, "status": "ok", "output": f"{name}.mp4"}) for name in clips]
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "summary.json").write_text(json.dumps({"jobs": len(clips), "ok": len(clips), "error": 0, "skipped": 0}))


def test_the_checker_accepts_a_resigned_copy_and_names_each_damage(bench, tmp_path):
    rng = np.random.default_rng(0)
    clips = {name: rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8) for name in ("00001", "00002")}
    batch_folder(tmp_path / "reference", clips)
    batch_folder(tmp_path / "out", clips)  # signed anew: other manifest bytes, the same media
    assert (tmp_path / "out" / "00001.mp4").read_bytes() != (tmp_path / "reference" / "00001.mp4").read_bytes()
    assert bench.check(tmp_path / "out", tmp_path / "reference")["all_good"]

    data = bytearray((tmp_path / "out" / "00002.mp4").read_bytes())
    data[data.find(b"mdat") + 40] ^= 1  # one bit of the picture
    (tmp_path / "out" / "00002.mp4").write_bytes(bytes(data))
    (tmp_path / "out" / ".00001.mp4.0badc0de.partial").write_bytes(b"half")
    with open(tmp_path / "out" / "manifest.jsonl", "a") as file:
        file.write(json.dumps({"id": "00001", "status": "ok", "output": "00001.mp4"}) + "\n")  # made twice
    found = bench.check(tmp_path / "out", tmp_path / "reference")
    assert found["differ"] == ["00002.mp4"] and found["bad_credentials"] == ["00002.mp4"]  # the signature no longer binds
    assert found["hidden_left"] == [".00001.mp4.0badc0de.partial"] and not found["consistent"] and not found["all_good"]


def test_a_killed_and_resumed_batch_matches_the_uninterrupted_one(bench, tmp_path):
    avgen_pipeline().save_pretrained(tmp_path / "model")
    out = tmp_path / "kills.json"
    assert bench.main(["--kills", "1", "--seed", "1", "--model", str(tmp_path / "model"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["found"]["all_good"] and result["found"]["clips"] == 12 and len(result["runs"]) == 1
