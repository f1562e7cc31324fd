"""The judge on a few short rendered clips, and the honesty of the metrics built on it."""

import numpy as np
import pytest

from avgen.world import judge, metrics, render_clip
from avgen.world.spec import ClipSpec, SubjectSpec

SR = 16_000


def _clip(**changes):
    spec = ClipSpec(
        SubjectSpec("ball", "red", "bouncing", "right"),
        background="grassy field",
        resolution=64,
        fps=24,
        duration=3.0,
        seed=11,
    )
    return render_clip(spec.replace(**changes))


@pytest.fixture(scope="module")
def ball():
    clip = _clip()
    return clip, judge.judge_clip(clip.frames, clip.audio, clip.fps, clip.sample_rate)


def test_verdict_of_a_bouncing_ball(ball):
    clip, verdict = ball
    assert verdict["background"] == "grassy field"
    assert verdict["subject"] == {"kind": "ball", "color": "red", "motion": "bouncing", "direction": "right", "speed": None}
    assert verdict["camera"] == "static" and verdict["weather"] == "clear"
    assert verdict["ambience"] == "clear" and verdict["music"] == "none"
    assert verdict["subject_sounds"] == ["impacts"]
    truth = clip.truth.events_of("contact")
    seen = [e["time"] for e in verdict["visual_events"] if e["kind"] == "contact"]
    heard = [o["time"] for o in verdict["audio_onsets"] if o["kind"] == "impact"]
    assert len(seen) == len(truth) and len(heard) == len(truth)
    assert np.max(np.abs(np.array(seen) - truth)) <= 1 / clip.fps
    assert np.max(np.abs(np.array(heard) - truth)) <= 0.01
    assert len(verdict["track"]["centroid"]) == len(clip.frames)


def test_mismatched_prompt_lowers_adherence(ball):
    clip, verdict = ball
    prompted = metrics.prompted_attributes(clip.truth.spec)
    assert metrics.video_adherence(verdict, prompted)["score"] == 1.0
    assert metrics.audio_adherence(verdict, prompted)["score"] == 1.0
    wrong = dict(prompted, color="blue", background="desert")
    assert metrics.video_adherence(verdict, wrong)["score"] == pytest.approx(5 / 7)
    assert metrics.audio_adherence(verdict, dict(prompted, weather="rain", music="upbeat"))["score"] == pytest.approx(1 / 3)


def test_audio_shifted_by_200_ms_is_reported(ball):
    clip, verdict = ball
    assert metrics.event_sync(verdict, clip.fps)["within_one_frame"] == 1.0
    shift = int(0.2 * SR)
    late = np.concatenate([np.zeros(shift, np.float32), clip.audio[:-shift]])
    shifted = judge.judge_clip(clip.frames, late, clip.fps, SR)
    sync = metrics.event_sync(shifted, clip.fps)
    assert sync["median_abs_offset_ms"] == pytest.approx(200, abs=1000 / clip.fps / 2 + 5)
    assert sync["within_one_frame"] == 0.0


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"subject": SubjectSpec("car", "blue", "driving", "left", "fast"), "camera": "pan left"}, {"camera": "pan left"}),
        ({"subject": SubjectSpec("person", "yellow", "walking", "left"), "weather": "rain"}, {"weather": "rain", "ambience": "rain"}),
        ({"weather": "thunderstorm", "background": "night"}, {"weather": "thunderstorm", "ambience": "thunderstorm"}),
        ({"weather": "waterfall", "background": "beach", "camera": "zoom in"}, {"weather": "waterfall", "camera": "zoom in"}),
        ({"music": "upbeat", "background": "city intersection"}, {"music": "upbeat"}),
        ({"music": "calm piano", "background": "desert"}, {"music": "calm piano"}),
    ],
)
def test_verdict_recovers_attributes(changes, expected):
    clip = _clip(**changes)
    verdict = judge.judge_clip(clip.frames, clip.audio, clip.fps, clip.sample_rate)
    spec = clip.truth.spec
    assert verdict["background"] == spec.background
    assert verdict["subject"]["kind"] == spec.subject.kind and verdict["subject"]["color"] == spec.subject.color
    assert verdict["subject"]["direction"] == spec.subject.direction
    for key, value in expected.items():
        assert verdict[key] == value


def test_the_subject_kind_vote_breaks_ties_by_order_not_by_hash_seed():
    # a set of the two kinds iterates in one order per process: one of these two failed under max(set(...))
    assert judge.majority(["ball", None, "car", "car", "ball"]) == "ball"
    assert judge.majority(["car", "ball", None, "ball", "car"]) == "car"
    assert judge.majority(["car", "ball", "ball"]) == "ball" and judge.majority([None, None]) is None
