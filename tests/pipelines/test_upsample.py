"""UpsamplePipeline on a tiny random upsampler: 2x sizes, the model's own result in windows, every video input
form, a file's sound kept, output types, errors before compute, save/load, the same bytes under load."""

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F

from avgen import precision
from avgen.muxer import read_video, write_video
from avgen.outputs import AVGenOutput
from avgen.pipelines import UpsamplePipeline
from tests.pipelines.test_video_to_audio import dummy_frames  # uint8 (F, 32, 32, 3): a square moving over noise
from tests.pipelines.tiny import upsample_pipeline

BF16 = 0.01  # the pipeline runs in bf16 autocast: within about one uint8 level of float32 (upsample.py)


@pytest.fixture(scope="module")
def pipe():
    return upsample_pipeline()


def reference(pipe, frames: np.ndarray) -> np.ndarray:
    """The model on the whole clip at once in float32: uint8 (B, F, H, W, 3) -> (B, F, 2H, 2W, 3) in [0, 1]."""
    video = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 255 * 2 - 1  # (B, 3, F, H, W)
    with torch.no_grad():
        upsampled = pipe.upsampler(video).clamp(-1, 1)
    return ((upsampled + 1) / 2).permute(0, 2, 3, 4, 1).numpy()


def test_doubles_the_size_and_is_the_model_in_windows(pipe, monkeypatch):
    frames = dummy_frames(num_frames=11, batch=2)
    windows = []
    forward = pipe.upsampler.forward
    monkeypatch.setattr(pipe.upsampler, "forward", lambda x: windows.append(x.shape[2]) or forward(x))
    output = pipe(frames, fps=24, window=4)
    assert isinstance(output, AVGenOutput) and output.frames.shape == (2, 11, 64, 64, 3) and output.fps == 24
    assert output.audio is None and output.metadata[1]["pipeline"] == "UpsamplePipeline"
    # windows [0, 4), [4, 8), [8, 11), each with 3 frames of context (the margin) where the clip has them
    assert windows == [7, 10, 6]
    expected = reference(pipe, frames)
    np.testing.assert_allclose(output.frames, expected, atol=BF16)
    # the learned residual is used: the result is not plain bicubic
    bicubic = F.interpolate(torch.from_numpy(frames[0]).permute(0, 3, 1, 2).float() / 255, scale_factor=2, mode="bicubic")
    assert np.abs(output.frames[0] - bicubic.clamp(0, 1).permute(0, 2, 3, 1).numpy()).max() > 0.05


def test_window_does_not_change_the_result(pipe):
    frames = dummy_frames(num_frames=9)
    whole = pipe(frames, fps=24, window=None).frames
    for window in (1, 5, 100):
        np.testing.assert_allclose(pipe(frames, fps=24, window=window).frames, whole, atol=BF16)


def test_output_types_and_tuple(pipe):
    frames = dummy_frames(num_frames=4)
    array = pipe(frames, fps=12).frames
    pt = pipe(frames, fps=12, output_type="pt").frames
    assert torch.is_tensor(pt) and pt.shape == (1, 4, 3, 64, 64)
    np.testing.assert_allclose(pt.permute(0, 1, 3, 4, 2).numpy(), array, atol=1e-6)
    pil = pipe(frames, fps=12, output_type="pil").frames
    assert len(pil) == 1 and len(pil[0]) == 4 and pil[0][0].size == (64, 64)
    (frames_only,) = pipe(frames, fps=12, return_dict=False)
    np.testing.assert_array_equal(frames_only, array)


def test_path_keeps_the_sound_and_the_inputs_agree(pipe, tmp_path):
    sound = (0.3 * np.sin(np.arange(4000) / 7.0)).astype(np.float32)  # 6 frames at 24 fps = 0.25 s at 16 kHz
    path = write_video(tmp_path / "in.mp4", dummy_frames(num_frames=6), 24, sound, 16000, {"prompt": "rain"})
    decoded = read_video(path)
    from_path = pipe(str(path))
    assert from_path.fps == 24 and from_path.sample_rate == 16000
    np.testing.assert_array_equal(from_path.audio, decoded.audio[None])  # (1, C, S), passed through
    from_array = pipe(decoded.frames, fps=24).frames
    np.testing.assert_array_equal(from_path.frames, from_array)
    tensor = torch.from_numpy(decoded.frames).permute(0, 3, 1, 2)[None].float() / 255  # (1, F, 3, H, W)
    np.testing.assert_allclose(pipe(tensor, fps=24).frames, from_array, atol=1e-6)
    images = [PIL.Image.fromarray(frame) for frame in decoded.frames]
    np.testing.assert_array_equal(pipe(images, fps=24).frames, from_array)

    saved = read_video(from_path.save(tmp_path / "out.mp4"))  # .save() writes the sound back
    assert saved.frames.shape == (6, 64, 64, 3) and saved.audio.shape == (1, 4000)
    assert np.abs(saved.audio - decoded.audio).max() < 0.05  # AAC twice


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(video="missing.mp4", fps=None), "no such file"),
        (dict(video=np.zeros((4, 8, 8, 3), np.float32)), "must be uint8"),
        (dict(fps=None), "fps is required"),
        (dict(fps=20), "fps must be one of"),
        (dict(window=0), "window must be a positive"),
        (dict(output_type="latent"), "output_type"),
    ],
)
def test_bad_inputs_raise_before_any_compute(pipe, monkeypatch, overrides, message):
    def refuse(*args, **kwargs):
        raise AssertionError("computed before the inputs were checked")

    monkeypatch.setattr(pipe.upsampler, "forward", refuse)
    with pytest.raises(ValueError, match=message):
        pipe(**dict(video=dummy_frames(num_frames=4), fps=24) | overrides)


def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    assert sorted(path.name for path in (tmp_path / "upsampler").iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    loaded = UpsamplePipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    frames = dummy_frames(num_frames=4)
    np.testing.assert_allclose(loaded(frames, fps=24).frames, pipe(frames, fps=24).frames, atol=1e-6)


def test_the_same_call_writes_the_same_bytes_under_load_and_tags_its_precision(pipe, tmp_path, busy_cpu, monkeypatch):
    # issue 45: bf16 was chosen by a timing that load flipped, so one command wrote two different files
    monkeypatch.delenv(precision.PRECISION_ENV, raising=False)
    frames = dummy_frames(num_frames=4)
    # no content credentials: a manifest has its own ids and signature each time; the media bytes are compared
    idle = pipe(frames, fps=24).save(tmp_path / "idle.mp4", credentials=None)
    with busy_cpu():
        busy = pipe(frames, fps=24).save(tmp_path / "busy.mp4", credentials=None)
    assert busy.read_bytes() == idle.read_bytes()
    assert read_video(idle).metadata["precision"] == precision.inference_precision("cpu")  # this machine's choice
    for setting in ("fp32", "bf16"):  # AVGEN_PRECISION overrides it, and the tag says so
        monkeypatch.setenv(precision.PRECISION_ENV, setting)
        assert pipe(frames, fps=24).metadata[0]["precision"] == setting
