"""Property-based tests (hypothesis) of what users give avgen (issue 45).

The rules (avgen.validation, clock.check_fps): any value is either accepted, as what the rule promises, or refused
with a ValueError whose message starts with the argument's name; never another exception. A pipeline (the tiny
AVGenPipeline): any mix of bad and good arguments either passes its checks, which the first model forward tells (every
component's forward raises Computed), or is refused with a ValueError naming an argument it was given, before any
forward ran. The muxer: any clip it accepts is written whole, decodes, and has exactly the frames and audio samples
it promises (AVClock), and leaves no hidden file. Few examples each, so the file runs in seconds to a minute.
"""

import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from avgen import muxer, validation
from avgen.clock import SUPPORTED_FPS, AVClock, check_fps
from tests.pipelines.test_text_to_audio_video import get_dummy_inputs
from tests.pipelines.tiny import avgen_pipeline

# every character, lone surrogates (what a non-UTF-8 byte in argv becomes) included
ANY_TEXT = st.text(st.one_of(st.characters(exclude_categories=()), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)), max_size=20)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.fractions(),
    st.sampled_from([0, 1, -1, 2**64 - 1, 2**64, 1e308, -1e308, 5e-324]),
)  # fmt: skip
ANYTHING = st.one_of(NUMBERS, ANY_TEXT, st.none(), st.booleans(), st.binary(max_size=4), st.lists(st.integers(), max_size=2))
FEW = settings(max_examples=150, deadline=None)


def is_real(value) -> bool:
    return isinstance(value, (int, float, Fraction)) and not isinstance(value, bool)


def refused(rule, name, value):
    """The ValueError message of rule(name, value), or None when it accepts it."""
    try:
        rule(name, value)
    except ValueError as error:
        assert str(error).startswith(name), str(error)
        return str(error)
    return None


@FEW
@given(value=ANYTHING)
def test_check_number_accepts_exactly_the_finite_reals(value):
    finite = is_real(value) and math.isfinite(value)
    assert (refused(validation.check_number, "--guidance", value) is None) == finite
    if finite:
        assert validation.check_number("--guidance", value) == float(value)


@FEW
@given(value=ANYTHING)
def test_check_duration_accepts_exactly_the_positive_finite_reals(value):
    positive = is_real(value) and 0 < value < math.inf
    assert (refused(validation.check_duration, "--duration", value) is None) == positive


@FEW
@given(value=ANYTHING)
def test_check_seed_accepts_exactly_what_torch_seeds_with(value):
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64
    assert (refused(validation.check_seed, "--seed", value) is None) == ok
    if ok:
        torch.Generator().manual_seed(validation.check_seed("--seed", value))  # never raises for an accepted seed


@FEW
@given(value=st.one_of(ANY_TEXT, ANYTHING), required=st.booleans())
def test_check_text_accepts_exactly_the_utf8_text(value, required):
    def encodes(text):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    ok = isinstance(value, str) and encodes(value) and (not required or bool(value.strip()))
    assert (refused(lambda name, v: validation.check_text(name, v, required), "prompt", value) is None) == ok


@FEW
@given(value=ANYTHING)
def test_check_fps_accepts_exactly_the_supported_rates(value):
    ok = is_real(value) and math.isfinite(value) and value in SUPPORTED_FPS
    assert (refused(lambda name, v: check_fps(v, name), "--fps", value) is None) == ok


# --- a pipeline: any arguments are refused by name before compute, or pass its checks -----------------------------
class Computed(Exception):
    """A model's forward was reached: every check had passed."""


@pytest.fixture(scope="module")
def pipe():
    pipe = avgen_pipeline()
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.forward = lambda *args, **kwargs: (_ for _ in ()).throw(Computed())
    return pipe


# argument -> what it may be, and the names its refusal may give (a duration is checked as the frames it makes)
ARGUMENTS = {
    "prompt": (st.one_of(ANY_TEXT, st.lists(ANY_TEXT, max_size=3), ANYTHING), ("prompt",)),
    "negative_prompt": (st.one_of(ANY_TEXT, st.none(), ANYTHING), ("negative_prompt",)),
    "audio_prompt": (st.one_of(ANY_TEXT, st.none(), ANYTHING), ("audio_prompt",)),
    "duration": (st.one_of(NUMBERS, st.none(), ANYTHING), ("duration", "num_frames")),
    "fps": (st.one_of(st.sampled_from(SUPPORTED_FPS), NUMBERS, ANYTHING), ("fps",)),
    "num_inference_steps": (st.one_of(st.integers(-5, 50), NUMBERS, ANYTHING), ("num_inference_steps",)),
    "guidance_scale": (st.one_of(NUMBERS, ANYTHING), ("guidance_scale",)),
    "audio_guidance_scale": (st.one_of(NUMBERS, ANYTHING), ("audio_guidance_scale",)),
    "height": (st.one_of(st.none(), st.integers(-64, 2**40), NUMBERS, ANYTHING), ("height",)),
    "width": (st.one_of(st.none(), st.integers(-64, 2**40), NUMBERS, ANYTHING), ("width",)),
    "generator": (st.one_of(st.none(), st.integers(), ANYTHING), ("generator",)),
}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(overrides=st.fixed_dictionaries({}, optional={name: strategy for name, (strategy, _) in ARGUMENTS.items()}))
def test_any_arguments_are_refused_by_name_before_compute_or_pass_the_checks(pipe, overrides):
    if isinstance(overrides.get("num_inference_steps"), int) and not isinstance(overrides["num_inference_steps"], bool):
        assume(overrides["num_inference_steps"] < 10**6)  # a valid count of steps; a schedule of 2**70 would not fit in memory
    try:
        pipe(**get_dummy_inputs(**overrides))
    except Computed:
        event("passed the checks")  # --hypothesis-show-statistics: both outcomes are drawn
        return
    except ValueError as error:
        event("refused")
        names = [alias for name in overrides for alias in ARGUMENTS[name][1]]
        assert any(alias in str(error) for alias in names), (str(error), overrides)


# --- the muxer: what it accepts, it writes whole, with the lengths it promises ------------------------------------
@settings(max_examples=12, deadline=None)
@given(
    num_frames=st.integers(1, 30), fps=st.sampled_from(SUPPORTED_FPS), sample_rate=st.sampled_from(muxer.AAC_SAMPLE_RATES),
    channels=st.sampled_from([1, 2]), audio_share=st.floats(0.01, 3.0), height=st.integers(1, 34), width=st.integers(1, 34),
    silent=st.booleans(), seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_written_clips_decode_with_exactly_the_promised_lengths(num_frames, fps, sample_rate, channels, audio_share, height, width, silent, seed):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    clock = AVClock(fps, sample_rate)
    samples = max(1, round(audio_share * clock.num_samples(num_frames)))  # shorter or longer than the video: fitted
    audio = None if silent else rng.uniform(-0.5, 0.5, (channels, samples)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = muxer.write_video(Path(folder) / "clip.mp4", frames, fps, audio, None if silent else sample_rate)
        assert os.listdir(folder) == ["clip.mp4"]  # no hidden file left
        clip = muxer.read_video(path)
    assert clip.frames.shape == (num_frames, height + height % 2, width + width % 2, 3)  # odd sizes padded by one
    assert clip.fps == fps
    if silent:
        assert clip.audio is None
    else:
        assert clip.sample_rate == sample_rate and clip.audio.shape == (channels, clock.num_samples(num_frames))


@settings(max_examples=40, deadline=None)
@given(
    sample_rate=st.one_of(st.sampled_from(muxer.AAC_SAMPLE_RATES), st.integers(7000, 200_000), NUMBERS, ANYTHING),
    frames=st.sampled_from(["ok", "ok", "nan", "empty", "wide"]),
)
def test_the_muxer_refuses_bad_clips_before_writing_or_writes_them_whole(sample_rate, frames):
    good = np.zeros((2, 8, 8, 3), np.float32)
    bad = {"ok": good, "nan": np.full((2, 8, 8, 3), np.nan, np.float32), "empty": np.zeros((0, 8, 8, 3)), "wide": np.zeros((2, 8, 8, 4))}
    with tempfile.TemporaryDirectory() as folder:
        try:
            muxer.write_video(Path(folder) / "clip.mp4", bad[frames], 8, np.zeros(800, np.float32), sample_rate)
        except ValueError as error:
            assert not isinstance(error, av.FFmpegError), error  # told by the muxer's checks, not by a failing encoder
            assert os.listdir(folder) == []
        else:
            assert frames == "ok"
            assert os.listdir(folder) == ["clip.mp4"] and muxer.read_video(Path(folder) / "clip.mp4").sample_rate == sample_rate
