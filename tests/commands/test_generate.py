"""`avgen generate`: writes the clip with sound and provenance, prints one summary line, and refuses bad
arguments with exit code 2 before loading any model."""

import pytest

from avgen.cli import main
from avgen.muxer import read_video
from avgen.pipelines import AVGenPipeline, text_to_audio_video
from avgen.precision import inference_precision
from avgen.provenance import CREATED, IPTC, actions_of, read_credentials
from tests.pipelines.tiny import avgen_pipeline

FAST = ["--steps", "2", "--duration", "0.5"]  # 12 frames at 24 fps, of 32x32 from the tiny video model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generate") / "model"
    avgen_pipeline().save_pretrained(folder)
    return folder


def test_generate_writes_the_clip_and_prints_a_summary(model, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    argv = ["generate", "a red ball bounces", "-o", str(out), "--model", str(model), *FAST, "--seed", "3", "--audio-prompt", "rain"]
    assert main(argv) == 0
    summary = capsys.readouterr().out.strip()
    assert summary.startswith(str(out)) and "\n" not in summary
    assert "0.50 s" in summary and "64x64" in summary and "24 fps" in summary and "taken" in summary
    decoded = read_video(out)
    assert decoded.frames.shape == (12, 64, 64, 3) and decoded.audio.shape == (1, 8000)  # upsampled; 0.5 s of sound
    meta = decoded.metadata
    assert (meta["prompt"], meta["audio_prompt"], meta["seed"], meta["model"]) == ("a red ball bounces", "rain", "3", str(model))
    assert meta["precision"] == inference_precision("cpu")  # the upsampler's bf16/fp32 choice
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary file left behind
    credentials = read_credentials(out)  # signed content credentials of a creation; no prompt in them
    [created] = actions_of(credentials["manifest"])
    assert credentials["state"] == "Valid" and created["action"] == "c2pa.created" and created["digitalSourceType"] == IPTC + CREATED
    assert "red ball" not in str(credentials["manifest"])


def test_profile_prints_the_seconds_of_every_stage(model, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["generate", "a red ball bounces", "-o", str(out), "--model", str(model), *FAST, "--profile"]) == 0
    summary, header, *rows = capsys.readouterr().out.strip().split("\n")
    assert summary.startswith(str(out)) and "taken" in summary and header.split() == ["stage", "seconds"]
    seconds = {name.strip(): float(value) for name, value in (row.rsplit(maxsplit=1) for row in rows)}
    stages = ["loading", "text encoders", "video transformer", "video decode", "upsampler", "video features",
              "audio transformer", "audio decode", "mux", "other", "total"]  # fmt: skip
    assert list(seconds) == stages
    # every stage ran and was timed; a tiny model's stage can take under the 5 ms that rounds to 0.00 on a fast CPU
    assert all(seconds[stage] >= 0 for stage in stages) and seconds["total"] > 0
    assert sum(seconds[stage] for stage in stages[:-1]) == pytest.approx(seconds["total"], abs=0.01 * len(stages))


def test_no_audio_and_no_upsample(model, tmp_path, capsys):
    out = tmp_path / "silent.mp4"
    argv = ["generate", "thunder", "-o", str(out), "--model", str(model), *FAST, "--no-audio", "--no-upsample", "--fps", "16"]
    assert main([*argv, "--no-credentials"]) == 0
    assert "32x32" in capsys.readouterr().out and read_credentials(out) is None  # --no-credentials: no manifest
    decoded = read_video(out)
    assert decoded.frames.shape == (8, 32, 32, 3) and decoded.audio is None and decoded.fps == 16
    assert "precision" not in decoded.metadata  # no upsampler ran: no stage chose between bf16 and fp32


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--fps", "20"], "fps must be one of"),
        (["--duration", "-1"], "--duration must be a positive"),
        (["--duration", "nan"], "--duration must be a positive"),
        (["--steps", "1"], "--steps must be at least 2"),
        (["--audio-steps", "0"], "--audio-steps must be at least 2"),
        (["--height", "0"], "--height must be a positive"),
        (["-o", "out.avi"], "unknown extension '.avi'"),
        (["-o", "missing/out.mp4"], "does not exist"),
        (["--model", "nowhere/at/all"], "no pipeline at 'nowhere/at/all'"),
    ],
)
def test_bad_arguments_exit_2_before_loading_the_model(tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(AVGenPipeline, "from_pretrained", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(["generate", "a red ball", "-o", "out.mp4", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("avgen generate: ") and message in error
    assert not (tmp_path / "out.mp4").exists()


def test_missing_default_weights_say_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(text_to_audio_video, "DEFAULT_WEIGHTS", tmp_path / "weights" / "tiny")
    assert main(["generate", "a red ball", "-o", str(tmp_path / "out.mp4")]) == 2
    error = capsys.readouterr().err
    assert "not trained yet" in error and "make weights" in error


def test_what_only_the_model_knows_exits_2(model, tmp_path, capsys):
    # 10 s is more than the tiny video model's positions cover: its check_inputs says so, nothing is written
    assert main(["generate", "a red ball", "-o", str(tmp_path / "out.mp4"), "--model", str(model), "--steps", "2"]) == 2
    assert "too long" in capsys.readouterr().err and not (tmp_path / "out.mp4").exists()
