from fractions import Fraction

import numpy as np
import pytest

from avgen.clock import MOVIEGEN_DURATIONS, SUPPORTED_FPS, AVClock, check_fps


@pytest.mark.parametrize("fps", SUPPORTED_FPS)
def test_num_samples_is_exact_duration(fps):
    clock = AVClock(fps, 16000)
    for num_frames in (1, 7, fps, 10 * fps, 16 * fps + 3):
        exact = Fraction(num_frames * 16000, fps)
        assert abs(clock.num_samples(num_frames) - exact) <= Fraction(1, 2)


def test_moviegen_options_are_whole_numbers():
    for seconds, fps in MOVIEGEN_DURATIONS:
        clock = AVClock(fps, 16000)
        frames = clock.frames_for_duration(seconds)
        assert frames == seconds * fps
        assert clock.num_samples(frames) == seconds * 16000
        assert clock.seconds(frames) == seconds


def test_frame_sample_round_trip():
    clock = AVClock(24, 16000)
    frames = np.arange(240)
    samples = clock.sample_of_frame(frames)
    assert (clock.frame_of_sample(samples) == frames).all()
    assert (clock.frame_of_sample(samples - 1)[1:] == frames[1:] - 1).all()
    assert (clock.frame_at(clock.frame_times(240)) == frames).all()


def test_video_frame_for_audio_step_uses_step_centres():
    clock = AVClock(24, 16000, audio_hop=640)  # 25 audio latent steps a second
    steps = clock.audio_latent_steps(clock.num_samples(240))
    assert steps == 250
    index = clock.video_frame_for_audio_step(steps, 240)
    # step j covers [j*0.04, (j+1)*0.04) s; its centre (j+0.5)*0.04 s falls in frame floor(24*(j+0.5)*0.04)
    expected = np.floor(24 * (np.arange(steps) + 0.5) * 0.04).astype(int)
    assert (index == expected).all()
    assert index.min() == 0 and index.max() == 239
    assert (np.diff(index) >= 0).all()


def test_audio_step_at_is_the_step_holding_that_sample():
    clock = AVClock(24, 16000, audio_hop=320)  # 20 ms steps
    assert clock.audio_step_at(0.0) == 0 and clock.audio_step_at(0.0199) == 0 and clock.audio_step_at(0.02) == 1
    samples = np.array([0, 319, 320, 16000, 16319])
    assert (clock.audio_step_at(samples / 16000) == samples // 320).all()
    # the sample that starts frame f lies in the step the frame's time gives
    frames = np.arange(240)
    assert (clock.audio_step_at(clock.frame_times(240)) == clock.sample_of_frame(frames) // 320).all()


def test_fit_audio_pads_and_trims_at_the_end():
    clock = AVClock(30, 16000)
    target = clock.num_samples(30)
    short = np.ones((2, target - 10), np.float32)
    padded = clock.fit_audio(short, 30)
    assert padded.shape == (2, target) and (padded[:, -10:] == 0).all() and (padded[:, :-10] == 1).all()
    long = np.arange(target + 5, dtype=np.float32)
    assert (clock.fit_audio(long, 30) == long[:target]).all()


@pytest.mark.parametrize("bad", [0, 29.97, 60, -24, float("nan"), "24", None, True])
def test_bad_fps_is_refused(bad):
    with pytest.raises(ValueError, match="fps"):
        check_fps(bad)


def test_bad_clock_fields_are_refused():
    with pytest.raises(ValueError, match="sample_rate"):
        AVClock(24, 0)
    with pytest.raises(ValueError, match="audio_hop"):
        AVClock(24, 16000, audio_hop=0)
    with pytest.raises(ValueError, match="duration"):
        AVClock(24, 16000).frames_for_duration(0)
