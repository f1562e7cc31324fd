"""`avgen edit`: writes the edited MP4 with a one-line summary; bad arguments exit 2 before the model loads."""

import numpy as np
import pytest

from avgen.cli import main
from avgen.commands import edit
from avgen.muxer import read_video, write_video
from avgen.pipelines.video_edit import VideoEditPipeline
from avgen.provenance import COMPOSITE, IPTC, actions_of, read_credentials
from tests.pipelines.test_video_edit import get_pipeline  # the tiny pipeline of the pipeline tests


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny edit pipeline saved without and with the audio components."""
    folder = tmp_path_factory.mktemp("edit")
    get_pipeline().save_pretrained(folder / "video")
    get_pipeline(with_audio=True).save_pretrained(folder / "audio")
    return folder


@pytest.fixture
def clip(tmp_path):
    """9 frames at 24 fps, 48 x 40, with a sine track of 6000 samples at 16 kHz."""
    frames = np.random.default_rng(0).integers(0, 255, (9, 40, 48, 3), dtype=np.uint8)
    return write_video(tmp_path / "in.mp4", frames, 24, 0.5 * np.sin(np.arange(6000) / 5.0, dtype=np.float32), 16000)


def edit_args(clip, out, model, *extra):
    return ["edit", str(clip), "change the background to a busy intersection", "-o", str(out), "--model", str(model), "--steps", "2", *extra]


def test_edit_writes_the_video_with_the_input_sound_and_a_summary(models, clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(edit_args(clip, out, models / "audio", "--seed", "3", "--guidance", "2", "--video-guidance", "1.2",
                          "--strength", "0.9")) == 0
    summary = capsys.readouterr().out.strip()
    assert summary.startswith(str(out)) and "\n" not in summary
    assert "0.38 s" in summary and "32x32" in summary and "sound kept" in summary and "taken" in summary
    decoded = read_video(out)
    assert decoded.frames.shape == (9, 32, 32, 3) and decoded.fps == 24
    assert decoded.sample_rate == 16000 and decoded.audio.shape == (1, 6000)  # a background edit keeps the sound
    assert np.abs(decoded.audio - read_video(clip).audio).mean() < 0.02  # the same track, through AAC once more
    meta = decoded.metadata
    assert meta["instruction"] == "change the background to a busy intersection" and meta["seed"] == "3"
    assert (meta["guidance_scale"], meta["video_guidance_scale"], meta["regenerate_audio"]) == ("2.0", "1.2", "False")
    assert meta["model"] == str(models / "audio") and meta["strength"] == "0.9"
    credentials = read_credentials(out)  # signed as an edit of the input, its parent ingredient
    opened, edited = actions_of(credentials["manifest"])
    assert credentials["state"] == "Valid" and edited["action"] == "c2pa.edited" and edited["digitalSourceType"] == IPTC + COMPOSITE
    assert credentials["manifest"]["ingredients"][0]["title"] == "in.mp4" and "busy intersection" not in str(credentials["manifest"])


def test_regenerate_audio_flag(models, clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(edit_args(clip, out, models / "audio", "--regenerate-audio")) == 0
    assert "new sound" in capsys.readouterr().out
    decoded = read_video(out)
    assert decoded.metadata["regenerate_audio"] == "True" and decoded.audio.shape == (1, 6000)
    assert np.abs(decoded.audio - read_video(clip).audio).mean() > 0.1  # the old track is gone


def test_bad_arguments_exit_2_before_loading_the_model(models, clip, tmp_path, capsys, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the model must not be loaded for bad arguments")

    monkeypatch.setattr(VideoEditPipeline, "from_pretrained", no_loading)
    out = tmp_path / "out.mp4"
    cases = [
        (edit_args(clip, out, models / "video", "--regenerate-audio"), "needs a model with audio components"),
        (edit_args(clip, out, models / "video", "--steps", "1"), "--steps must be at least 2"),
        (edit_args(clip, out, models / "video", "--guidance", "0.5"), "--guidance must be a finite number >= 1"),
        (edit_args(clip, out, models / "video", "--video-guidance", "nan"), "--video-guidance must be a finite number >= 1"),
        (edit_args(clip, out, models / "video", "--strength", "0"), "--strength must be in (0, 1]"),
        (edit_args(clip, out, models / "video", "--strength", "nan"), "--strength must be in (0, 1]"),
        (edit_args(tmp_path / "missing.mp4", out, models / "video"), "no such file"),
        (edit_args(clip, tmp_path / "out.avi", models / "video"), "unknown extension"),
        (edit_args(clip, clip, models / "video"), "must not overwrite the input"),
        (edit_args(clip, out, tmp_path / "nowhere"), "no pipeline at"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    monkeypatch.setattr(edit, "DEFAULT_MODEL", tmp_path / "weights" / "tiny-edit")  # the default, missing
    assert main(["edit", str(clip), "add rain", "-o", str(out)]) == 2
    assert "weights/tiny-edit are missing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: the two sound flags exclude each other
        main(edit_args(clip, out, models / "video", "--regenerate-audio", "--keep-audio"))
    assert exit_info.value.code == 2
    assert not out.exists()


def test_a_video_too_long_for_the_model_exits_2(models, tmp_path, capsys):
    """The pipeline's own check (33 frames > the 32 its positions cover) is reported as an argument error."""
    long_clip = write_video(tmp_path / "long.mp4", np.zeros((33, 32, 32, 3), np.uint8), 24)
    assert main(edit_args(long_clip, tmp_path / "out.mp4", models / "video")) == 2
    assert "at most 32 frames" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()
