import argparse
import json

import pytest

import avgen.world
from avgen.commands import world as cli
from avgen.muxer import read_video
from avgen.world.captions import parse_caption
from avgen.world.dataset import VideoFolderDataset
from avgen.world.evalset import plan_clip, write_evalset
from avgen.world.spec import ClipSpec

SMALL = dict(resolution=16, fps=8, duration=1.0)


def _no_rendering(monkeypatch):
    def refuse(spec):
        raise AssertionError(f"rendered again: {spec}")

    monkeypatch.setattr(avgen.world, "render_clip", refuse)


def _lines(folder):
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def test_heldout_set_has_both_sub_kinds_and_hires(tmp_path):
    records = write_evalset(tmp_path, 6, split="heldout", seed=1, hires=True, **SMALL)
    assert [(r["heldout_pair"], r["heldout_paraphrase"]) for r in records] == [(True, False), (False, True), (True, True)] * 2
    assert _lines(tmp_path) == records
    for record in records:
        spec = ClipSpec.from_dict(record["spec"])
        assert spec.has_held_out_pair() == record["heldout_pair"] and record["split"] == "heldout"
        assert parse_caption(record["text"])["color"] == spec.subject.color
        assert record["truth"]["spec"] == record["spec"] and len(record["truth"]["centroid"]) == 8
        video = read_video(tmp_path / record["file_name"])
        assert video.frames.shape == (8, 16, 16, 3) and video.audio.shape == (1, 16_000)
        assert read_video(tmp_path / record["reference_file"]).frames.shape == (8, 32, 32, 3)
    # The rows are what VideoFolderDataset and `avgen eval` read.
    assert len(VideoFolderDataset(tmp_path)) == 6


def test_heldin_set_is_the_training_distribution_and_pairs_with_heldout(tmp_path):
    heldin = write_evalset(tmp_path / "in", 3, split="heldin", **SMALL)
    assert not any(ClipSpec.from_dict(r["spec"]).has_held_out_pair() or r["heldout_paraphrase"] for r in heldin)
    assert "reference_file" not in heldin[0]
    # Clip 1 of the held-out set is heldin clip 1's spec with a held-out caption.
    assert plan_clip(1, "heldout", **SMALL)["spec"] == heldin[1]["spec"]
    assert plan_clip(1, "heldout", **SMALL)["text"] != heldin[1]["text"]


def test_rerun_is_idempotent_and_resumes(tmp_path, monkeypatch):
    records = write_evalset(tmp_path, 3, **SMALL)
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.mp4")}
    rendered = []
    real_render = avgen.world.render_clip
    monkeypatch.setattr(avgen.world, "render_clip", lambda spec: rendered.append(spec) or real_render(spec))
    assert write_evalset(tmp_path, 3, **SMALL) == records and rendered == []
    (tmp_path / "00001.mp4").unlink()  # a lost file is rendered again, alone
    assert write_evalset(tmp_path, 4, **SMALL)[:3] == records and len(rendered) == 2  # 00001 and the new 00003
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.mp4") if p.name in ("00000.mp4", "00002.mp4")} == {
        name: mtimes[name] for name in ("00000.mp4", "00002.mp4")}
    assert [r["file_name"] for r in _lines(tmp_path)] == ["00000.mp4", "00001.mp4", "00002.mp4", "00003.mp4"]
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_a_line_torn_by_a_crash_is_dropped_and_redone(tmp_path, monkeypatch):
    records = write_evalset(tmp_path, 2, **SMALL)
    path = tmp_path / "metadata.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the second line cut short, as a crash while appending leaves it
    assert write_evalset(tmp_path, 2, **SMALL) == records
    assert _lines(tmp_path) == records


def test_other_options_in_the_same_folder_are_refused_before_work(tmp_path, monkeypatch):
    write_evalset(tmp_path, 2, **SMALL)
    _no_rendering(monkeypatch)
    with pytest.raises(ValueError, match="other options"):
        write_evalset(tmp_path, 2, seed=5, **SMALL)
    with pytest.raises(ValueError, match="other options"):
        write_evalset(tmp_path, 2, split="heldout", **SMALL)
    (tmp_path / "metadata.jsonl").write_text("not json\n" + (tmp_path / "metadata.jsonl").read_text())
    with pytest.raises(ValueError, match="line 1 is not valid JSON"):
        write_evalset(tmp_path, 2, **SMALL)


def test_bad_arguments_are_refused(tmp_path, monkeypatch):
    _no_rendering(monkeypatch)
    with pytest.raises(ValueError, match="split"):
        write_evalset(tmp_path, 2, split="test", **SMALL)
    with pytest.raises(ValueError, match="n must be"):
        write_evalset(tmp_path, 0, **SMALL)
    with pytest.raises(ValueError, match="fps"):
        write_evalset(tmp_path, 2, resolution=16, fps=25)
    with pytest.raises(ValueError, match="resolution"):
        write_evalset(tmp_path, 2, resolution=600, fps=8, duration=1.0, hires=True)
    assert not (tmp_path / "metadata.jsonl").exists()


def test_movie_gen_formats_by_default():
    formats = {(plan_clip(i)["spec"]["duration"], plan_clip(i)["spec"]["fps"]) for i in range(20)}
    assert formats == {(10.0, 24), (16.0, 16)}


# --- the `avgen world` command line ----------------------------------------------------------------
def main(argv):
    """`avgen world ARGV` (built here rather than through avgen.cli, which imports every subcommand)."""
    parser = argparse.ArgumentParser(prog="avgen world")
    cli.configure(parser)
    return cli.run(parser.parse_args(argv))


def test_cli_render_a_sampled_clip(tmp_path, capsys):
    out, truth = tmp_path / "clip.mp4", tmp_path / "truth.json"
    assert main(["render", "-o", str(out), "--seed", "3", "--fps", "8", "--duration", "1", "--resolution", "16",
                 "--heldout", "--truth", str(truth)]) == 0
    spec = ClipSpec.from_dict(json.loads(truth.read_text())["spec"])
    assert spec.has_held_out_pair() and (spec.fps, spec.resolution) == (8, 16)
    video = read_video(out)
    assert video.frames.shape == (8, 16, 16, 3) and video.metadata["spec"] == spec.to_json()
    assert parse_caption(video.metadata["prompt"])["color"] == spec.subject.color
    assert str(out) in capsys.readouterr().out


def test_cli_render_a_given_spec(tmp_path, capsys):
    spec = ClipSpec.from_dict(plan_clip(0, **SMALL)["spec"])
    (tmp_path / "spec.json").write_text(spec.to_json())
    assert main(["render", "-o", str(tmp_path / "a.mp4"), "--spec", str(tmp_path / "spec.json"), "--resolution", "32"]) == 0
    assert main(["render", "-o", str(tmp_path / "b.mp4"), "--spec", spec.to_json()]) == 0
    assert json.loads(read_video(tmp_path / "a.mp4").metadata["spec"]) == spec.replace(resolution=32).to_dict()
    a, b = read_video(tmp_path / "a.mp4"), read_video(tmp_path / "b.mp4")
    assert a.frames.shape == (8, 32, 32, 3) and b.frames.shape == (8, 16, 16, 3)
    # bad arguments: exit 2 naming the flag, nothing written (tests/commands/test_argument_errors.py has the rest)
    assert main(["render", "-o", str(tmp_path / "c.mp4"), "--spec", str(tmp_path / "missing.json")]) == 2
    assert "--spec must be a JSON ClipSpec" in capsys.readouterr().err
    assert main(["render", "-o", str(tmp_path / "c.mp4"), "--spec", spec.to_json(), "--heldout"]) == 2
    assert "--heldout samples a clip" in capsys.readouterr().err
    assert not (tmp_path / "c.mp4").exists()


def test_cli_write_evalset_reports_sub_kinds(tmp_path, capsys):
    assert main(["write-evalset", str(tmp_path), "--n", "4", "--split", "heldout", "--fps", "8", "--duration", "1",
                 "--resolution", "16"]) == 0
    out = capsys.readouterr().out
    assert "2 held-out pair," in out and "1 held-out caption" in out and "1 held-out pair + held-out caption" in out
    assert len(_lines(tmp_path)) == 4


def test_cli_world_help_and_judge_hook(capsys, monkeypatch):
    assert main([]) == 0
    assert "judge-accuracy" in capsys.readouterr().out
    # the judge-accuracy command not built: the hook says so instead of breaking `avgen world`.
    monkeypatch.setattr(cli, "_try_import", lambda name: None)
    assert main(["judge-accuracy"]) == 2
    assert "not available" in capsys.readouterr().err


def test_cli_judge_hook_wires_the_module(monkeypatch):
    class JudgeAccuracy:  # stands in for avgen/commands/judge_accuracy.py: configure(parser) and run(args)
        @staticmethod
        def configure(parser):
            parser.add_argument("--n", type=int)

        @staticmethod
        def run(args):
            return 7 if args.n == 3 else 1

    monkeypatch.setattr(cli, "_try_import", lambda name: JudgeAccuracy if name == cli.JUDGE_ACCURACY_MODULE else None)
    assert main(["judge-accuracy", "--n", "3"]) == 7
