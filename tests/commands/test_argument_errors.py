"""Issue 45, item 3, for the commands: text that is not valid Unicode (bytes that are not UTF-8 reach argv as lone
surrogates), a blank prompt or instruction, a guidance that is NaN, infinite or not a number, an infinite duration,
a seed outside [0, 2**64), a target that cannot be written, and bad `avgen world render` arguments all exit 2 in the
argument check: the flag's own name on stderr, no traceback, no file left, no model loaded (the loaders and the
renderer fail if called)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import avgen.world
from avgen.cli import main
from avgen.commands.batch import check_job
from avgen.muxer import write_video
from avgen.pipelines import AVGenPipeline, VideoEditPipeline
from tests.pipelines.test_video_to_audio import dummy_frames

NOT_UTF8 = "a red \udcff ball"  # the byte 0xff as Python's argv holds it (surrogateescape)
SURROGATE = "a red \ud800 ball"
TOO_BIG = str(2**64)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame 24 fps input for foley and edit, outside the folder the tests look at."""
    return str(write_video(tmp_path_factory.mktemp("input") / "in.mp4", dummy_frames(), 24))


def generate(*extra, prompt="a red ball"):
    return ["generate", prompt, "-o", "out.mp4", "--steps", "2", "--duration", "0.5", *extra]


def foley(clip, *extra):
    return ["foley", clip, "-o", "out.mp4", "--steps", "2", *extra]


def edit(clip, *extra, instruction="make the ball blue"):
    return ["edit", clip, instruction, "-o", "out.mp4", "--steps", "2", *extra]


def batch(*extra):
    return ["batch", "jobs.jsonl", "-o", "out", "--steps", "2", *extra]


def render(*extra):
    return ["world", "render", "--fps", "8", "--duration", "1", "--resolution", "16", *extra]


# (argv, the flag the error names); `clip` stands for the input video
CASES = [
    (generate(prompt=NOT_UTF8), "prompt must be valid Unicode text"),
    (generate(prompt=SURROGATE), "prompt must be valid Unicode text"),
    (generate("--negative-prompt", NOT_UTF8), "--negative-prompt must be valid Unicode text"),
    (generate("--audio-prompt", SURROGATE), "--audio-prompt must be valid Unicode text"),
    (generate(prompt=""), "prompt is empty"),
    (generate(prompt="  \t "), "prompt is only whitespace"),
    (generate("--guidance", "nan"), "--guidance must be a finite number"),
    (generate("--guidance", "inf"), "--guidance must be a finite number"),
    (generate("--guidance=-inf"), "--guidance must be a finite number"),
    (generate("--guidance", "five"), "--guidance"),  # argparse's own check
    (generate("--audio-guidance", "nan"), "--audio-guidance must be a finite number"),
    (generate("--audio-video-guidance", "inf"), "--audio-video-guidance must be a finite number >= 1"),
    (generate("--duration", "inf"), "--duration must be a positive number"),
    (generate("--seed", TOO_BIG), "--seed must be an integer in [0, 2**64)"),
    (generate("--seed", "-1"), "--seed must be an integer in [0, 2**64)"),
    (generate("-o", "/proc/out.mp4"), "--output: cannot write '/proc/out.mp4'"),
    (foley("clip", "--prompt", NOT_UTF8), "--prompt must be valid Unicode text"),
    (foley("clip", "--guidance", "nan"), "--guidance must be a finite number"),
    (foley("clip", "--video-guidance", "inf"), "--video-guidance must be a finite number >= 1"),
    (foley("clip", "--seed", "-1"), "--seed must be an integer in [0, 2**64)"),
    (foley("clip", "-o", "/proc/out.mp4"), "--output: cannot write '/proc/out.mp4'"),
    (edit("clip", instruction=""), "instruction is empty"),
    (edit("clip", instruction="   "), "instruction is only whitespace"),
    (edit("clip", instruction=NOT_UTF8), "instruction must be valid Unicode text"),
    (edit("clip", "--guidance", "inf"), "--guidance must be a finite number >= 1"),
    (edit("clip", "--seed", TOO_BIG), "--seed must be an integer in [0, 2**64)"),
    (edit("clip", "-o", "/proc/out.mp4"), "--output: cannot write '/proc/out.mp4'"),
    (batch("--duration", "inf"), "--duration must be a positive number"),
    (batch("--guidance", "nan"), "--guidance must be a finite number"),
    (batch("-o", "/proc/out"), "--output: cannot write to '/proc/out'"),
    (render("-o", "out.mp4", "--seed", "-1"), "--seed must be an integer in [0, 2**64)"),
    (render("-o", "out.mp4", "--duration", "inf"), "--duration must be a positive number"),
    (render("-o", "out.mp4", "--duration", "30"), "--duration must be in (0, 16.0] s"),
    (render("-o", "out.mp4", "--resolution", "-3"), "--resolution must be an int in [16, 1024]"),
    (render("-o", "out.mp4", "--sample-rate", "5"), "--sample-rate must be an int in [8000, 48000]"),
    (render("-o", "out.mp4", "--spec", "{bad"), "--spec must be a JSON ClipSpec"),
    (render("-o", "out.mp4", "--spec", '{"fps": 24}'), "--spec: a ClipSpec needs the key 'subject'"),
    (render("-o", "out.mp4", "--spec", '{"subject": 3}'), "--spec is not a valid ClipSpec"),
    (render("-o", "out.mp4", "--spec", "missing.json"), "--spec must be a JSON ClipSpec"),
    (render("-o", "out.mp4", "--spec", "{}", "--heldout"), "--heldout samples a clip"),
    (render("-o", "out.avi"), "--output: cannot write 'out.avi': unknown extension"),
    (render("-o", "/proc/out.mp4"), "--output: cannot write '/proc/out.mp4'"),
    (render("-o", "out.mp4", "--truth", "/proc/truth.json"), "--truth: cannot write '/proc/truth.json'"),
]


@pytest.fixture
def nothing_loads(monkeypatch):
    def loaded(*args, **kwargs):
        pytest.fail("a model was loaded (or a clip rendered) before the arguments were checked")

    monkeypatch.setattr(AVGenPipeline, "from_pretrained", loaded)
    monkeypatch.setattr(VideoEditPipeline, "from_pretrained", loaded)
    monkeypatch.setattr(avgen.world, "render_clip", loaded)


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exit_info:  # argparse's own errors
        return exit_info.code


@pytest.mark.parametrize("argv, message", CASES, ids=[f"{argv[0]}-{message[:40]}" for argv, message in CASES])
def test_bad_argument_exits_2_naming_the_flag(argv, message, clip, tmp_path, monkeypatch, capsys, nothing_loads):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs.jsonl").write_text('{"prompt": "a red ball", "duration": 0.5}\n')
    argv = [clip if arg == "clip" else arg for arg in argv]
    assert exit_code(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error, error
    command = " ".join(argv[:2]) if argv[0] == "world" else argv[0]
    assert f"avgen {command}: " in error
    assert [path.name for path in tmp_path.iterdir()] == ["jobs.jsonl"]  # no clip, no folder, no probe file


@pytest.mark.parametrize("prompt", [b"a red \xff ball", b"a red \xed\xa0\x80 ball", b"\xc3"])
def test_bytes_that_are_not_utf8_stop_at_the_check_in_a_real_process(prompt, tmp_path):
    """Through the console entry point, with the raw bytes a shell passes: exit 2 and one line, no TypeError."""
    argv = [sys.executable, "-m", "avgen.cli", "generate", prompt, "-o", "out.mp4"]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, timeout=120)
    error = result.stderr.decode("utf-8", "backslashreplace")
    assert result.returncode == 2, error
    assert error.startswith("avgen generate: prompt must be valid Unicode text (UTF-8)") and "Traceback" not in error
    assert "which is not UTF-8" in error and not any(tmp_path.iterdir())


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_folder_is_refused_before_loading(tmp_path, monkeypatch, capsys, nothing_loads):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(generate("-o", str(folder / "out.mp4"))) == 2
    finally:
        folder.chmod(0o755)
    assert "--output: cannot write" in capsys.readouterr().err and not any(folder.iterdir())


DEFAULTS = dict(steps=2, guidance_scale=5.0, fps=24, duration=None, out_dir=Path("out"))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"prompt": "a ball", "seed": 2**64}, "seed must be an integer in [0, 2**64)"),
        ({"prompt": "a ball", "seed": -1}, "seed must be an integer in [0, 2**64)"),
        ({"prompt": "   "}, "prompt is only whitespace"),
        ({"prompt": SURROGATE}, "prompt must be valid Unicode text"),
        ({"prompt": "a ball", "audio_prompt": NOT_UTF8}, "audio_prompt must be valid Unicode text"),
        ({"prompt": "a ball", "guidance_scale": float("nan")}, "guidance_scale must be a finite number"),
        ({"prompt": "a ball", "duration": float("inf")}, "duration must be a positive number"),
    ],
)
def test_batch_jobs_follow_the_rules_of_generate(fields, message):
    """A bad job is recorded as that job's error (the batch's contract); the rule is `avgen generate`'s."""
    with pytest.raises(ValueError) as error:
        check_job(fields, 1, Path("."), DEFAULTS)
    assert str(error.value).startswith(message)


def test_the_largest_seed_is_accepted_by_batch_and_generate_alike():
    assert check_job({"prompt": "a ball", "seed": 2**64 - 1}, 1, Path("."), DEFAULTS)["seed"] == 2**64 - 1
