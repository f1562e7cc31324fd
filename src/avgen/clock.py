"""The one place that knows how audio and video clocks relate.

Every conversion between video frames, seconds, audio samples and latent steps goes through
`AVClock`. Exact rational arithmetic (`fractions.Fraction`) is used so that, e.g., 240 frames at
24 fps and 16 kHz is exactly 160000 samples, and rounding happens in one documented place.

Conventions
-----------
- Frame `i` is shown during [i / fps, (i + 1) / fps); its timestamp is its start, i / fps.
- Audio sample `n` sits at time n / sample_rate.
- A clip of `num_frames` frames lasts num_frames / fps seconds and has exactly
  `num_samples(num_frames)` = round_half_up(num_frames * sample_rate / fps) audio samples.
- An audio latent step `j` covers samples [j * audio_hop, (j + 1) * audio_hop); its centre is
  (j + 0.5) * audio_hop / sample_rate seconds.
- A video latent step `k` covers frames [k * video_time_compression, (k + 1) * video_time_compression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

# Frame rates the muxer and the pipelines accept. 8/12/16/24 are the world's rates (Movie Gen trains at
# 16 and 24); 25 and 30 are the common rates of users' own videos.
SUPPORTED_FPS: tuple[int, ...] = (8, 12, 16, 24, 25, 30)

# The two clip options of Movie Gen: (duration in seconds, fps). The first is the default.
MOVIEGEN_DURATIONS: tuple[tuple[int, int], ...] = ((10, 24), (16, 16))


def _round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def check_fps(fps: float, name: str = "fps") -> int:
    """Return fps as an int if it is one of SUPPORTED_FPS, else raise a precise ValueError naming `name` (a
    command's flag, "--fps")."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, one of {SUPPORTED_FPS}; got {fps!r}")
    if not math.isfinite(float(fps)) or float(fps) not in SUPPORTED_FPS:
        raise ValueError(f"{name} must be one of {SUPPORTED_FPS}; got {fps!r}")
    return int(fps)


@dataclass(frozen=True)
class AVClock:
    """Relates video frames, seconds, audio samples and latent steps for one clip format.

    fps: video frames per second (one of SUPPORTED_FPS).
    sample_rate: audio samples per second.
    audio_hop: audio samples per audio-latent step (the audio autoencoder's total stride); 1 = raw.
    video_time_compression: video frames per video-latent step (the temporal autoencoder's stride).
    """

    fps: int
    sample_rate: int
    audio_hop: int = 1
    video_time_compression: int = 1

    def __post_init__(self):
        object.__setattr__(self, "fps", check_fps(self.fps))
        for name in ("sample_rate", "audio_hop", "video_time_compression"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")

    # --- frames <-> seconds -------------------------------------------------------------------
    def seconds(self, num_frames: int) -> Fraction:
        """Duration of `num_frames` frames, exactly."""
        return Fraction(int(num_frames), self.fps)

    def frames_for_duration(self, seconds: float) -> int:
        """Number of frames of a clip of `seconds` seconds (nearest integer, at least 1)."""
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"duration must be a positive number of seconds; got {seconds!r}")
        return max(1, _round_half_up(Fraction(seconds).limit_denominator(10_000) * self.fps))

    def frame_times(self, num_frames: int) -> np.ndarray:
        """Start time in seconds of every frame, shape (num_frames,)."""
        return np.arange(num_frames, dtype=np.float64) / self.fps

    def frame_at(self, seconds: float | np.ndarray) -> np.ndarray:
        """Index of the frame shown at `seconds` (floor), as int64."""
        return np.floor(np.asarray(seconds, dtype=np.float64) * self.fps + 1e-9).astype(np.int64)

    # --- frames <-> samples -------------------------------------------------------------------
    def num_samples(self, num_frames: int) -> int:
        """Exact audio length of a clip of `num_frames` frames (round half up)."""
        return _round_half_up(Fraction(int(num_frames) * self.sample_rate, self.fps))

    def samples_per_frame(self) -> Fraction:
        return Fraction(self.sample_rate, self.fps)

    def frame_of_sample(self, sample_index: int | np.ndarray) -> np.ndarray:
        """Index of the video frame shown while sample `sample_index` plays."""
        return (np.asarray(sample_index, dtype=np.int64) * self.fps) // self.sample_rate

    def sample_of_frame(self, frame_index: int | np.ndarray) -> np.ndarray:
        """First audio sample at or after the start of frame `frame_index`."""
        f = np.asarray(frame_index, dtype=np.int64)
        return -((-f * self.sample_rate) // self.fps)  # ceil(f * sr / fps)

    # --- latent steps -------------------------------------------------------------------------
    def audio_latent_steps(self, num_samples: int) -> int:
        """Audio latent steps needed to cover `num_samples` samples (the last one zero-padded)."""
        return -(-int(num_samples) // self.audio_hop)

    def audio_step_at(self, seconds: float | np.ndarray) -> np.ndarray:
        """Index of the audio latent step whose hop holds the sample played at `seconds` (floor), as int64."""
        return np.floor(np.asarray(seconds, dtype=np.float64) * self.sample_rate / self.audio_hop + 1e-9).astype(np.int64)

    def audio_latent_rate(self) -> Fraction:
        """Audio latent steps per second."""
        return Fraction(self.sample_rate, self.audio_hop)

    def video_latent_frames(self, num_frames: int) -> int:
        """Video latent steps covering `num_frames` frames (the last one padded)."""
        return -(-int(num_frames) // self.video_time_compression)

    def video_frame_for_audio_step(self, num_audio_steps: int, num_frames: int) -> np.ndarray:
        """For each audio latent step, the index of the video frame shown at its centre.

        Shape (num_audio_steps,), int64, clamped to [0, num_frames - 1]. This is how per-frame video
        features are resampled to the audio latent rate (nearest frame, no guessing).
        """
        centres = (np.arange(num_audio_steps, dtype=np.int64) * 2 + 1) * self.audio_hop  # 2x samples
        frames = (centres * self.fps) // (2 * self.sample_rate)
        return np.clip(frames, 0, max(0, num_frames - 1))

    def fit_audio(self, audio: np.ndarray, num_frames: int) -> np.ndarray:
        """Pad (with silence, at the end) or trim (the tail) audio of shape (..., S) to exactly
        `num_samples(num_frames)` samples, so the audio lasts exactly as long as the video."""
        return fit_samples(audio, self.num_samples(num_frames))


def fit_samples(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Audio (..., S) padded with silence at the end, or its tail trimmed, to exactly `num_samples` samples."""
    length = audio.shape[-1]
    if length >= num_samples:
        return audio[..., :num_samples]
    return np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, num_samples - length)])


def nearest_supported_fps(rate: Fraction) -> int:
    """The model clock for footage at `rate` frames per second: the SUPPORTED_FPS rate nearest to it, the higher
    on a tie (23.976 -> 24, 29.97 -> 30, 59.94 and 60 -> 30)."""
    return min(SUPPORTED_FPS, key=lambda fps: (abs(fps - Fraction(rate)), -fps))


@dataclass(frozen=True, eq=False)
class FrameTimes:
    """When each frame of a video file is on screen, exactly, in the ticks of its stream's time base: any constant
    or variable frame rate, any container (MKV and WebM count in milliseconds, MP4 in 1/15360 s, ...).

    pts: (F,) int64 start of every frame, ascending, counted from the first frame's (pts[0] = 0).
    time_base: seconds per tick.
    duration: ticks from the first frame's start to the end of the last one (its pts plus its own duration).
    The video lasts duration * time_base seconds; its sound has `num_samples` samples.
    """

    pts: np.ndarray
    time_base: Fraction
    duration: int

    def __post_init__(self):
        pts = np.asarray(self.pts, dtype=np.int64)
        if pts.ndim != 1 or not len(pts) or pts[0] != 0 or (np.diff(pts) <= 0).any() or self.duration <= pts[-1]:
            raise ValueError(f"frame times must start at 0, rise strictly and end after the last frame; got {pts[:8]}... ending at {self.duration}")
        object.__setattr__(self, "pts", pts)
        object.__setattr__(self, "time_base", Fraction(self.time_base))

    @property
    def num_frames(self) -> int:
        return len(self.pts)

    @property
    def seconds(self) -> Fraction:
        return self.duration * self.time_base

    @property
    def rate(self) -> Fraction:
        """Average frames per second, exactly (F / seconds)."""
        return self.num_frames / self.seconds

    def num_samples(self, sample_rate: int) -> int:
        """Samples of a sound exactly as long as the video (round half up)."""
        return _round_half_up(self.seconds * sample_rate)

    def on_clock(self, fps: int) -> np.ndarray:
        """The frames resampled onto a clock of `fps` frames per second that starts with the first frame: for each
        tick k (k / fps < seconds; ceil(seconds * fps) of them), the index of the frame that starts nearest to
        k / fps, the earlier on a tie. Shape (K,), int64, non-decreasing. Nearest, not the one on screen at k / fps:
        MKV and WebM round every pts to the millisecond, and a 30 fps frame at 67 ms for 66.67 would lose its tick
        to the frame before it. In exact integers: seconds = ticks * num / den, so times compare as ticks * num * fps
        against k * den."""
        num, den = self.time_base.numerator, self.time_base.denominator
        count = -(-self.duration * num * fps // den)  # ceil(seconds * fps)
        starts = self.pts * (num * fps)  # (F,) frame starts, in 1 / (den * fps) s
        ticks = np.arange(count, dtype=np.int64) * den  # (K,) tick times, the same unit
        before = np.searchsorted(starts, ticks, side="right") - 1  # the last frame that started at or before the tick
        after = np.minimum(before + 1, len(starts) - 1)
        return np.where(starts[after] - ticks < ticks - starts[before], after, before)
