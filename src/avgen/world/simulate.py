"""The simulation of one clip: the single source of truth that drives the picture, the sound and the ground truth.

World model (normalized, resolution-free)
-----------------------------------------
- x to the right, y down, in *view widths*: at zoom 1 the frame shows a 1 x 1 window of the world.
- The world is a horizontal strip, periodic in x with circumference WORLD_WIDTH (4 view widths), so the
  camera can pan or track forever. y in [0, 1]: sky at the top, the ground below the horizon.
- Camera: `cam_x` (world x of the frame centre) and `zoom` z. The zoom is about the screen point
  (0.5, ZOOM_CENTER_Y). World -> pixels at resolution R:
      u = R * (0.5 + (x - cam_x) * z)        v = R * (ZOOM_CENTER_Y + (y - ZOOM_CENTER_Y) * z)
- Subjects stand on a ground line: the main one at y = MAIN_GROUND_Y at scale 1, the optional second one
  farther away at y = SECOND_GROUND_Y at scale SECOND_SCALE (smaller and higher up in the frame).
- Subjects keep moving for the whole clip. So that they stay analyzable, a subject that leaves the view
  on one side re-enters from the other: its offset from the camera wraps around the visible width plus
  its own width (it is fully out of view at the seam, so it never pops). A tracking camera follows the
  main subject, which then never wraps. Starting positions are chosen so the main subject crosses the
  view as little as possible (it starts on the side it moves away from).

Time
----
Everything is a function of continuous time. Events (ball floor contacts, foot landings, lightning
flashes, thunder onsets, engine start/stop) carry exact times in seconds (not snapped to frames): the
synthesizer places sounds at those times. Frame i is shown during [i/fps, (i+1)/fps) (clock.py) and depicts
the world at the middle of that interval, (i + 0.5) / fps, except that a frame whose interval contains a
visual event of a subject shows that subject at the event time (the ball squashed on the floor, the legs
at full stride): every visual event is seen on the frame containing it, and its neighbours are at least
half a frame away from it (the ball visibly off the floor).

Motion (speeds in view widths per second, each jittered by +-10 % per clip)
-------------------------------------------------------------------------
- ball bouncing: drifts at 0.06 while bouncing under gravity 3.75; "steady" bounces (restitution 1,
  apex 0.19-0.30) or "decaying" bounces (restitution 0.72-0.85, relaunched to apex 0.30 when a bounce
  would last less than MIN_BOUNCE_PERIOD = 0.45 s). Contacts are >= 0.45 s apart (>= 3 frames at 8 fps).
  Contact strength = impact speed / maximum impact speed (in [0, 1]).
- ball rolling: 0.09 along the ground, no contacts.
- person walking: 0.06, 1.6-2.0 footsteps per second (a footstep event at every foot landing).
- car: slow 0.06, fast 0.16. Speed profile "cruise" (50 %), "start" (at rest, engine off, then the engine
  starts and the car accelerates; 20 %), "stop" (decelerates to rest and the engine stops; 20 %), or
  "start-stop" (10 %). engine_start / engine_stop events are emitted only when that happens inside the
  clip. Between them the engine runs; at rest it is off (silent).
- camera: static; pan left/right at PAN_SPEED = 0.12 view widths/s (pan left: cam_x decreases, content
  moves right; clear of every subject speed, so that a subject moving with the pan still drifts across
  the view at >= 0.02 and a pan never looks like a tracking shot); zoom in: z = ZOOM_END ** (t / duration) (1 -> 1.6); tracking: cam_x = main subject x.
- lightning (thunderstorm only): about one flash per 4 s (at least one), >= 1.25 s apart, inside
  [0.3, duration - 0.5]; a thunder onset at each flash time.

Independent random streams (keyed by component, all from spec.seed) keep edit pairs consistent: changing
the weather does not move the subjects, changing a colour changes nothing else.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

from .spec import ClipSpec, Event, GroundTruth, SubjectSpec

WORLD_WIDTH = 4.0
MAIN_GROUND_Y = 0.86
SECOND_GROUND_Y = 0.66
SECOND_SCALE = 0.6
ZOOM_CENTER_Y = 0.75
ZOOM_END = 1.6
PAN_SPEED = 0.12
GRAVITY = 3.75
MAX_BOUNCE_HEIGHT = 0.30
MAX_IMPACT_SPEED = float(np.sqrt(2 * GRAVITY * MAX_BOUNCE_HEIGHT))  # 1.5 view widths/s
MIN_BOUNCE_PERIOD = 0.45
SPEED = {"bouncing": 0.06, "rolling": 0.09, "walking": 0.06, "slow": 0.06, "fast": 0.16}
BALL_RADIUS = 0.06
LEG_HALF_THICK = 0.011
# Half widths (scale 1) used for wrapping around the view: a subject is fully out of view at the seam.
HALF_WIDTH = {"ball": 0.075, "car": 0.13, "person": 0.08}


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent generator per component (crc32 of the name, never Python's salted hash())."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


def _integrate_linear(kt: np.ndarray, kv: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Exact integral from kt[0] to t of the piecewise-linear function through knots (kt, kv)."""
    cum = np.concatenate([[0.0], np.cumsum(np.diff(kt) * (kv[1:] + kv[:-1]) / 2)])
    k = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 2)
    dt = t - kt[k]
    slope = (kv[k + 1] - kv[k]) / (kt[k + 1] - kt[k])
    return cum[k] + kv[k] * dt + 0.5 * slope * dt**2


@dataclass
class Track:
    """The continuous-time motion of one subject.

    The anchor is the bottom-centre of the subject on its ground line; x(t) is its world x.
    Speed is piecewise linear through the knots (knots_t, knots_v) and never negative; `sign` is the
    direction (+1 right, -1 left).
    """

    subject: SubjectSpec
    index: int  # 0 main, 1 second
    scale: float
    ground_y: float
    sign: int
    x0: float
    knots_t: np.ndarray
    knots_v: np.ndarray
    bounce_starts: np.ndarray | None = None  # ball bouncing: time of each floor contact (first one < 0)
    bounce_speeds: np.ndarray | None = None  # ball bouncing: upward speed right after each contact
    step_rate: float = 0.0  # person: footsteps per second
    step_phase: float = 0.0  # person: a footstep whenever step_rate * t + step_phase is an integer
    engine_on: tuple[float, float] = (0.0, 0.0)  # car: the engine runs (and the car moves) in this interval

    def speed(self, t) -> np.ndarray:
        return np.interp(t, self.knots_t, self.knots_v)

    def x(self, t) -> np.ndarray:
        return self.x0 + self.sign * _integrate_linear(self.knots_t, self.knots_v, np.asarray(t, float))

    def lift(self, t) -> np.ndarray:
        """Height of the ball's bottom above the ground (0 for anything not bouncing)."""
        t = np.asarray(t, float)
        if self.bounce_starts is None:
            return np.zeros_like(t)
        k = np.searchsorted(self.bounce_starts, t, side="right") - 1
        tau = t - self.bounce_starts[k]
        return np.maximum(self.bounce_speeds[k] * tau - 0.5 * GRAVITY * tau**2, 0.0)

    def step(self, t) -> np.ndarray:
        """Gait phase: integer at every foot landing."""
        return self.step_rate * np.asarray(t, float) + self.step_phase


@dataclass
class SubjectFrames:
    """Per-frame state of one subject, shape (F,) each. `dx` is the anchor's wrapped offset from the
    camera in world units; `lift` the bounce height; `contact` whether the frame shows a ball contact
    (drawn squashed); `step` the gait phase; `box` (F, 4) the subject's box in world units relative to
    the anchor (x0, y0, x1, y1), already scaled."""

    times: np.ndarray
    dx: np.ndarray
    lift: np.ndarray
    contact: np.ndarray
    step: np.ndarray
    box: np.ndarray


@dataclass
class Simulation:
    spec: ClipSpec
    frame_times: np.ndarray  # (F,) (i + 0.5) / fps, the time each frame depicts
    cam_x: np.ndarray  # (F,) world x of the frame centre
    zoom: np.ndarray  # (F,)
    tracks: list[Track]  # main first
    frames: list[SubjectFrames]  # per track
    flashes: np.ndarray  # (n,) lightning / thunder times in seconds
    flash_strength: np.ndarray  # (n,) in [0.6, 1]
    events: list[Event]

    @property
    def first_frame(self) -> int:
        """Index in the clip of this simulation's first frame: 0, or the start of a `window`."""
        return int(round(self.frame_times[0] * self.spec.fps - 0.5)) if len(self.frame_times) else 0

    def window(self, start: int, stop: int) -> Simulation:
        """The same clip seen through frames start..stop-1 only: every per-frame array sliced, the rest shared.
        render_frames of it equals render_frames of the whole clip sliced, at (stop - start) / F of the cost
        (the autoencoder trains on 16-frame crops of 32-96-frame clips)."""
        if not 0 <= start < stop <= len(self.frame_times):
            raise ValueError(f"window {start}..{stop} is not within the clip's {len(self.frame_times)} frames")
        cut = slice(start, stop)
        frames = [SubjectFrames(f.times[cut], f.dx[cut], f.lift[cut], f.contact[cut], f.step[cut], f.box[cut]) for f in self.frames]
        return replace(self, frame_times=self.frame_times[cut], cam_x=self.cam_x[cut], zoom=self.zoom[cut], frames=frames)

    def to_pixels(self, dx: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(camera-relative world x, world y) -> pixel coordinates (u, v), per frame (broadcast on axis 0)."""
        R = self.spec.resolution
        z = self.zoom.reshape((-1,) + (1,) * (np.ndim(dx) - 1))
        return R * (0.5 + dx * z), R * (ZOOM_CENTER_Y + (y - ZOOM_CENTER_Y) * z)


def subject_box(kind: str, scale: float, lift: np.ndarray, contact: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Box (F, 4) of a subject relative to its anchor, in world units: the exact bounds of the shapes that
    render.py draws (ball ellipse, car body+wheels+cabin, person head..feet)."""
    F = len(lift)
    if kind == "ball":
        rx = np.where(contact, 1.2 * BALL_RADIUS, BALL_RADIUS)
        ry = np.where(contact, BALL_RADIUS / 1.2, BALL_RADIUS)
        box = np.stack([-rx, -2 * ry - lift / scale, rx, -lift / scale], axis=1)
    elif kind == "car":
        box = np.tile([-0.13, -0.118, 0.13, 0.0], (F, 1))
    else:
        pose = person_pose(step)
        feet = np.abs(pose["foot_x"]).max(axis=0) + LEG_HALF_THICK
        box = np.stack([-np.maximum(0.075, feet), -0.34 - pose["bob"], np.maximum(0.075, feet), np.zeros(F)], axis=1)
    return box * scale


def person_pose(step: np.ndarray) -> dict[str, np.ndarray]:
    """Gait pose from the phase (F,): feet x (2, F) relative to the hips, feet lift (2, F), body bob (F,).
    At a landing (integer phase) the feet are at full stride (+-0.055) and the body is at its lowest."""
    c = np.cos(np.pi * step)
    foot_x = np.stack([0.055 * c, -0.055 * c])
    swing = 0.03 * np.sin(np.pi * (step % 1.0))
    odd = (np.floor(step) % 2).astype(bool)  # which leg swings alternates every step
    lift = np.stack([np.where(odd, swing, 0.0), np.where(odd, 0.0, swing)])
    bob = 0.01 * (1 - np.abs(c))
    return {"foot_x": foot_x, "lift": lift, "bob": bob}


def _make_track(spec: ClipSpec, subject: SubjectSpec, index: int, rng: np.random.Generator) -> Track:
    T = spec.duration
    sign = 1 if subject.direction == "right" else -1
    key = subject.speed if subject.kind == "car" else subject.motion
    v = SPEED[key] * rng.uniform(0.9, 1.1)
    knots_t, knots_v = np.array([-1.0, T + 1.0]), np.array([v, v])
    track = Track(subject, index, 1.0 if index == 0 else SECOND_SCALE,
                  MAIN_GROUND_Y if index == 0 else SECOND_GROUND_Y, sign, 0.0, knots_t, knots_v)
    if subject.kind == "car":
        mode = rng.choice(["cruise", "start", "stop", "start-stop"], p=[0.5, 0.2, 0.2, 0.1])
        ramp = min(1.0 if subject.speed == "slow" else 1.5, 0.2 * T)  # seconds to reach cruise speed / to stop
        t, vs = [-1.0], [v]
        t_start, t_stop = -1.0, T + 1.0
        if mode in ("start", "start-stop"):
            t_start = rng.uniform(0.1, 0.25) * T
            t, vs = [-1.0, t_start, t_start + ramp], [0.0, 0.0, v]
        if mode in ("stop", "start-stop"):
            t_stop = rng.uniform(0.7, 0.85) * T
            t, vs = t + [t_stop - ramp, t_stop], vs + [v, 0.0]
        t, vs = t + [T + 1.0], vs + [vs[-1]]
        track.knots_t, track.knots_v = np.array(t), np.array(vs)
        track.engine_on = (t_start, t_stop)
    elif subject.motion == "bouncing":
        steady = rng.random() < 0.5
        restitution = 1.0 if steady else rng.uniform(0.72, 0.85)
        u = MAX_IMPACT_SPEED * (rng.uniform(0.8, 1.0) if steady else 1.0)
        starts, speeds = [-rng.uniform(0.0, 3.0)], [u]
        while starts[-1] < T + 1.0:
            starts.append(starts[-1] + 2 * speeds[-1] / GRAVITY)
            nxt = speeds[-1] * restitution
            speeds.append(nxt if 2 * nxt / GRAVITY >= MIN_BOUNCE_PERIOD else MAX_IMPACT_SPEED)
        track.bounce_starts, track.bounce_speeds = np.array(starts), np.array(speeds)
    elif subject.kind == "person":
        track.step_rate = rng.uniform(1.6, 2.0)
        track.step_phase = rng.uniform(0.0, 1.0)
    return track


def _subject_events(track: Track, T: float) -> list[Event]:
    i = track.index
    if track.bounce_starts is not None:
        starts, speeds = track.bounce_starts, track.bounce_speeds
        keep = (starts >= 0) & (starts < T)
        k = np.nonzero(keep)[0]  # incoming speed at contact k is the launch speed of flight k-1
        return [Event("contact", float(starts[j]), float(speeds[j - 1] / MAX_IMPACT_SPEED), i) for j in k]
    if track.subject.kind == "person":
        n = np.arange(np.ceil(track.step_phase), np.ceil(track.step_rate * T + track.step_phase))
        times = (n - track.step_phase) / track.step_rate
        return [Event("footstep", float(t), 1.0, i) for t in times if 0 <= t < T]
    if track.subject.kind == "car":
        on, off = track.engine_on
        return [Event(kind, float(x), 1.0, i) for kind, x in (("engine_start", on), ("engine_stop", off)) if 0 <= x < T]
    return []


def _flashes(spec: ClipSpec) -> tuple[np.ndarray, np.ndarray]:
    if spec.weather != "thunderstorm":
        return np.zeros(0), np.zeros(0)
    rng = stream(spec.seed, "lightning")
    lo, hi = 0.3, spec.duration - 0.5
    if hi <= lo:  # clips shorter than 0.8 s
        lo, hi = 0.25 * spec.duration, 0.75 * spec.duration
    n = max(1, int(round((hi - lo) / 4.0)))
    slot = (hi - lo) / n  # one flash per slot, in its middle half: >= slot / 2 apart
    times = lo + slot * (np.arange(n) + rng.uniform(0.25, 0.75, n))
    return times, rng.uniform(0.6, 1.0, n)


def simulate(spec: ClipSpec) -> Simulation:
    """Everything that moves or happens in the clip, from the spec alone."""
    F, T, fps = spec.num_frames, spec.duration, spec.fps
    t = (np.arange(F) + 0.5) / fps  # the middle of each frame's interval
    subjects = [spec.subject] + ([spec.second] if spec.second is not None else [])
    tracks = [_make_track(spec, s, i, stream(spec.seed, f"subject{i}")) for i, s in enumerate(subjects)]

    # The camera starts at a random place in the world. Start positions relative to it: the main subject
    # starts on the side it moves away from, so that it crosses as little of the view as possible
    # (limited so it stays visible under the zoom); a tracked main subject starts at the centre.
    cam0 = stream(spec.seed, "camera").uniform(0.0, WORLD_WIDTH)
    pan = {"pan left": -PAN_SPEED, "pan right": PAN_SPEED}.get(spec.camera, 0.0)
    tracking = spec.camera == "tracking"
    for track in tracks:
        rng = stream(spec.seed, f"start{track.index}")
        if track.index == 0:
            travel = float(track.x(T) - track.x(0.0)) - pan * T  # on screen, over the clip
            limit = 0.2 if spec.camera == "zoom in" else 0.3
            start = 0.0 if tracking else np.clip(-travel / 2, -limit, limit) + rng.uniform(-0.05, 0.05)
        else:
            start = rng.uniform(-0.4, 0.4)
        track.x0 = cam0 + start
    cam_x = tracks[0].x(t) if tracking else cam0 + pan * t
    zoom = ZOOM_END ** (t / T) if spec.camera == "zoom in" else np.ones(F)

    flashes, flash_strength = _flashes(spec)
    events = [e for tr in tracks for e in _subject_events(tr, T)]
    events += [Event("flash", float(x), float(s), -1) for x, s in zip(flashes, flash_strength)]
    events += [Event("thunder", float(x), float(s), -1) for x, s in zip(flashes, flash_strength)]
    events.sort(key=lambda e: (e.time, e.kind, e.subject))

    frames = []
    for track in tracks:
        times = t.copy()
        contact = np.zeros(F, bool)
        for e in events:  # a frame containing a visual event of this subject shows it at the event time
            if e.subject == track.index and e.kind in ("contact", "footstep"):
                i = min(int(np.floor(e.time * fps + 1e-9)), F - 1)
                times[i] = e.time
                contact[i] = e.kind == "contact"
        lift = track.lift(times)
        lift[contact] = 0.0
        step = track.step(times)
        box = subject_box(track.subject.kind, track.scale, lift, contact, step)
        # Wrap the camera-relative offset into [-H, H): H = visible half width + the subject's half width.
        H = 0.5 / zoom + HALF_WIDTH[track.subject.kind] * track.scale + 0.01
        dx = track.x(times) - cam_x
        if not (track.index == 0 and tracking):
            dx = np.mod(dx + H, 2 * H) - H
        frames.append(SubjectFrames(times, dx, lift, contact, step, box))

    return Simulation(spec, t, cam_x, zoom, tracks, frames, flashes, flash_strength, events)


def ground_truth(sim: Simulation) -> GroundTruth:
    """The exact ground truth in pixels of the rendered resolution. centroid = centre of the box;
    visible = at least half of the box area inside the frame. Camera offset = (cam_x - cam_x[0]) * R
    (positive: the view moved right, content moved left), zoom relative to frame 0."""
    R = sim.spec.resolution

    def boxes(k: int) -> np.ndarray:
        fr, tr = sim.frames[k], sim.tracks[k]
        u0, v0 = sim.to_pixels(fr.dx + fr.box[:, 0], tr.ground_y + fr.box[:, 1])
        u1, v1 = sim.to_pixels(fr.dx + fr.box[:, 2], tr.ground_y + fr.box[:, 3])
        return np.stack([u0, v0, u1, v1], axis=1)

    box = boxes(0)
    centroid = (box[:, :2] + box[:, 2:]) / 2
    inside = np.clip(np.minimum(box[:, 2:], R) - np.maximum(box[:, :2], 0), 0, None)
    visible = inside.prod(axis=1) >= 0.5 * (box[:, 2:] - box[:, :2]).prod(axis=1)
    offset = np.stack([(sim.cam_x - sim.cam_x[0]) * R, np.zeros_like(sim.cam_x)], axis=1)
    second = boxes(1) if len(sim.tracks) > 1 else None
    return GroundTruth(
        spec=sim.spec,
        centroid=centroid.tolist(),
        box=box.tolist(),
        visible=[bool(x) for x in visible],
        camera_offset=offset.tolist(),
        camera_zoom=(sim.zoom / sim.zoom[0]).tolist(),
        events=list(sim.events),
        second_centroid=None if second is None else ((second[:, :2] + second[:, 2:]) / 2).tolist(),
        second_box=None if second is None else second.tolist(),
    )
