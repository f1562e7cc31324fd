"""`avgen eval` on a tiny folder of rendered MP4s (through the real muxer and the CLI)."""

import json

import numpy as np

from avgen.cli import main
from avgen.muxer import write_video
from avgen.world import render_clip
from avgen.world.spec import ClipSpec, SubjectSpec

SPEC = ClipSpec(SubjectSpec("ball", "orange", "bouncing", "left"), background="beach", resolution=64, fps=12, duration=2.0, seed=3)


def _write(folder, name, spec, shift_s=0.0):
    clip = render_clip(spec)
    audio = np.roll(clip.audio, int(shift_s * clip.sample_rate))
    write_video(folder / name, clip.frames, clip.fps, audio=audio, sample_rate=clip.sample_rate)


def test_eval_folder_reports_adherence_sync_and_splits(tmp_path):
    _write(tmp_path, "a.mp4", SPEC)
    _write(tmp_path, "b.mp4", SPEC.replace(seed=4), shift_s=0.2)
    rows = [
        {"file_name": "a.mp4", "text": "An orange ball bounces to the left on a beach.", "split": "heldout"},
        {"file_name": "b.mp4", "text": "An orange ball bounces to the left on a beach.", "split": "heldout"},
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["eval", str(tmp_path), "--markdown", str(tmp_path / "report.md")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["summary"]) == {"all", "heldout", "held-out pairs"}
    a, b = report["clips"]
    assert a["held_out_pair"] and a["video_adherence"]["score"] == 1.0
    assert a["sync"]["within_one_frame"] == 1.0
    assert abs(b["sync"]["median_abs_offset_ms"] - 200) < 1000 / 12
    assert report["summary"]["all"]["diversity/trajectory"] > 0  # two seeds of one prompt
    assert "| video_adherence |" in (tmp_path / "report.md").read_text()


def test_eval_rejects_a_folder_without_metadata(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "metadata.jsonl" in capsys.readouterr().err


def test_scene_edit_preservation_counts_the_subject_not_the_background_around_it(tmp_path):
    """A perfect background edit keeps the subject's pixels (28.5 dB through the MP4's 4:2:0 chroma at its
    edges; its box would score ~10 dB, since the background inside it changes); the same edit with the
    subject moved 3 px does not."""
    from avgen.world.evaluate import evaluate_clip

    source = SPEC.replace(background="city intersection")
    _write(tmp_path, "source.mp4", source)
    _write(tmp_path, "perfect.mp4", SPEC)  # the same seed, only the background differs
    moved = render_clip(SPEC)
    write_video(tmp_path / "moved.mp4", np.roll(moved.frames, 3, axis=2), moved.fps)
    edit = {"source_file": "source.mp4", "attribute": "background", "target": "beach"}
    perfect = evaluate_clip(tmp_path, {"file_name": "perfect.mp4", "text": "", "edit": edit})["edit"]
    assert perfect["success"] and perfect["preservation_psnr"] > 25
    moved = evaluate_clip(tmp_path, {"file_name": "moved.mp4", "text": "", "edit": edit})["edit"]
    assert moved["preservation_psnr"] < 20
