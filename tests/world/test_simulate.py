"""The simulation: exact events, camera and ground truth (no rendering: fast)."""

import json

import numpy as np
import pytest

from avgen.world.simulate import MIN_BOUNCE_PERIOD, ZOOM_END, ground_truth, simulate
from avgen.world.spec import CAMERAS, ClipSpec, SubjectSpec, sample_spec

BALL = SubjectSpec("ball", "red", "bouncing", "right")
PERSON = SubjectSpec("person", "yellow", "walking", "left")
CAR = SubjectSpec("car", "blue", "driving", "right", "fast")


def _spec(subject=BALL, **kw) -> ClipSpec:
    return ClipSpec(subject=subject, **{"duration": 6.0, **kw})


def test_deterministic_and_seed_dependent():
    a, b = ground_truth(simulate(_spec(seed=3))), ground_truth(simulate(_spec(seed=3)))
    assert a.to_dict() == b.to_dict()
    assert a.events_of("contact") != ground_truth(simulate(_spec(seed=4))).events_of("contact")


def test_ground_truth_complete_and_json(rng):
    for _ in range(10):
        spec = sample_spec(rng, second_subject_prob=0.5, duration=2.0)
        gt = ground_truth(simulate(spec))
        F = spec.num_frames
        assert np.shape(gt.centroid) == (F, 2) and np.shape(gt.box) == (F, 4)
        assert len(gt.visible) == F and np.shape(gt.camera_offset) == (F, 2) and len(gt.camera_zoom) == F
        assert (gt.second_box is not None) == (spec.second is not None)
        assert all(0 <= e.time < spec.duration and 0 <= e.strength <= 1 for e in gt.events)
        d = json.loads(json.dumps(gt.to_dict()))
        assert d["spec"] == spec.to_dict()


def test_ball_contacts_spaced_and_shown_on_their_frame():
    for seed in range(6):
        spec = _spec(seed=seed, fps=8)
        sim = simulate(spec)
        gt = ground_truth(sim)
        times = np.array(gt.events_of("contact"))
        assert len(times) >= 5 and np.all(np.diff(times) >= MIN_BOUNCE_PERIOD - 1e-9)
        bottom = np.array(gt.box)[:, 3]
        ground = bottom.max()
        for t in times:  # the frame containing the contact shows the ball on the ground, lowest around
            i = int(t * spec.fps)
            assert bottom[i] == pytest.approx(ground)
            assert all(bottom[j] < ground - 0.5 for j in (i - 1, i + 1) if 0 <= j < spec.num_frames)


def test_contact_strength_is_impact_speed():
    sim = simulate(_spec(seed=1, duration=16.0))
    tr = sim.tracks[0]
    for e in sim.events:
        before = tr.lift(np.array([e.time - 1e-4]))[0]  # falling: height ~ speed * 1e-4
        assert before / 1e-4 == pytest.approx(e.strength * 1.5, rel=1e-2)


def test_footsteps_periodic():
    sim = simulate(_spec(PERSON, seed=2))
    times = np.array([e.time for e in sim.events if e.kind == "footstep"])
    assert np.allclose(np.diff(times), 1 / sim.tracks[0].step_rate)


def test_car_engine_events_follow_speed():
    seen = set()
    for seed in range(40):
        sim = simulate(_spec(CAR, seed=seed, duration=10.0))
        tr = sim.tracks[0]
        on, off = tr.engine_on
        t = np.linspace(0, 10, 1001)
        moving = tr.speed(t) > 0
        assert np.all(moving == ((t > on) & (t < off)))
        kinds = tuple(e.kind for e in sim.events)
        seen.add(kinds)
        if on > 0:
            assert sim.events[0].kind == "engine_start" and sim.events[0].time == on
    assert {(), ("engine_start",), ("engine_stop",), ("engine_start", "engine_stop")} <= seen


def test_thunder_at_each_flash():
    sim = simulate(_spec(weather="thunderstorm", duration=16.0))
    flashes = [e.time for e in sim.events if e.kind == "flash"]
    assert len(flashes) >= 3 and flashes == [e.time for e in sim.events if e.kind == "thunder"]
    assert np.all(np.diff(flashes) >= 1.0)
    assert not [e for e in simulate(_spec(weather="rain")).events if e.kind in ("flash", "thunder")]


def test_cameras():
    R = 64
    gts = {c: ground_truth(simulate(_spec(PERSON, camera=c, seed=5))) for c in CAMERAS}
    for c in ("static", "zoom in"):
        assert np.all(np.array(gts[c].camera_offset) == 0)
    assert np.array(gts["pan left"].camera_offset)[-1, 0] < -0.2 * R  # view turns left
    assert np.array(gts["pan right"].camera_offset)[-1, 0] > 0.2 * R
    assert gts["zoom in"].camera_zoom[-1] == pytest.approx(ZOOM_END ** (1 - 1 / 144))
    tracked = np.array(gts["tracking"].centroid)[:, 0]
    assert np.all(np.abs(tracked - R / 2) < 1) and all(gts["tracking"].visible)
    assert np.array(gts["tracking"].camera_offset)[-1, 0] < -0.2 * R  # follows the person walking left


def test_edit_of_weather_or_colour_keeps_the_motion():
    spec = _spec(PERSON, seed=9, second=BALL)
    a = ground_truth(simulate(spec))
    for edit in (dict(weather="rain"), dict(background="night"), dict(subject=SubjectSpec("person", "red", "walking", "left"))):
        b = ground_truth(simulate(spec.replace(**edit)))
        assert a.centroid == b.centroid and a.second_box == b.second_box
        assert a.events_of("footstep", "contact") == b.events_of("footstep", "contact")


def test_main_subject_mostly_visible(rng):
    shares = [np.mean(ground_truth(simulate(sample_spec(rng))).visible) for _ in range(30)]
    assert np.mean(shares) > 0.8 and min(shares) > 0.5
