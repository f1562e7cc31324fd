"""`avgen foley`: the video stream is copied byte for byte, the new audio is exactly as long as the video."""

from fractions import Fraction

import av
import numpy as np
import pytest

from avgen.cli import main
from avgen.muxer import add_audio, probe_timing, read_video, write_video
from avgen.provenance import COMPOSITE, IPTC, actions_of, read_credentials
from avgen.pipelines import text_to_audio_video
from tests.conftest import ffmpeg_decode
from tests.pipelines.test_video_input import clip_id, encode_clip, encode_with_ffmpeg
from tests.pipelines.test_video_to_audio import dummy_frames
from tests.pipelines.tiny import avgen_pipeline  # the tiny pipeline of the pipeline tests
from tests.test_muxer import flash_click_clip, onsets


def video_packets(path):
    """The encoded bytes of every video packet, with timestamps, and the stream's codec extradata (SPS/PPS)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(bytes(packet), packet.pts, packet.dts) for packet in container.demux(stream) if packet.size]
        return packets, bytes(stream.codec_context.extradata or b""), stream.time_base


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("foley") / "model"
    avgen_pipeline().save_pretrained(folder)  # the shipped layout: foley runs its audio stage
    return folder


@pytest.fixture
def clip(tmp_path):
    """12 frames at 24 fps with an old (sine) audio track that foley must replace."""
    old_audio = 0.5 * np.sin(np.arange(8000) / 5.0, dtype=np.float32)
    return write_video(tmp_path / "in.mp4", dummy_frames(), 24, old_audio, 16000, {"title": "my clip"})


def test_foley_copies_the_video_packets_and_adds_exact_audio(model, clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["foley", str(clip), "-o", str(out), "--model", str(model), "--steps", "2", "--seed", "3", "--prompt", "with rain"]) == 0
    summary = capsys.readouterr().out.strip()
    assert summary.startswith(str(out)) and "0.50 s" in summary and "taken" in summary and "\n" not in summary

    packets, extradata, _ = video_packets(clip)
    assert video_packets(out)[:2] == (packets, extradata)  # not re-encoded: same bytes, same timestamps
    decoded = read_video(out)
    np.testing.assert_array_equal(decoded.frames, read_video(clip).frames)
    assert decoded.audio.shape == (1, 8000) and decoded.sample_rate == 16000  # 0.5 s exactly
    assert np.abs(decoded.audio - 0.5 * np.sin(np.arange(8000) / 5.0)).mean() > 0.1  # the old track is gone
    assert decoded.metadata["generator"] == "avgen" and decoded.metadata["prompt"] == "with rain"
    assert decoded.metadata["seed"] == "3" and decoded.metadata["steps"] == "2" and decoded.metadata["title"] == "my clip"
    frames, audio, fps, sample_rate = ffmpeg_decode(out)  # an independent decoder agrees
    assert (len(frames), fps, sample_rate) == (12, 24, 16000) and abs(audio.shape[1] - 8000) <= 1024
    # the copied video stream and a signed C2PA manifest: an edit of the user's video, which is its parent
    credentials = read_credentials(out)
    opened, edited = actions_of(credentials["manifest"])
    assert credentials["state"] == "Valid" and (opened["action"], edited["action"]) == ("c2pa.opened", "c2pa.edited")
    assert edited["digitalSourceType"] == IPTC + COMPOSITE and credentials["manifest"]["ingredients"][0]["title"] == "in.mp4"


def stream_packets(path):
    """The video packets' bytes and start times in seconds from the first frame (MKV counts in ms, MP4 in its own
    ticks: the same instants), and the codec's extradata."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(bytes(packet), packet.pts * stream.time_base) for packet in container.demux(stream) if packet.size]
        first = min(pts for _, pts in packets)
        return [(data, pts - first) for data, pts in packets], bytes(stream.codec_context.extradata or b"")


@pytest.mark.parametrize("case", [(".mp4", 29.97, False), (".mov", 60, False), (".mkv", 30, True), (".webm", 30, False)], ids=clip_id)
def test_foley_on_phone_rates_variable_rates_mkv_and_webm(model, tmp_path, case):
    """Real encoder outputs: the video stream comes back bit for bit, the sound is exactly as long as the video, and
    avgen takes its own output again with nothing changed (the MKV and WebM of the issue came back at "24.01 fps")."""
    suffix, fps, vfr = case
    source = encode_clip(tmp_path / f"phone{suffix}", fps, vfr=vfr)
    first, second = tmp_path / "first.mp4", tmp_path / "second.mp4"
    for given, out in ((source, first), (first, second)):
        assert main(["foley", str(given), "-o", str(out), "--model", str(model), "--steps", "2"]) == 0
    packets, extradata = stream_packets(source)
    times = probe_timing(source)
    for out in (first, second):
        copied, copied_extradata = stream_packets(out)
        assert copied == packets  # the same bytes at the same instants
        assert copied_extradata == extradata or suffix == ".webm"  # (an MP4 describes VP9 in a box of its own)
        assert probe_timing(out).seconds == times.seconds  # the length, exactly
        decoded = read_video(out)
        assert decoded.audio.shape == (1, times.num_samples(16000)) and decoded.sample_rate == 16000


def test_foley_refuses_what_the_output_cannot_carry_before_the_model_runs(model, tmp_path, capsys, monkeypatch):
    """VP8 or Theora into an MP4, Theora into a WebM, credentials flags with an MKV: exit 2 before the model loads,
    naming the codec and the containers that keep it, and no file."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(text_to_audio_video.AVGenPipeline, "from_pretrained", refuse)
    vp8 = encode_with_ffmpeg(tmp_path / "old.webm", "vp8", 30)
    theora = encode_with_ffmpeg(tmp_path / "old.ogv", "theora", 25)
    cases = [
        (vp8, "out.mp4", [], "holds vp8 video, which an MP4 cannot carry; write an MKV or WebM file instead (.mkv, .webm)"),
        (theora, "out.mp4", [], "holds theora video, which an MP4 cannot carry; write an MKV file instead (.mkv)"),
        (theora, "out.webm", [], "holds theora video, which a WebM cannot carry; write an MKV file instead (.mkv)"),
        (theora, "out.avi", [], "--output: cannot write"),
        (theora, "out.mkv", ["--c2pa-prompt"], "--c2pa-prompt: an MKV cannot carry content credentials (C2PA); write an .mp4"),
        (vp8, "out.webm", ["--c2pa-cert", str(theora)], "--c2pa-cert: a WebM cannot carry content credentials"),
    ]
    for source, out, extra, message in cases:
        assert main(["foley", str(source), "-o", str(tmp_path / out), "--model", str(model), *extra]) == 2
        assert message in capsys.readouterr().err, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.ogv", "old.webm"]


@pytest.mark.parametrize(
    ("codec", "source", "out"), [("vp8", ".webm", ".webm"), ("vp8", ".webm", ".mkv"), ("theora", ".ogv", ".mkv"), ("theora", ".mkv", ".mkv")]
)
def test_foley_keeps_vp8_and_theora_in_an_mkv_or_webm(model, tmp_path, capsys, codec, source, out):
    """VP8 (WebM's older codec) and Theora (OGG's): the video stream comes back byte for byte in the container asked
    for, the sound is exactly as long as the video, and a note says that such a file carries no content credentials."""
    source = encode_with_ffmpeg(tmp_path / f"old{source}", codec, 29.97 if codec == "theora" else 30)
    output = tmp_path / f"new{out}"
    assert main(["foley", str(source), "-o", str(output), "--model", str(model), "--steps", "2", "--prompt", "rain"]) == 0
    captured = capsys.readouterr()
    kind = "a WebM" if out == ".webm" else "an MKV"
    assert f"avgen foley: note: {kind} cannot carry content credentials (C2PA); {output} will have none" in captured.err
    assert captured.out.startswith(str(output))
    assert [data for data, _ in stream_packets(output)[0]] == [data for data, _ in stream_packets(source)[0]]
    times = probe_timing(output)
    assert abs(times.seconds - probe_timing(source).seconds) <= Fraction(1, 1000)  # Matroska counts in ms
    decoded = read_video(output)
    rate = 48_000 if out == ".webm" else 16_000
    assert decoded.audio.shape == (1, times.num_samples(rate)) and decoded.sample_rate == rate
    assert decoded.metadata["generator"] == "avgen" and decoded.metadata["prompt"] == "rain"
    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.name == codec
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, output.name])  # no .partial
    assert main(["foley", str(output), "-o", str(tmp_path / "no-note.mkv"), "--model", str(model), "--steps", "2", "--no-credentials"]) == 0
    assert "note:" not in capsys.readouterr().err  # none asked for: nothing to say


def test_a_trimmed_mp4_keeps_the_frames_its_edit_list_hides(tmp_path):
    """A phone's trim without re-encoding: the edit list starts the video 3 frames in, after its keyframe, which the
    demuxer marks discarded. The copy keeps those packets (the frames shown need them) behind an edit list of its
    own: the same 9 frames decode, for the same length."""
    source = encode_clip(tmp_path / "whole.mp4", 29.97, num_frames=12)
    trimmed = tmp_path / "trimmed.mp4"
    with av.open(str(source)) as whole, av.open(str(trimmed), "w", format="mp4") as container:
        stream = container.add_stream_from_template(whole.streams.video[0])
        for packet in whole.demux(whole.streams.video[0]):
            if packet.size:
                packet.pts, packet.dts = packet.pts - 3003, packet.dts - 3003  # 3 frames of 1001 ticks
                packet.stream = stream
                container.mux(packet)
    with av.open(str(trimmed)) as container:
        assert sum(packet.is_discard for packet in container.demux(video=0)) == 3
    out = add_audio(trimmed, np.zeros(100, np.float32), 16000, tmp_path / "out.mp4")
    times = probe_timing(trimmed)
    assert times.num_frames == 9 and probe_timing(out).seconds == times.seconds
    decoded = read_video(out)
    np.testing.assert_array_equal(decoded.frames, read_video(trimmed).frames)
    assert decoded.audio.shape == (1, times.num_samples(16000))


def test_add_audio_fits_the_audio_and_writes_atomically(clip, tmp_path):
    out = tmp_path / "out.mp4"
    add_audio(clip, np.full(5000, 0.25, np.float32), 16000, out)  # too short: padded with silence
    assert read_video(out).audio.shape == (1, 8000)
    before = out.read_bytes()
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        add_audio(clip, np.full(8000, 2.0, np.float32), 16000, out)
    assert out.read_bytes() == before  # refused before writing: the old file is intact, no partial file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]
    with pytest.raises(ValueError, match="over its own input"):
        add_audio(clip, np.zeros(8000, np.float32), 16000, clip)


def test_missing_model_or_input_says_so(model, clip, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out.mp4"
    monkeypatch.setattr(text_to_audio_video, "DEFAULT_WEIGHTS", tmp_path / "weights" / "tiny")  # before weights ship
    assert main(["foley", str(clip), "-o", str(out)]) == 2
    assert "not trained yet" in capsys.readouterr().err
    assert main(["foley", str(clip), "-o", str(out), "--model", str(tmp_path / "nowhere")]) == 2
    assert "no pipeline at" in capsys.readouterr().err
    assert main(["foley", str(tmp_path / "missing.mp4"), "-o", str(out), "--model", str(model)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not out.exists()


def test_video_guidance_reaches_the_pipeline_and_a_bad_one_is_refused(model, clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    args = ["foley", str(clip), "-o", str(out), "--model", str(model), "--steps", "2"]
    assert main([*args, "--video-guidance", "0.5"]) == 2
    assert "--video-guidance must be a finite number >= 1" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--video-guidance", "2"]) == 0
    assert read_video(out).metadata["video_guidance"] == "2.0"


def test_remuxed_audio_stays_in_sync_with_the_copied_video(tmp_path):
    """Clicks added by add_audio to a silent video land on its flash frames, as write_video's do (the copied
    H.264 stream keeps its B-frame reordering delay, the new AAC track its priming compensation)."""
    fps, num_frames, flashes = 24, 72, [5, 30, 61]
    frames, clicks = flash_click_clip(num_frames, fps, flashes)
    silent = write_video(tmp_path / "silent.mp4", frames, fps)
    out = add_audio(silent, clicks, 16000, tmp_path / "out.mp4")
    for frames_out, audio, _, rate in (tuple(vars(read_video(out)).values())[:4], ffmpeg_decode(out)):
        assert np.flatnonzero(frames_out.reshape(num_frames, -1).mean(axis=1) > 128).tolist() == flashes
        offsets = onsets(audio) / rate - np.asarray(flashes) / fps
        assert len(offsets) == 3 and np.abs(offsets).max() < 0.005, offsets
