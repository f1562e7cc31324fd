"""The MP4 writer: exact lengths, sync through the AAC priming delay, atomic writes, precise errors."""

import os

import numpy as np
import pytest

from avgen import muxer
from avgen.clock import SUPPORTED_FPS, AVClock
from avgen.muxer import read_video, write_audio, write_image, write_video
from tests.conftest import ffmpeg_decode

SAMPLE_RATE = 16000
AAC_FRAME = 1024  # samples per AAC frame


def flash_click_clip(num_frames, fps, flash_frames, channels=1):
    """Black frames with white flashes at `flash_frames`, and a 10 ms click starting at each flash."""
    clock = AVClock(fps, SAMPLE_RATE)
    frames = np.zeros((num_frames, 48, 64, 3), np.uint8)
    frames[flash_frames] = 255
    audio = np.zeros((channels, clock.num_samples(num_frames)), np.float32)
    click = 0.8 * np.exp(-np.arange(160) / 40.0) * np.sign(np.sin(np.arange(160) * 0.9) + 1e-3)  # broadband burst
    for start in clock.sample_of_frame(np.asarray(flash_frames)):
        audio[:, start : start + 160] = click
    return frames, audio


def onsets(audio, threshold=0.3, min_gap=800):
    """Sample indices where |audio| first exceeds `threshold` after at least `min_gap` quiet samples."""
    loud = np.flatnonzero(np.abs(audio).max(axis=0) > threshold)
    if loud.size == 0:
        return loud
    keep = np.concatenate([[True], np.diff(loud) > min_gap])
    return loud[keep]


@pytest.mark.parametrize("seconds, fps", [(10, 24), (16, 16)])
def test_flash_click_round_trip_stays_in_sync(tmp_path, seconds, fps):
    num_frames = seconds * fps
    flash_frames = sorted({3, 17, num_frames // 3, num_frames // 2 + 1, num_frames - 5})
    frames, audio = flash_click_clip(num_frames, fps, flash_frames)
    path = write_video(tmp_path / "clip.mp4", frames, fps, audio, SAMPLE_RATE)

    for name, decode in (("pyav", lambda p: tuple(vars(read_video(p)).values())[:4]), ("ffmpeg", ffmpeg_decode)):
        got_frames, got_audio, got_fps, got_rate = decode(path)
        assert got_fps == fps, name
        assert got_rate == SAMPLE_RATE, name
        assert len(got_frames) == num_frames, name
        assert abs(got_audio.shape[1] / got_rate - num_frames / fps) <= AAC_FRAME / SAMPLE_RATE, name

        decoded_flashes = np.flatnonzero(got_frames.reshape(num_frames, -1).mean(axis=1) > 128)
        assert decoded_flashes.tolist() == flash_frames, name
        clicks = onsets(got_audio)
        assert len(clicks) == len(flash_frames), name
        offsets = clicks / SAMPLE_RATE - np.asarray(flash_frames) / fps  # seconds, + = audio late
        assert np.abs(offsets).max() <= 1 / fps, (name, offsets)
        # Stronger than the ±1 frame requirement: the 1024-sample (64 ms) AAC priming is compensated,
        # so what is left is the codec's transient smearing (a few ms at most).
        assert np.abs(offsets).max() < 0.005, (name, offsets)


@pytest.mark.parametrize("fps", SUPPORTED_FPS)
def test_every_supported_fps_round_trips_exactly(tmp_path, fps):
    frames, audio = flash_click_clip(fps + 1, fps, [fps // 2])
    decoded = read_video(write_video(tmp_path / "clip.mp4", frames, fps, audio, SAMPLE_RATE))
    assert decoded.fps == fps and len(decoded.frames) == fps + 1
    assert decoded.audio.shape[1] == AVClock(fps, SAMPLE_RATE).num_samples(fps + 1)


def test_audio_is_padded_or_trimmed_to_the_video(tmp_path):
    frames, audio = flash_click_clip(48, 24, [10])
    for length in (audio.shape[1] - 3000, audio.shape[1] + 3000):
        fitted = np.zeros((1, length), np.float32)
        fitted[:, : min(length, audio.shape[1])] = audio[:, :length]
        decoded = read_video(write_video(tmp_path / "clip.mp4", frames, 24, fitted, SAMPLE_RATE))
        assert decoded.audio.shape[1] == 32000


def test_odd_sizes_float_frames_stereo_and_metadata(tmp_path):
    frames = np.random.default_rng(0).random((12, 33, 47, 3)).astype(np.float32)
    frames[:, :, :, :] = 0.25
    audio = np.zeros((2, 8000), np.float32)
    audio[1, 100:200] = 0.5
    path = write_video(tmp_path / "odd.mp4", frames, 12, audio, SAMPLE_RATE, metadata={"prompt": "a red ball", "seed": 7})
    decoded = read_video(path)
    assert decoded.frames.shape == (12, 34, 48, 3)  # padded to even by replicating the edge
    assert np.abs(decoded.frames.astype(int) - 64).max() <= 2
    assert decoded.audio.shape == (2, 16000)
    assert np.abs(decoded.audio[0]).max() < 0.05 < np.abs(decoded.audio[1]).max()
    assert decoded.metadata["prompt"] == "a red ball" and decoded.metadata["seed"] == "7"


def test_video_without_audio(tmp_path):
    decoded = read_video(write_video(tmp_path / "silent.mp4", np.zeros((8, 16, 16, 3), np.uint8), 8))
    assert decoded.audio is None and len(decoded.frames) == 8


def test_wav_flac_png(tmp_path):
    audio = (0.5 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    import soundfile

    for name in ("a.wav", "a.flac"):
        data, rate = soundfile.read(write_audio(tmp_path / name, audio, SAMPLE_RATE))
        assert rate == SAMPLE_RATE and np.abs(data - audio).max() < 1e-4
    from PIL import Image

    frame = np.zeros((9, 11, 3), np.uint8)
    frame[2, 3] = (1, 2, 3)
    assert (np.asarray(Image.open(write_image(tmp_path / "f.png", frame))) == frame).all()


GOOD_FRAMES = np.zeros((8, 16, 16, 3), np.uint8)
GOOD_AUDIO = np.zeros(5333, np.float32)


def nan_frames():
    frames = np.zeros((8, 16, 16, 3), np.float32)
    frames[2, 3, 4, 1] = np.nan
    return frames


BAD_INPUTS = {
    "empty video": (dict(frames=np.zeros((0, 16, 16, 3), np.uint8)), "empty"),
    "zero-size frames": (dict(frames=np.zeros((8, 0, 16, 3), np.uint8)), "empty"),
    "no channel axis": (dict(frames=np.zeros((8, 16, 16), np.uint8)), "shape"),
    "four channels": (dict(frames=np.zeros((8, 16, 16, 4), np.uint8)), "shape"),
    "NaN frames": (dict(frames=nan_frames()), "NaN"),
    "float frames out of range": (dict(frames=np.full((8, 16, 16, 3), 1.5, np.float32)), r"\[0, 1\]"),
    "int32 frames": (dict(frames=np.zeros((8, 16, 16, 3), np.int32)), "dtype"),
    "NaN audio": (dict(audio=np.full(5333, np.nan, np.float32)), "NaN"),
    "audio out of range": (dict(audio=np.full(5333, 1.5, np.float32)), r"\[-1, 1\]"),
    "empty audio": (dict(audio=np.zeros(0, np.float32)), "empty"),
    "three audio channels": (dict(audio=np.zeros((3, 5333), np.float32)), "channels"),
    "audio without sample rate": (dict(sample_rate=None), "sample_rate"),
    "bad sample rate": (dict(sample_rate=100), "sample_rate"),
    "unsupported fps": (dict(fps=29.97), "fps"),
    "zero fps": (dict(fps=0), "fps"),
    "unknown extension": (dict(name="clip.avi"), "extension"),
    "no extension": (dict(name="clip"), "extension"),
    "missing folder": (dict(name="missing/clip.mp4"), "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_and_leaves_the_target_untouched(tmp_path, case):
    changes, message = BAD_INPUTS[case]
    name = changes.pop("name", "clip.mp4") if "name" in changes else "clip.mp4"
    args = dict(frames=GOOD_FRAMES, fps=24, audio=GOOD_AUDIO, sample_rate=SAMPLE_RATE)
    args.update({k: v for k, v in changes.items() if k != "name"})
    target = tmp_path / name
    if target.parent.is_dir():
        target.write_bytes(b"original")
    with pytest.raises(ValueError, match=message):
        write_video(target, **args)
    if target.parent.is_dir():
        assert target.read_bytes() == b"original"
    assert sorted(os.listdir(tmp_path)) == ([name] if target.parent.is_dir() else [])


def test_crash_mid_write_keeps_the_old_file_and_leaves_no_partial(tmp_path, monkeypatch):
    import av

    target = tmp_path / "clip.mp4"
    target.write_bytes(b"original")
    calls = {"n": 0}
    real = av.VideoFrame.from_ndarray

    def crash_on_fifth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated crash while encoding")
        return real(*args, **kwargs)

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", crash_on_fifth)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_video(target, GOOD_FRAMES, 24, GOOD_AUDIO, SAMPLE_RATE)
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_overwrite_replaces_a_complete_file(tmp_path):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"original")
    write_video(target, GOOD_FRAMES, 24, GOOD_AUDIO, SAMPLE_RATE)
    assert len(read_video(target).frames) == 8


def test_audio_and_image_writers_validate_too(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        write_audio(tmp_path / "a.mp3", GOOD_AUDIO, SAMPLE_RATE)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        write_audio(tmp_path / "a.wav", GOOD_AUDIO + 2, SAMPLE_RATE)
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "f.png", nan_frames()[2])
    with pytest.raises(ValueError, match="no such file"):
        read_video(tmp_path / "missing.mp4")
    assert os.listdir(tmp_path) == []
    assert muxer.DEFAULT_CRF <= 18


def test_aac_priming_is_compensated_by_the_edit_list(tmp_path):
    """Decoded while ignoring the MP4 edit list, the clicks come 1024 samples (64 ms) late: the AAC
    priming is really there, and it is the edit list that puts the audio back in sync."""
    import subprocess

    import imageio_ffmpeg

    frames, audio = flash_click_clip(48, 24, [10, 30])
    path = write_video(tmp_path / "clip.mp4", frames, 24, audio, SAMPLE_RATE)
    raw = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-ignore_editlist", "1", "-i", str(path), "-f", "f32le", "-"],
        capture_output=True,
        check=True,
    ).stdout
    late = onsets(np.frombuffer(raw, np.float32)[None]) - AVClock(24, SAMPLE_RATE).sample_of_frame(np.array([10, 30]))
    assert np.abs(late - AAC_FRAME).max() <= 2
    synced = onsets(read_video(path).audio) - AVClock(24, SAMPLE_RATE).sample_of_frame(np.array([10, 30]))
    assert np.abs(synced).max() <= 2
