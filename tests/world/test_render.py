"""The renderer and render_clip: determinism, palette, resolution independence, visual signatures."""

import json

import numpy as np
import pytest

from avgen.clock import AVClock
from avgen.world import render_clip
from avgen.world.spec import BACKGROUNDS, PALETTE, WORLD_FPS, ClipSpec, SubjectSpec, sample_spec

BALL = SubjectSpec("ball", "red", "bouncing", "right")
CAR = SubjectSpec("car", "purple", "driving", "left", "slow")
PERSON = SubjectSpec("person", "green", "walking", "right")


def _spec(subject=BALL, **kw) -> ClipSpec:
    return ClipSpec(subject=subject, **{"duration": 2.0, **kw})


def _luma(frames):
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def test_render_clip_contract(rng):
    for fps in WORLD_FPS:
        spec = sample_spec(rng, fps=fps, duration=1.5, resolution=32, second_subject_prob=0.5)
        clip = render_clip(spec)
        F = spec.num_frames
        assert clip.frames.shape == (F, 32, 32, 3) and clip.frames.dtype == np.uint8
        assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1
        assert len(clip.audio) == AVClock(fps, spec.sample_rate).num_samples(F)
        assert np.abs(clip.audio).max() <= 1.0
        assert (clip.fps, clip.sample_rate) == (fps, spec.sample_rate)
        json.dumps(clip.truth.to_dict())


def test_bit_identical_for_same_spec_and_different_for_other_seed(rng):
    spec = sample_spec(rng, duration=2.0, second_subject_prob=1.0).replace(weather="thunderstorm", music="upbeat")
    a, b = render_clip(spec), render_clip(spec)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    c = render_clip(spec.replace(seed=spec.seed + 1))
    assert not np.array_equal(a.frames, c.frames) and not np.array_equal(a.audio, c.audio)


@pytest.mark.parametrize("subject", [BALL, CAR, PERSON])
def test_palette_only_on_subject(subject):
    spec = _spec(subject, background="grassy field", weather="rain", camera="pan right", second=SubjectSpec("ball" if subject.kind != "ball" else "car", "white", "rolling" if subject.kind != "ball" else "driving", "left", None if subject.kind != "ball" else "fast"))
    clip = render_clip(spec)
    color = np.array(PALETTE[subject.color])
    box = np.array(clip.truth.box)
    hits = np.all(clip.frames == color, axis=-1)  # (F, R, R)
    for f in np.nonzero(clip.truth.visible)[0]:
        ys, xs = np.nonzero(hits[f])
        assert len(ys) >= 8, f"frame {f}: subject colour missing"
        x0, y0, x1, y1 = box[f]
        assert xs.min() >= np.floor(x0) and xs.max() <= np.ceil(x1) and ys.min() >= np.floor(y0) and ys.max() <= np.ceil(y1)
    others = [c for c in PALETTE.values() if c not in (PALETTE[subject.color], PALETTE["white"])]
    assert not np.any(np.isin(clip.frames.reshape(-1, 3) @ [65536, 256, 1], np.array(others) @ [65536, 256, 1]))


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_same_scene_at_64_and_128(background):
    spec = _spec(PERSON, background=background, camera="zoom in", weather="waterfall", duration=1.0)
    lo = render_clip(spec).frames.astype(np.float32)
    hi = render_clip(spec.replace(resolution=128)).frames.astype(np.float32)
    down = hi.reshape(len(hi), 64, 2, 64, 2, 3).mean(axis=(2, 4))
    assert np.abs(down - lo).mean() < 10
    assert np.abs(down.mean(axis=(1, 2)) - lo.mean(axis=(1, 2))).max() < 6  # nearest-neighbour sampling of fine texture


def test_lightning_brightens_the_flash_frame():
    spec = _spec(weather="thunderstorm", duration=8.0, fps=12)
    clip = render_clip(spec)
    luma = _luma(clip.frames).mean(axis=(1, 2))
    flash_frames = {int(t * spec.fps) for t in clip.truth.events_of("flash")}
    for i in flash_frames:
        assert luma[i] - luma[i - 1] > 60
    calm = [luma[i] - luma[i - 1] for i in range(1, len(luma)) if i not in flash_frames and i - 1 not in flash_frames]
    assert max(calm) < 10


def test_pan_left_moves_content_right():
    spec = _spec(CAR, background="city intersection", camera="pan left", duration=2.0)
    frames = _luma(render_clip(spec).frames)
    a, b = frames[0, 40:], frames[-1, 40:]  # the road band; content should shift right by ~0.24 * 64 px
    errors = {s: np.abs(np.roll(a, s, axis=1)[:, 20:-20] - b[:, 20:-20]).mean() for s in range(-20, 21)}
    assert min(errors, key=errors.get) in (15, 16)  # 47 frames * 0.12 / 24 * 64 px = 15.0 px


def test_background_colour_statistics_differ():
    means = {bg: render_clip(_spec(background=bg, duration=0.5)).frames.reshape(-1, 3).mean(0) for bg in BACKGROUNDS}
    assert _luma(means["night"]) < 45
    names = list(means)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(means[a] - means[b]).max() > 15, (a, b)


def test_weather_visuals():
    base = render_clip(_spec(background="beach", duration=1.0)).frames
    rain = render_clip(_spec(background="beach", weather="rain", duration=1.0)).frames
    fall = render_clip(_spec(background="beach", weather="waterfall", duration=1.0)).frames
    assert _luma(rain).mean() < _luma(base).mean()
    band = np.concatenate([fall[:, :, :8], fall[:, :, -8:]], axis=2)  # the band is at one side
    side = fall[:, :, :8] if np.abs(fall[:, :, :8].astype(int) - base[:, :, :8]).mean() > 1 else fall[:, :, -8:]
    assert side[..., 2].mean() > 220 and np.abs(np.diff(side.astype(int), axis=0)).mean() > 2  # white-blue, flowing
    assert band.shape[2] == 16


@pytest.mark.parametrize("weather", ["clear", "rain", "thunderstorm", "waterfall"])
@pytest.mark.parametrize("subject", [BALL, CAR, PERSON], ids=["ball", "car", "person"])
def test_window_renders_the_same_frames_as_the_whole_clip(weather, subject):
    """A Simulation.window renders exactly the whole clip's frames start..stop-1 (the autoencoder's crops)."""
    from avgen.world import render_frames, simulate

    sim = simulate(_spec(subject, weather=weather, duration=8.0, fps=12, camera="pan left"))
    full = render_frames(sim)
    flashes = {int(t * 12) for t in sim.flashes}
    starts = [0, 37, len(full) - 16] + [min(max(0, i - 1), len(full) - 16) for i in flashes]  # windows that begin on or just before a flash
    for start in starts:
        np.testing.assert_array_equal(render_frames(sim.window(start, start + 16)), full[start : start + 16])
    assert weather != "thunderstorm" or flashes
    with pytest.raises(ValueError, match="not within"):
        sim.window(90, 100)
