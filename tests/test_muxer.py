"""The MP4 writer: exact lengths, sync through the AAC priming delay, atomic writes, precise errors."""

import os
import re
from fractions import Fraction

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


# --- add_audio into an MKV or a WebM: the streams an MP4 cannot carry (VP8, Theora) --------------------------------
def video_packets_at(path):
    """Every video packet's bytes, in file order, and its start in seconds from the first frame's."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(bytes(packet), packet.pts * stream.time_base) for packet in container.demux(stream) if packet.size]
    first = min(start for _, start in packets)
    return [(data, start - first) for data, start in packets]


def make_source(tmp_path, kind):
    from tests.pipelines.test_video_input import encode_clip, encode_with_ffmpeg

    codec, suffix, fps, vfr = kind
    if codec in ("vp8", "theora"):
        return encode_with_ffmpeg(tmp_path / f"source{suffix}", codec, fps)
    return encode_clip(tmp_path / f"source{suffix}", fps, vfr=vfr)


# (codec, source suffix, fps, vfr) -> the containers written: VP8 from WebM and MKV, Theora from OGG (whose clock is
# the frame rate, 1001/30000 s) and MKV, H.264 at 29.97 from an MP4 (1/30000 s ticks, rounded to ms in an MKV) and
# at a variable rate from an MKV, VP9 at 60 fps from a WebM
MATROSKA_CASES = [
    (("vp8", ".webm", 30, False), ".webm"), (("vp8", ".webm", 30, False), ".mkv"), (("vp8", ".mkv", 29.97, False), ".webm"),
    (("theora", ".ogv", 29.97, False), ".mkv"), (("theora", ".mkv", 25, False), ".mkv"),
    (("h264", ".mp4", 29.97, False), ".mkv"), (("h264", ".mkv", 30, True), ".mkv"), (("vp9", ".webm", 60, False), ".webm"),
]  # fmt: skip


def case_id(case):
    return f"{case[0]}{case[1]}-{case[2]}" if isinstance(case, tuple) else case[1:]


@pytest.mark.parametrize(("kind", "suffix"), MATROSKA_CASES, ids=case_id)
def test_add_audio_copies_any_stream_into_an_mkv_or_webm_with_sound_exactly_as_long(tmp_path, kind, suffix):
    """The video stream byte for byte, each frame at the source's time rounded to the millisecond (Matroska's
    clock), the sound (FLAC in an MKV, Opus at 48 kHz in a WebM) exactly as long as the video as avgen reads it back,
    its clicks where they were given, and avgen takes its own output again with nothing changed."""
    import av

    source = make_source(tmp_path, kind)
    times = muxer.probe_timing(source)
    audio = np.zeros(times.num_samples(SAMPLE_RATE), np.float32)
    clicks = (np.array([0.2, 0.6]) * len(audio)).astype(int)  # a fifth and three fifths of the way in
    for start in clicks:
        audio[start : start + 160] = 0.8 * np.exp(-np.arange(160) / 40.0)
    out = muxer.add_audio(source, audio, SAMPLE_RATE, tmp_path / f"out{suffix}", {"title": "my clip"})

    copied, given = video_packets_at(out), video_packets_at(source)
    assert [data for data, _ in copied] == [data for data, _ in given]  # not re-encoded
    assert max(abs(a - b) for (_, a), (_, b) in zip(copied, given)) <= Fraction(1, 2000)  # to the nearest ms
    out_times = muxer.probe_timing(out)
    assert out_times.num_frames == times.num_frames and abs(out_times.seconds - times.seconds) <= Fraction(1, 1000)
    decoded = read_video(out)
    rate = 48_000 if suffix == ".webm" else SAMPLE_RATE
    assert decoded.sample_rate == rate and decoded.audio.shape == (1, out_times.num_samples(rate))  # exactly as long
    found = onsets(decoded.audio) * SAMPLE_RATE / rate
    assert found.shape == clicks.shape and np.abs(found - clicks).max() <= 2  # in sync, to an eighth of a millisecond
    if suffix == ".mkv":  # lossless: the samples given, to 16 bits
        assert np.abs(decoded.audio[0, : len(audio)] - audio[: decoded.audio.shape[1]]).max() < 1e-4
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == ("opus" if suffix == ".webm" else "flac")
    np.testing.assert_array_equal(decoded.frames, read_video(source).frames)
    assert decoded.metadata["title"] == "my clip"
    if not kind[3]:  # an independent decoder agrees (conftest's reading of its log needs a constant rate)
        frames, sound, _, sample_rate = ffmpeg_decode(out)
        assert len(frames) == times.num_frames and sample_rate == rate and sound.shape[1] == decoded.audio.shape[1]

    again = muxer.add_audio(out, decoded.audio, rate, tmp_path / f"again{suffix}")
    again_times = muxer.probe_timing(again)
    assert np.array_equal(again_times.pts, out_times.pts) and again_times.duration == out_times.duration
    assert video_packets_at(again) == copied and read_video(again).audio.shape == decoded.audio.shape
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, out.name, again.name])  # no .partial


def test_add_audio_refuses_what_the_container_cannot_hold_before_writing(tmp_path):
    """A stream the container cannot carry, credentials in an MKV, and an MP4 edit list's hidden frames in an MKV:
    refused, naming what to write instead, with no file left."""
    import av

    from tests.pipelines.test_video_input import encode_clip, encode_with_ffmpeg

    theora = encode_with_ffmpeg(tmp_path / "old.ogv", "theora", 25)
    sound = np.zeros(1000, np.float32)
    for suffix, message in ((".mp4", "an MP4 cannot carry; write an MKV file instead (.mkv)"), (".webm", "a WebM cannot carry")):
        with pytest.raises(ValueError, match=f"holds theora video, which {re.escape(message)}"):
            muxer.add_audio(theora, sound, SAMPLE_RATE, tmp_path / f"out{suffix}")
    with pytest.raises(ValueError, match=r"an MKV cannot carry content credentials \(C2PA\); write an \.mp4 to sign it"):
        muxer.add_audio(theora, sound, SAMPLE_RATE, tmp_path / "out.mkv", sign=lambda *args: None)
    with pytest.raises(ValueError, match=r"cannot write '.*out\.avi': unknown extension '\.avi'"):
        muxer.add_audio(theora, sound, SAMPLE_RATE, tmp_path / "out.avi")

    whole = encode_clip(tmp_path / "whole.mp4", 29.97, num_frames=12)
    trimmed = tmp_path / "trimmed.mp4"  # an edit list that starts 3 frames in, as a phone's trim writes
    with av.open(str(whole)) as source, av.open(str(trimmed), "w", format="mp4") as container:
        stream = container.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.size:
                packet.pts, packet.dts, packet.stream = packet.pts - 3003, packet.dts - 3003, stream
                container.mux(packet)
    with pytest.raises(ValueError, match=r"starts 3 frames into its video stream .* write an \.mp4 instead"):
        muxer.check_copyable(trimmed, ".mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.ogv", "trimmed.mp4", "whole.mp4"]
