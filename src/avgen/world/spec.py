"""The world's vocabulary and the specification of one clip (the shared contract of the world).

Everything a clip can be is named here: palette, backgrounds, subjects and their motions, weather,
music, camera moves, the held-out subject-colour pairs, and the event kinds of the ground truth.
The renderer (`render.py`), the synthesizer (`synth.py`), the captions (`captions.py`), the edit pairs
(`edits.py`) and the judge (`judge/`) all read these names from here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

# Exact sRGB of the palette. Subjects are drawn flat in these colours with a 1-px dark outline.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 215, 40),
    "green": (40, 170, 70),
    "blue": (40, 90, 220),
    "purple": (150, 60, 200),
    "white": (240, 240, 240),
}
COLORS: tuple[str, ...] = tuple(PALETTE)

BACKGROUNDS: tuple[str, ...] = ("grassy field", "beach", "desert", "night", "city intersection")
SUBJECTS: tuple[str, ...] = ("ball", "car", "person")
# Motion verbs a subject can do. The ball bounces or rolls; the car drives; the person walks.
MOTIONS: dict[str, tuple[str, ...]] = {"ball": ("bouncing", "rolling"), "car": ("driving",), "person": ("walking",)}
DIRECTIONS: tuple[str, ...] = ("left", "right")
# Only the car has a speed attribute ("drives slowly" / "drives fast").
SPEEDS: tuple[str, ...] = ("slow", "fast")
WEATHERS: tuple[str, ...] = ("clear", "rain", "thunderstorm", "waterfall")
MUSICS: tuple[str, ...] = ("none", "calm piano", "upbeat")
CAMERAS: tuple[str, ...] = ("static", "pan left", "pan right", "zoom in", "tracking")

# Never in any training clip or edit target (docs/world.md, "Held-out sets"), to measure compositional generalisation.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset({("car", "purple"), ("ball", "orange"), ("person", "green")})

# Ground-truth event kinds and which sense shows them.
VISUAL_EVENTS: tuple[str, ...] = ("contact", "footstep", "flash")  # ball floor contact, foot landing, lightning
AUDIO_EVENTS: tuple[str, ...] = ("contact", "footstep", "thunder", "engine_start", "engine_stop")

WORLD_FPS: tuple[int, ...] = (8, 12, 16, 24)
MAX_DURATION_S: float = 16.0
DEFAULT_SAMPLE_RATE: int = 16_000


def is_held_out(kind: str, color: str) -> bool:
    return (kind, color) in HELD_OUT_PAIRS


@dataclass(frozen=True)
class SubjectSpec:
    """One subject. `speed` is "slow"/"fast" for the car and None for the ball and the person."""

    kind: str
    color: str
    motion: str
    direction: str
    speed: str | None = None

    def __post_init__(self):
        if self.kind not in SUBJECTS:
            raise ValueError(f"subject kind must be one of {SUBJECTS}; got {self.kind!r}")
        if self.color not in PALETTE:
            raise ValueError(f"subject colour must be one of {COLORS}; got {self.color!r}")
        if self.motion not in MOTIONS[self.kind]:
            raise ValueError(f"a {self.kind} moves by one of {MOTIONS[self.kind]}; got {self.motion!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}; got {self.direction!r}")
        if self.kind == "car" and self.speed not in SPEEDS:
            raise ValueError(f"a car's speed must be one of {SPEEDS}; got {self.speed!r}")
        if self.kind != "car" and self.speed is not None:
            raise ValueError(f"only a car has a speed; got speed={self.speed!r} for a {self.kind}")


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines a clip: same spec (seed included) -> bit-identical frames and audio.

    `second` is an optional second subject (a different kind from the main one), drawn smaller and
    farther away; the main subject is the one the judge reports.
    """

    subject: SubjectSpec
    background: str = "grassy field"
    weather: str = "clear"
    music: str = "none"
    camera: str = "static"
    second: SubjectSpec | None = None
    resolution: int = 64
    fps: int = 24
    duration: float = 10.0
    sample_rate: int = DEFAULT_SAMPLE_RATE
    seed: int = 0

    def __post_init__(self):
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}; got {self.background!r}")
        if self.weather not in WEATHERS:
            raise ValueError(f"weather must be one of {WEATHERS}; got {self.weather!r}")
        if self.music not in MUSICS:
            raise ValueError(f"music must be one of {MUSICS}; got {self.music!r}")
        if self.camera not in CAMERAS:
            raise ValueError(f"camera must be one of {CAMERAS}; got {self.camera!r}")
        if self.second is not None and self.second.kind == self.subject.kind:
            raise ValueError("the second subject must be of a different kind from the main one")
        if not (isinstance(self.resolution, int) and 16 <= self.resolution <= 1024):
            raise ValueError(f"resolution must be an int in [16, 1024]; got {self.resolution!r}")
        if self.fps not in WORLD_FPS:
            raise ValueError(f"the world renders at fps in {WORLD_FPS}; got {self.fps!r}")
        if not (0 < self.duration <= MAX_DURATION_S) or abs(self.duration * self.fps - round(self.duration * self.fps)) > 1e-6:
            raise ValueError(
                f"duration must be in (0, {MAX_DURATION_S}] s and a whole number of frames at {self.fps} fps; "
                f"got {self.duration!r}"
            )
        if not (isinstance(self.sample_rate, int) and 8000 <= self.sample_rate <= 48000):
            raise ValueError(f"sample_rate must be an int in [8000, 48000]; got {self.sample_rate!r}")

    @property
    def num_frames(self) -> int:
        return round(self.duration * self.fps)

    def has_held_out_pair(self) -> bool:
        subjects = [self.subject] + ([self.second] if self.second else [])
        return any(is_held_out(s.kind, s.color) for s in subjects)

    def replace(self, **changes) -> "ClipSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClipSpec":
        d = dict(d)
        d["subject"] = SubjectSpec(**d["subject"])
        if d.get("second") is not None:
            d["second"] = SubjectSpec(**d["second"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def sample_subject(rng: np.random.Generator, kind: str | None = None, held_out: bool = False) -> SubjectSpec:
    """A random subject. held_out=False never returns a held-out pair; held_out=True always does."""
    if held_out:
        pairs = sorted(HELD_OUT_PAIRS)
        if kind is not None:
            pairs = [p for p in pairs if p[0] == kind]
        kind, color = pairs[rng.integers(len(pairs))]
    else:
        kind = kind or SUBJECTS[rng.integers(len(SUBJECTS))]
        colors = [c for c in COLORS if not is_held_out(kind, c)]
        color = colors[rng.integers(len(colors))]
    motions = MOTIONS[kind]
    motion = motions[rng.integers(len(motions))]
    direction = DIRECTIONS[rng.integers(2)]
    speed = SPEEDS[rng.integers(2)] if kind == "car" else None
    return SubjectSpec(kind=kind, color=color, motion=motion, direction=direction, speed=speed)


def sample_spec(
    rng: np.random.Generator,
    *,
    held_out: bool = False,
    second_subject_prob: float = 0.15,
    resolution: int = 64,
    fps: int | None = None,
    duration: float | None = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
) -> ClipSpec:
    """A random clip. Training splits use held_out=False, which never yields a held-out pair
    (neither as the main nor as the second subject). fps/duration default to one of Movie Gen's
    two options, (10 s, 24 fps) or (16 s, 16 fps)."""
    subject = sample_subject(rng, held_out=held_out)
    second = None
    if rng.random() < second_subject_prob:
        other_kinds = [k for k in SUBJECTS if k != subject.kind]
        second = sample_subject(rng, kind=other_kinds[rng.integers(len(other_kinds))], held_out=False)
    if fps is None and duration is None:
        duration, fps = ((10.0, 24), (16.0, 16))[rng.integers(2)]
    elif fps is None:
        fps = WORLD_FPS[rng.integers(len(WORLD_FPS))]
    elif duration is None:
        duration = 10.0
    return ClipSpec(
        subject=subject,
        background=BACKGROUNDS[rng.integers(len(BACKGROUNDS))],
        weather=WEATHERS[rng.integers(len(WEATHERS))],
        music=MUSICS[rng.integers(len(MUSICS))],
        camera=CAMERAS[rng.integers(len(CAMERAS))],
        second=second,
        resolution=resolution,
        fps=int(fps),
        duration=float(duration),
        sample_rate=sample_rate,
        seed=int(rng.integers(2**31 - 1)),
    )


@dataclass
class Event:
    """One timed event of the ground truth. `time` in seconds from the clip start; `strength` in [0, 1]
    (impact speed for contacts, loudness for thunder...); `subject` is 0 (main) or 1 (second), -1 for
    weather events."""

    kind: str
    time: float
    strength: float = 1.0
    subject: int = 0


@dataclass
class GroundTruth:
    """Exact ground truth of one clip (JSON-serialisable through `to_dict`).

    Per-frame arrays have one entry per video frame. Image coordinates: x to the right, y down, in
    pixels of the rendered resolution, origin at the top-left corner of the top-left pixel.
    """

    spec: ClipSpec
    centroid: list[list[float]]  # (F, 2) main subject centre (x, y)
    box: list[list[float]]  # (F, 4) main subject box (x0, y0, x1, y1)
    visible: list[bool]  # (F,) main subject at least half inside the frame
    camera_offset: list[list[float]]  # (F, 2) camera offset (x, y) in pixels relative to frame 0
    camera_zoom: list[float]  # (F,) zoom factor relative to frame 0
    events: list[Event] = field(default_factory=list)
    second_centroid: list[list[float]] | None = None  # (F, 2) when there is a second subject
    second_box: list[list[float]] | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    def events_of(self, *kinds: str) -> list[float]:
        return sorted(e.time for e in self.events if e.kind in kinds)
