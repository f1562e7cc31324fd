"""`avgen batch`: bad jobs are recorded and the others run, plain-text input, resume after a rerun and after a
SIGKILL (no partial or corrupt MP4), byte-identical files for identical seeds (all but the C2PA manifest, whose ids and
signature are new for each file), and the Ray engine's files equal the local engine's. Tiny random pipelines, 2 steps,
1 s clips at 8 fps."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from avgen.cli import main
from avgen.commands.batch import default_seed
from avgen.muxer import read_video, write_video
from avgen.provenance import actions_of, read_credentials
from tests.pipelines.test_video_edit import get_pipeline as edit_pipeline
from tests.pipelines.tiny import avgen_pipeline

CLIP = {"duration": 1.0, "fps": 8}  # 8 frames of 32x32, upsampled to 64x64, 1 s of sound


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny AVGenPipeline and VideoEditPipeline saved as folders, and a source clip for edit jobs."""
    folder = tmp_path_factory.mktemp("batch")
    avgen_pipeline().save_pretrained(folder / "model")
    edit_pipeline().save_pretrained(folder / "edit")
    frames = np.random.default_rng(0).integers(0, 255, (8, 40, 48, 3), dtype=np.uint8)
    write_video(folder / "source.mp4", frames, 8, 0.5 * np.sin(np.arange(16000) / 5.0, dtype=np.float32), 16000)
    return folder


def write_jobs(path, jobs: list) -> str:
    path.write_text("\n".join(job if isinstance(job, str) else json.dumps(job) for job in jobs) + "\n")
    return str(path)


def batch(jobs_file, out, models, *extra) -> int:
    return main(["batch", str(jobs_file), "-o", str(out), "--model", str(models / "model"), "--edit-model", str(models / "edit"), "--steps", "2", *extra])


def manifest(out) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


C2PA_BOX = b"uuid" + bytes.fromhex("d8fec3d61b0e483c92975828877ec481")  # the box type and the C2PA manifest's uuid


def without_manifest(data: bytes) -> bytes:
    """An MP4's bytes with its C2PA manifest's payload zeroed: what the manifest signs, and its place and size."""
    start = data.find(C2PA_BOX) - 4  # the box starts with its 4-byte size
    if start < 0:
        return data
    end = start + int.from_bytes(data[start : start + 4], "big")
    return data[: start + 24] + bytes(end - start - 24) + data[end:]


def mp4s(out) -> dict:
    """name -> bytes of every MP4 in `out` (the manifest's zeroed), hidden files included (a .partial would show here)."""
    return {p.name: without_manifest(p.read_bytes()) for p in sorted(out.iterdir()) if ".mp4" in p.name}


# Good jobs of three kinds: an id and a seed, neither (line-number id, seed from the id), an edit.
GOOD = [
    {"id": "ball", "prompt": "a red ball bounces, rain", "seed": 3, **CLIP, "audio_prompt": "rain"},
    {"prompt": "a blue car drives left", **CLIP, "no_audio": True, "negative_prompt": "blur", "guidance_scale": 3},
    {"id": "edit", "prompt": "make the ball blue", "edit_source": "source.mp4", "steps": 3},
]


@pytest.fixture(scope="module")
def local_run(models, tmp_path_factory):
    """The good jobs run once by the local engine, without Ray importable: (jobs file, output folder)."""
    folder = tmp_path_factory.mktemp("local")
    jobs_file = write_jobs(models / "good.jsonl", GOOD)  # beside source.mp4: edit_source is relative to it
    saved, sys.modules["ray"] = sys.modules.get("ray"), None  # `import ray` fails: the local engine must not need it
    try:
        assert batch(jobs_file, folder / "out", models, "--threads", "1") == 0  # as Ray's actors: equal sums
    finally:
        sys.modules.pop("ray") if saved is None else sys.modules.__setitem__("ray", saved)
    return jobs_file, folder / "out"


def test_good_jobs_make_their_clips_manifest_and_summary(local_run, models, capsys):
    _, out = local_run
    assert sorted(mp4s(out)) == ["00002.mp4", "ball.mp4", "edit.mp4"]
    rows = {entry["id"]: entry for entry in manifest(out)}
    assert all(entry["status"] == "ok" and entry["error"] is None and entry["seconds"] > 0 for entry in rows.values())
    assert (rows["ball"]["seed"], rows["00002"]["seed"], rows["00002"]["output"]) == (3, default_seed("00002"), "00002.mp4")
    ball, car, edited = (read_video(out / name) for name in ("ball.mp4", "00002.mp4", "edit.mp4"))
    created, edit_credentials = (read_credentials(out / name) for name in ("ball.mp4", "edit.mp4"))  # signed: made, and edited
    assert [action["action"] for action in actions_of(created["manifest"])] == ["c2pa.created"]
    assert [action["action"] for action in actions_of(edit_credentials["manifest"])] == ["c2pa.opened", "c2pa.edited"]
    assert edit_credentials["manifest"]["ingredients"][0]["title"] == "source.mp4"  # the job's edit_source
    assert ball.frames.shape == (8, 64, 64, 3) and ball.audio.shape == (1, 16000) and ball.fps == 8
    assert (ball.metadata["prompt"], ball.metadata["seed"], ball.metadata["job_id"]) == ("a red ball bounces, rain", "3", "ball")
    assert ball.metadata["model"] == str(models / "model") and ball.metadata["audio_prompt"] == "rain"
    assert car.audio is None and car.metadata["seed"] == str(default_seed("00002"))
    assert edited.frames.shape == (8, 32, 32, 3) and edited.metadata["instruction"] == "make the ball blue"
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["ok"], summary["error"], summary["skipped"], summary["engine"]) == (3, 0, 0, "local")
    assert summary["clips_per_minute"] > 0 and summary["seconds"] > 0


def test_bad_jobs_are_recorded_and_the_others_run(models, tmp_path, capsys):
    jobs_file = write_jobs(
        tmp_path / "mixed.jsonl",
        [
            {"id": "ok", "prompt": "a red ball", **CLIP},
            '{"prompt": "broken',
            {"prompt": "a ball", "colour": "red"},
            {"prompt": "a ball", "seed": "7"},
            {"prompt": "a ball", "no_audio": 1},
            {"prompt": "a ball", "duration": 1.0, "fps": 20},
            {"prompt": "make it blue", "edit_source": "missing.mp4"},
            {"prompt": "make it blue", "edit_source": str(models / "source.mp4"), "fps": 8},
            {"id": "ok", "prompt": "the same id"},
            {"id": "../escape", "prompt": "a ball"},
            "",
            {"id": "long", "prompt": "a ball", "duration": 30.0, "fps": 8},  # only the model knows it is too long
            {"prompt": "   "},
            [1, 2],
        ],
    )
    assert batch(jobs_file, tmp_path / "out", models) == 1  # some jobs failed
    rows = manifest(tmp_path / "out")
    errors = [entry["error"] for entry in rows if entry["status"] == "error"]
    expected = [
        "line 2: not valid JSON",
        "line 3: unknown key(s) ['colour']",
        'line 4: seed must be an integer; got "7"',
        "line 5: no_audio must be true or false; got 1",
        "line 6: fps must be one of",
        "line 7: cannot read",
        "line 8: unknown key(s) ['fps'] for an edit job",
        "line 9: duplicate id 'ok' (first used on line 1)",
        "line 10: id '../escape' must be",
        "line 13: prompt is only whitespace",
        "line 14: expected a JSON object",
    ]
    assert len(errors) == len(expected) + 1 and all(e.startswith(x) for e, x in zip(errors, expected)), errors
    assert "too long" in errors[-1]  # the model's own check, at run time: recorded like the others
    assert [entry["id"] for entry in rows if entry["status"] == "ok"] == ["ok"]
    assert sorted(mp4s(tmp_path / "out")) == ["ok.mp4"] and read_video(tmp_path / "out" / "ok.mp4").frames.shape[0] == 8
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["ok"], summary["error"], summary["jobs"]) == (1, 12, 13)
    assert "1 ok, 12 error, 0 skipped" in capsys.readouterr().out


def test_plain_text_one_prompt_a_line(models, tmp_path):
    jobs_file = tmp_path / "prompts.txt"
    jobs_file.write_text('a red ball bounces\n\n  {"prompt": "not JSON here"}  \n')
    assert batch(jobs_file, tmp_path / "out", models, "--fps", "8", "--duration", "1") == 0  # the flags: every job's default
    rows = manifest(tmp_path / "out")
    assert [(entry["id"], entry["status"], entry["seed"]) for entry in rows] == [
        ("00001", "ok", default_seed("00001")),
        ("00003", "ok", default_seed("00003")),
    ]
    clips = [read_video(tmp_path / "out" / name) for name in ("00001.mp4", "00003.mp4")]
    assert [clip.metadata["prompt"] for clip in clips] == ["a red ball bounces", '{"prompt": "not JSON here"}']  # stripped
    assert all(clip.frames.shape[0] == 8 and clip.fps == 8 for clip in clips)


def test_rerun_skips_done_jobs_and_identical_seeds_give_identical_bytes(local_run, models, tmp_path, capsys):
    jobs_file, out = local_run
    before = {name: (out / name).stat().st_mtime_ns for name in mp4s(out)}
    assert batch(jobs_file, out, models) == 0
    assert {name: (out / name).stat().st_mtime_ns for name in mp4s(out)} == before  # nothing was written again
    assert [entry["status"] for entry in manifest(out)] == ["ok"] * 3 + ["skipped"] * 3
    assert json.loads((out / "summary.json").read_text())["skipped"] == 3

    # the same jobs into another folder: the same bytes (no timestamps in the MP4s), all but the manifests' own
    assert all(without_manifest(data) != data for data in (p.read_bytes() for p in out.glob("*.mp4")))  # each has one
    assert batch(jobs_file, tmp_path / "again", models, "--threads", "1") == 0
    assert mp4s(tmp_path / "again") == mp4s(out)


def test_sigkill_mid_run_then_rerun_completes_only_the_missing_jobs(models, tmp_path):
    jobs_file = write_jobs(tmp_path / "jobs.jsonl", [{"prompt": f"a ball, take {i}", **CLIP} for i in range(6)])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "avgen.cli", "batch", jobs_file, "-o", str(out), "--model", str(models / "model"), "--steps", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (out / "00001.mp4").exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert (out / "00001.mp4").exists(), "the batch made no clip before the deadline"
    made = {entry["id"] for entry in manifest(out) if entry["status"] == "ok"}
    assert process.returncode == -signal.SIGKILL and len(made) < 6  # killed mid-run, not after the last job
    for path in out.glob("0*.mp4"):
        assert read_video(path).frames.shape == (8, 64, 64, 3)  # whole, never half-written
    (out / ".00006.mp4.0badc0de.partial").write_bytes(b"half a clip")  # as a kill during the write leaves it
    with open(out / "manifest.jsonl", "ab") as file:  # and a line cut by a crash (a power cut mid-append)
        file.write(b'{"id": "00006", "status": "o')
    mtimes = {path.name: path.stat().st_mtime_ns for path in out.glob("0*.mp4")}

    assert batch(jobs_file, out, models) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["skipped"], summary["ok"]) == (len(made), 6 - len(made))
    assert sorted(mp4s(out)) == [f"{i:05d}.mp4" for i in range(1, 7)]  # the .partial is gone
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert lines.count('{"id": "00006", "status": "o') == 1  # the cut line ended, the next one not glued to it
    rerun = [json.loads(line) for line in lines[lines.index('{"id": "00006", "status": "o') + 1 :]]
    assert sorted(entry["id"] for entry in rerun) == [f"{i:05d}" for i in range(1, 7)]  # each job once, whole lines
    for name in mp4s(out):
        assert read_video(out / name).frames.shape == (8, 64, 64, 3)
        if name[:5] in made:
            assert (out / name).stat().st_mtime_ns == mtimes[name]  # done before the kill: not made again


def test_fatal_errors_exit_2(models, tmp_path, capsys):
    jobs_file = write_jobs(tmp_path / "jobs.jsonl", [{"prompt": "a ball", **CLIP}])
    blocker = tmp_path / "file"
    blocker.write_text("")
    cases = [
        (["batch", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "out")], "cannot read"),
        (["batch", jobs_file, "-o", str(blocker / "out"), "--model", str(models / "model")], "cannot write"),
        (["batch", jobs_file, "-o", str(tmp_path / "out"), "--model", str(tmp_path / "nowhere")], "no pipeline at"),
        (["batch", jobs_file, "-o", str(tmp_path / "out"), "--steps", "1"], "--steps must be at least 2"),
        (["batch", jobs_file, "-o", str(tmp_path / "out"), "--engine", "ray", "--num-workers", "0"], "--num-workers must be at least 1"),
        (["batch", jobs_file, "-o", str(tmp_path / "out"), "--threads", "0"], "--threads must be at least 1"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing made before the checks pass


def test_ray_engine_without_ray_says_how_to_install_it(models, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    jobs_file = write_jobs(tmp_path / "jobs.jsonl", [{"prompt": "a ball", **CLIP}])
    assert batch(jobs_file, tmp_path / "out", models, "--engine", "ray") == 2
    assert "pip install 'avgen[cluster]'" in capsys.readouterr().err


def test_ray_engine_with_two_workers_makes_the_local_engines_files(local_run, models, tmp_path):
    pytest.importorskip("ray.data", reason="ray[data] is not installed (pip install -e '.[cluster]')")
    jobs_file, local_out = local_run
    assert batch(jobs_file, tmp_path / "out", models, "--engine", "ray", "--num-workers", "2", "--threads", "1") == 0
    assert mp4s(tmp_path / "out") == mp4s(local_out)
    assert sorted(entry["id"] for entry in manifest(tmp_path / "out")) == ["00002", "ball", "edit"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["engine"] == "ray"
