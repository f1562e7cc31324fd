"""Metrics against known values and synthetic cases (no rendering: fast)."""

import math

import numpy as np
import pytest

from avgen.world import metrics
from avgen.world.spec import ClipSpec, SubjectSpec

FPS, SR = 24, 16_000


def _verdict(**changes) -> dict:
    verdict = {
        "background": "beach",
        "subject": {"kind": "car", "color": "red", "motion": "driving", "direction": "left", "speed": "fast"},
        "camera": "static",
        "weather": "rain",
        "ambience": "rain",
        "music": "none",
        "subject_sounds": ["engine"],
        "visual_events": [],
        "audio_onsets": [],
        "track": {"centroid": [], "box": [], "color": [], "kind": []},
    }
    verdict.update(changes)
    return verdict


def test_psnr_known_values():
    a = np.full((2, 8, 8, 3), 100, np.uint8)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a, a + 1) == pytest.approx(20 * math.log10(255))  # MSE 1 -> 48.13 dB
    b = a.copy()
    b[:, :4] += 10  # error only in the top half: masking it out gives inf, keeping it gives MSE 100
    top = np.zeros((2, 8, 8), bool)
    top[:, :4] = True
    assert metrics.psnr(a, b, mask=~top) == math.inf
    assert metrics.psnr(a, b, mask=top) == pytest.approx(10 * math.log10(255**2 / 100))


def test_ssim_known_values():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    assert metrics.ssim(image, image) == pytest.approx(1.0)
    # Flat images: variances vanish, so SSIM is the luminance term (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1).
    c1 = (0.01 * 255) ** 2
    flat = np.full((16, 16), 100.0)
    assert metrics.ssim(flat, flat + 50) == pytest.approx((2 * 100 * 150 + c1) / (100**2 + 150**2 + c1))
    noisy = np.clip(image + rng.normal(0, 25, image.shape), 0, 255)
    assert 0.3 < metrics.ssim(image, noisy) < 0.95
    assert metrics.ssim(image, 255 - image) < 0


def _jumping_square(jump_frames, num_frames=96):
    """A square that stays still except for a jump at each of `jump_frames`: flow peaks exactly there."""
    frames = np.zeros((num_frames, 48, 48, 3), np.uint8)
    x = 4
    for i in range(num_frames):
        if i in jump_frames:
            x = 30 if x == 4 else 4
        frames[i, 16:28, x : x + 12] = 255
    return frames


def _clicks(times, duration, shift=0.0):
    rng = np.random.default_rng(1)
    audio = np.zeros(int(duration * SR))
    for t in times:
        start = int((t + shift) * SR)
        audio[start : start + 160] = 0.5 * rng.standard_normal(160)
    return audio


def test_av_align_is_one_when_aligned_and_low_when_not():
    jumps = [12, 30, 55, 80]
    frames = _jumping_square(jumps)
    times = np.array(jumps) / FPS
    np.testing.assert_allclose(metrics.video_peaks(frames, FPS), times)
    np.testing.assert_allclose(metrics.audio_peaks(_clicks(times, 4.0), SR), times, atol=0.5 / FPS)
    assert metrics.av_align(frames, _clicks(times, 4.0), FPS, SR) == 1.0
    assert metrics.av_align(frames, _clicks(times, 4.0, shift=0.2), FPS, SR) == 0.0
    assert metrics.av_align_score([0.5, 1.0], [0.5, 2.0, 3.0], FPS) == pytest.approx(1 / 4)


def test_event_sync_reports_the_shift():
    events = [{"kind": "contact", "time": t} for t in (0.5, 1.3, 2.2)]
    onsets = [{"kind": "impact", "time": t + 0.2} for t in (0.5, 1.3, 2.2)]
    sync = metrics.event_sync(_verdict(visual_events=events, audio_onsets=onsets), FPS)
    assert sync["median_abs_offset_ms"] == pytest.approx(200.0)
    assert sync["within_one_frame"] == 0.0
    onsets = [{"kind": "impact", "time": t + 0.02} for t in (0.5, 1.3, 2.2)] + [{"kind": "thunder", "time": 9.0}]
    sync = metrics.event_sync(_verdict(visual_events=events, audio_onsets=onsets), FPS)
    assert sync == {"events": 3, "median_abs_offset_ms": pytest.approx(20.0), "within_one_frame": 1.0}
    # A flash with no thunder at all is out of sync, not skipped.
    sync = metrics.event_sync(_verdict(visual_events=[{"kind": "flash", "time": 1.0}]), FPS)
    assert sync["within_one_frame"] == 0.0


def test_adherence_counts_prompted_attributes():
    spec = ClipSpec(SubjectSpec("car", "red", "driving", "left", "fast"), background="beach", weather="rain")
    prompted = metrics.prompted_attributes(spec)
    assert metrics.video_adherence(_verdict(), prompted) == {
        "hits": dict.fromkeys(("subject", "color", "background", "motion", "direction", "speed", "camera", "weather"), True),
        "score": 1.0,
    }
    wrong = _verdict(background="desert", subject={**_verdict()["subject"], "color": "blue"})
    result = metrics.video_adherence(wrong, prompted)
    assert result["score"] == pytest.approx(6 / 8) and not result["hits"]["color"]
    assert metrics.audio_adherence(_verdict(), prompted)["score"] == 1.0
    assert metrics.audio_adherence(_verdict(music="upbeat", subject_sounds=[]), prompted)["score"] == pytest.approx(1 / 3)
    # Unprompted attributes are not scored; speed only counts for a car.
    ball = {"subject": "ball", "color": "red", "motion": "rolling", "speed": "fast"}
    hits = metrics.video_adherence(_verdict(), ball)["hits"]
    assert set(hits) == {"subject", "color", "motion"}
    assert metrics.audio_adherence(_verdict(subject_sounds=[]), ball)["hits"]["subject_sound"]
    assert not metrics.audio_adherence(_verdict(subject_sounds=["impacts"]), ball)["hits"]["subject_sound"]


def test_diversity_and_consistency():
    track = lambda dx: {"centroid": [[10.0 + dx, 20.0]] * 4, "box": [None] * 4, "color": ["red"] * 3 + ["blue"], "kind": ["car"] * 4}  # noqa: E731
    a = _verdict(track=track(0), visual_events=[{"kind": "contact", "time": 1.0}])
    b = _verdict(track=track(32), visual_events=[{"kind": "contact", "time": 2.0}])
    assert metrics.diversity([a, a], FPS, 64) == {"trajectory": 0.0, "event_times": 0.0}
    assert metrics.diversity([a, b], FPS, 64) == {"trajectory": 0.5, "event_times": 1.0}
    frames = np.full((4, 8, 8, 3), 100, np.uint8)
    consistency = metrics.temporal_consistency(a, frames)
    assert consistency == {"color_stability": 0.75, "identity_stability": 1.0, "flicker": 0.0}


def test_preservation_masks_the_subject():
    source = np.full((3, 32, 32, 3), 80, np.uint8)
    edited = source.copy()
    edited[:, 10:14, 10:14] = 200  # the edited subject
    mask = metrics.subject_mask([(10, 10, 14, 14)] * 3, (32, 32))
    assert metrics.preservation_psnr(source, edited, ~mask) == math.inf
    assert metrics.preservation_psnr(source, edited, mask) < 20
    assert metrics.edit_success(_verdict(), "color", "red") and not metrics.edit_success(_verdict(), "weather", "clear")
