"""Video files as the sound pipeline reads them: real encoder outputs (PyAV's libx264 and libvpx-vp9; the ffmpeg
binary's libvpx VP8 and libtheora) at the rates of phones and cameras, with variable frame rates, in MP4, MOV, MKV,
WebM and OGG, mapped exactly onto the model's clock and decoded frame by frame."""

import re
import subprocess
import weakref
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avgen import muxer
from avgen.clock import FrameTimes, nearest_supported_fps
from avgen.pipelines.video_input import decode_on_clock, describe_video_on_clock

NTSC = {23.976: Fraction(24000, 1001), 29.97: Fraction(30000, 1001), 59.94: Fraction(60000, 1001)}
CONTAINERS = {".mp4": ("mp4", "libx264"), ".mov": ("mov", "libx264"), ".mkv": ("matroska", "libx264"), ".webm": ("webm", "libvpx-vp9")}
VFR_MS = (33, 50, 17, 41, 66, 25)  # frame durations of a variable-rate clip, cycled (a phone's slow-light frames)


def encode_clip(path, fps=24, num_frames=10, size=(64, 48), vfr=False):
    """A real encoder's output: a white square moving right over a still noise background (so that x264 makes B-frames),
    encoded by PyAV at `fps` (a Fraction for 29.97 and its kin) with the container's usual codec (H.264; VP9 for
    WebM). vfr: frame starts in milliseconds, durations cycling through VFR_MS. Returns the path."""
    container_format, codec = CONTAINERS[path.suffix]
    width, height = size
    background = np.random.default_rng(0).integers(0, 90, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=NTSC.get(fps, fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"} if codec == "libx264" else {"deadline": "realtime", "cpu-used": "8"}
        if vfr:
            stream.codec_context.time_base = Fraction(1, 1000)
        start = 0
        for index in range(num_frames):
            picture = background.copy()
            left = (4 * index) % (width - 8)
            picture[height // 3 : height // 3 + 8, left : left + 8] = 255
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = start if vfr else index
            start += VFR_MS[index % len(VFR_MS)]
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


FFMPEG_ENCODERS = {"vp8": "libvpx", "theora": "libtheora"}  # codecs PyAV cannot encode (theora) or that WebM's older users have


def encode_with_ffmpeg(path, codec, fps=25, num_frames=10, size=(64, 48)):
    """A real encoder's output made by the ffmpeg binary (imageio-ffmpeg's build, which has libtheora; PyAV's FFmpeg
    has no Theora encoder): FFmpeg's moving test pattern, `num_frames` frames at `fps` (29.97 and its kin as NTSC's
    exact rates) in the container `path`'s extension names (.ogv: OGG). Returns the path."""
    import imageio_ffmpeg

    rate = Fraction(NTSC.get(fps, fps)).limit_denominator(1001)
    width, height = size
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={rate}"]
    subprocess.run([*command, "-frames:v", str(num_frames), "-c:v", FFMPEG_ENCODERS[codec], str(path)], check=True)
    return path


# (suffix, fps, vfr): the rates of the issue in MP4, each container at a phone's rate, variable rates in two
CLIPS = [(".mp4", fps, False) for fps in (23.976, 25, 29.97, 30, 59.94, 60)] + [
    (".mov", 59.94, False), (".mkv", 29.97, False), (".mkv", 24, False), (".webm", 30, False), (".webm", 60, False),
    (".mp4", 30, True), (".mkv", 30, True),
]  # fmt: skip


def clip_id(case):
    suffix, fps, vfr = case
    return f"{suffix[1:]}-{fps}{'-vfr' if vfr else ''}"


@pytest.fixture(params=CLIPS, ids=clip_id)
def clip(request, tmp_path):
    suffix, fps, vfr = request.param
    return encode_clip(tmp_path / f"clip{suffix}", fps, vfr=vfr), fps, vfr


def test_frames_map_onto_the_model_clock_exactly():
    # 29.97 fps in MP4's 1/30000 s: 10 frames last 10010 ticks; the 30 fps clock has 11 ticks, the last on frame 9
    ntsc = FrameTimes(np.arange(10) * 1001, Fraction(1, 30000), 10010)
    assert ntsc.rate == Fraction(30000, 1001) and nearest_supported_fps(ntsc.rate) == 30
    assert ntsc.on_clock(30).tolist() == [*range(10), 9] and ntsc.num_samples(16000) == 5339  # 5338.67 s rounded
    # 60 fps onto 30: every other frame
    assert FrameTimes(np.arange(8) * 256, Fraction(1, 15360), 2048).on_clock(30).tolist() == [0, 2, 4, 6]
    # 30 fps in milliseconds (MKV, WebM): 0, 33, 67, 100 ms; the nearest start, not the one at or before 66.67 ms
    assert FrameTimes([0, 33, 67, 100], Fraction(1, 1000), 133).on_clock(30).tolist() == [0, 1, 2, 3]
    # variable rate: ticks at 0, 33.3, 66.7, 100 and 133.3 ms against frames at 0, 50, 60 and 120 ms
    assert FrameTimes([0, 50, 60, 120], Fraction(1, 1000), 140).on_clock(30).tolist() == [0, 1, 2, 3, 3]
    assert [nearest_supported_fps(Fraction(rate)) for rate in (NTSC[23.976], 25, NTSC[59.94], 60, 14, 10)] == [24, 25, 30, 30, 16, 12]
    with pytest.raises(ValueError, match="rise strictly"):
        FrameTimes([0, 40, 40], Fraction(1, 1000), 120)


def test_real_encoder_outputs_are_timed_and_decoded_on_the_clock(clip):
    path, fps, vfr = clip
    times = muxer.probe_timing(path)
    starts = np.cumsum((0, *(VFR_MS * 2)[:9])) / 1000 if vfr else np.arange(10) / float(NTSC.get(fps, fps))  # s
    # each frame starts when the encoder was told, within the 1 ms to which MKV and WebM round it; the length is the
    # container's, within a frame (a variable-rate encoder guesses the last frame's), at most 1 ms off at a fixed rate
    # (MP4 edit lists count in ms too)
    np.testing.assert_allclose(times.pts * float(times.time_base), starts, rtol=0, atol=1e-3 if path.suffix in (".mkv", ".webm") else 1e-9)
    nominal = starts[-1] + (0.05 if vfr else 1 / float(NTSC.get(fps, fps)))
    assert abs(float(times.seconds) - nominal) <= (0.05 if vfr else 1e-3), (times.seconds, nominal)
    batch, num_frames, model_fps, num_samples = describe_video_on_clock(path, None, 16000)
    assert (batch, model_fps) == (1, nearest_supported_fps(times.rate)) and num_samples == times.num_samples(16000)
    assert num_frames == -(-times.seconds * model_fps // 1)  # ticks that start within the video
    # each tick shows the decoded frame nearest it, shrunk as encode_video shrinks frames
    indices = times.on_clock(model_fps)
    if not vfr and model_fps == fps:
        assert indices.tolist() == list(range(10))  # a supported rate is its own clock, even in milliseconds
    full = torch.from_numpy(muxer.read_video(path).frames).permute(0, 3, 1, 2).float() / 255  # (F, 3, H, W)
    expected = F.interpolate(full, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)[indices]
    torch.testing.assert_close(decode_on_clock(path, 16)[0], expected, rtol=0, atol=0)


def test_frames_are_decoded_shrunk_and_dropped_one_at_a_time(tmp_path, monkeypatch):
    """Memory does not follow the resolution: at no time is more than one full-size decoded picture alive."""
    path = encode_clip(tmp_path / "clip.mkv", 29.97, num_frames=12, size=(320, 240))
    alive, most = set(), [0]
    to_ndarray = av.VideoFrame.to_ndarray

    def tracked(frame, *args, **kwargs):
        array = to_ndarray(frame, *args, **kwargs)
        alive.add(id(array))
        weakref.finalize(array, alive.discard, id(array))
        most[0] = max(most[0], len(alive))
        return array

    monkeypatch.setattr(av.VideoFrame, "to_ndarray", tracked)
    frames = decode_on_clock(path, 16)
    assert frames.shape == (1, describe_video_on_clock(path, None, 16000)[1], 3, 16, 16) and most[0] == 1


def test_bad_files_are_refused_before_decoding(tmp_path):
    (tmp_path / "noise.mkv").write_bytes(b"\x1a\x45\xdf\xa3 not really matroska")
    with pytest.raises(ValueError, match="cannot read"):
        describe_video_on_clock(tmp_path / "noise.mkv", None, 16000)
    path = encode_clip(tmp_path / "clip.mp4", 30)
    with pytest.raises(ValueError, match=r"fps=24 contradicts the 30\.\d* fps"):  # 10 frames in 333 ms (its edit list's ms)
        describe_video_on_clock(path, 24, 16000)
    assert describe_video_on_clock(path, 30, 16000)[:3] == (1, 10, 30)  # the file's own clock may be repeated
    with pytest.raises(ValueError, match="an MP4 cannot carry"):  # VP8 is WebM's older codec
        with av.open(str(tmp_path / "vp8.webm"), "w", format="webm") as container:
            stream = container.add_stream("libvpx", rate=30)
            stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
            for index in range(3):
                frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * index, np.uint8), format="rgb24")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        assert describe_video_on_clock(tmp_path / "vp8.webm", None, 16000)[:3] == (1, 3, 30)  # the pipeline reads it
        muxer.check_copyable(tmp_path / "vp8.webm")


@pytest.mark.parametrize("case", [(".mp4", 29.97, False), (".mov", 60, False), (".mkv", 30, True), (".webm", 30, False)], ids=clip_id)
def test_the_pipeline_sounds_a_file_for_exactly_its_length(case, tmp_path):
    from tests.pipelines.test_video_to_audio import get_dummy_inputs, get_pipeline

    suffix, fps, vfr = case
    path = encode_clip(tmp_path / f"clip{suffix}", fps, vfr=vfr)
    times = muxer.probe_timing(path)
    output = get_pipeline()(**get_dummy_inputs(video=path, fps=None))
    model_fps = nearest_supported_fps(times.rate)
    assert output.audio.shape == (1, 1, times.num_samples(16000)) and output.fps == model_fps
    assert output.frames.shape == (1, len(times.on_clock(model_fps)), 16, 16, 3)  # what the encoder saw


@pytest.mark.parametrize(
    ("codec", "suffix", "fps"), [("vp8", ".webm", 30), ("vp8", ".mkv", 29.97), ("theora", ".ogv", 29.97), ("theora", ".mkv", 25)]
)
def test_vp8_and_theora_are_read_on_the_clock_and_copyable_where_a_container_carries_them(tmp_path, codec, suffix, fps):
    """WebM's older codec and OGG's: the sound pipeline reads them as any other video, and the muxer tells which of
    its containers carries the stream as it is (an MP4 carries neither) and says so, naming the codec and them."""
    path = encode_with_ffmpeg(tmp_path / f"clip{suffix}", codec, fps)
    times = muxer.probe_timing(path)
    assert times.num_frames == 10 and abs(float(times.rate) - float(NTSC.get(fps, fps))) < 0.1  # MKV: whole ms
    batch, ticks, model_fps, samples = describe_video_on_clock(path, None, 16000)
    assert (batch, model_fps, samples) == (1, nearest_supported_fps(times.rate), times.num_samples(16000))
    assert decode_on_clock(path, 16).shape == (1, ticks, 3, 16, 16)
    fits = (".mkv", ".webm") if codec == "vp8" else (".mkv",)
    assert muxer.video_containers(path) == (codec, fits)
    for suffix in fits:
        assert muxer.check_copyable(path, suffix).duration == times.duration
    kinds = "an MKV or WebM file instead (.mkv, .webm)" if codec == "vp8" else "an MKV file instead (.mkv)"
    with pytest.raises(ValueError, match=rf"holds {codec} video, which an MP4 cannot carry; write {re.escape(kinds)}, which keeps"):
        muxer.check_copyable(path, ".mp4")
    if codec == "theora":
        with pytest.raises(ValueError, match=r"holds theora video, which a WebM cannot carry; write an MKV file instead"):
            muxer.check_copyable(path, ".webm")
