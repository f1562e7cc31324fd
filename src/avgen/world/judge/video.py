"""The video half of the verdict, `judge_video`: the scene (scene.py) and the tracked subject (palette.py)
read together into the subject's kind, motion, direction and speed, the camera, the weather, and the
visual events (ball contacts, footsteps, flashes) (overview: avgen.world.judge)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from avgen.world.judge.palette import YCC, palette_masks, to_ycc, track_subject
from avgen.world.judge.scene import (
    KEYFRAME_S,
    RAIN_MIN_SHARE,
    STATIC_MAX_SPEED,
    TRACKING_MAX_DRIFT_PX,
    TRACKING_MAX_OFFSET,
    ZOOM_CENTER,
    classify_background,
    content_offsets,
    detect_flashes,
    rain_share,
    waterfall_side,
    zoom_factor,
)

# --- the subject's kind, motion and events (view widths at zoom 1; render.py / simulate.py) ----------
CAR_MIN_ASPECT = 1.8  # width / height of the palette region: car body+cabin 2.9, ball 1 (1.4 squashed), dress 0.9
PERSON_MAX_TAPER = 0.8  # mean row width of the top half / the bottom half: dress 0.63, ball 1
BOUNCE_MIN_RANGE = 0.06  # vertical travel of a bouncing ball's centre (>= 0.19 view), a rolling ball's is 0
FAST_MIN_SPEED = 0.105  # view widths/s: slow car 0.054..0.066, fast 0.144..0.176
CONTACT_MIN_PROMINENCE = 0.03  # a contact frame is this much lower (x R) than the frames around it
CONTACT_MIN_ASPECT = 1.3  # width / height of the ball: 1.44 squashed on a contact frame, else 1 (1.6 at 64 px)
CONTACT_FLOOR_TOL = 0.02  # x R: a squashed ball's bottom is on the floor, a flying one's >= 0.03 above
LEG_CONTRAST = 45.0  # luma: the outline (25) on any ground but night's, skin (199) on night's
LEG_WARMTH = 20.0  # red - blue above the row's: skin 80, rain streaks bluer than what they cover
GAIT_RATES = (1.55, 2.05)  # steps/s of a walk (simulate.py: 1.6-2.0)
GAIT_RATE_STEP = 0.002  # over a 16 s clip a rate error of 0.002 moves the last landing by 1/60 step
GAIT_PHASE_STEP = 0.01
GAIT_MIN_FRAMES = 6


def majority(labels: list) -> str | None:
    """The most frequent label that is not None; a tie goes to the label seen first. (Not max over a set:
    a set of strings iterates in an order that changes with PYTHONHASHSEED, so ties changed the verdict
    from one process to the next.)"""
    seen = [label for label in dict.fromkeys(labels) if label is not None]
    return max(seen, key=labels.count) if seen else None


def _kind_of(component: dict) -> str:
    if component["aspect"] >= CAR_MIN_ASPECT:
        return "car"
    return "person" if component["taper"] <= PERSON_MAX_TAPER else "ball"


def _plateau_peaks(values: np.ndarray, min_prominence: float) -> list[float]:
    """Frame positions of peaks of `values` (F,) (NaN = unknown), a flat top counted once at its middle."""
    filled = np.where(np.isnan(values), -np.inf, values)
    peaks, properties = signal.find_peaks(np.pad(filled, 1, constant_values=-np.inf), prominence=min_prominence, plateau_size=1)
    left, right = properties["left_edges"] - 1, properties["right_edges"] - 1  # back to unpadded indices
    # A peak needs a known frame on each side: the edge of a gap (subject lost) is no peak.
    known = (left >= 1) & (right <= values.size - 2)
    known[known] &= np.isfinite(filled[left[known] - 1]) & np.isfinite(filled[right[known] + 1])
    return [float(m) for m in ((left + right) / 2)[known]]


def _velocity(world_x: np.ndarray, fps: float, size: int) -> tuple[float, float]:
    """(mean velocity, 80th percentile of |velocity over KEYFRAME_S|) in view widths/s from a world-x
    track (F,) with NaN gaps and wrap-around jumps (a subject re-entering on the other side)."""
    known = np.flatnonzero(np.isfinite(world_x))
    if known.size < 2:
        return 0.0, 0.0
    # Split into runs at gaps and at jumps a moving subject cannot make between two frames.
    breaks = np.flatnonzero((np.diff(known) > 1) | (np.abs(np.diff(world_x[known])) > 0.1 * size)) + 1
    travel, duration, speeds = 0.0, 0.0, []
    lag = max(1, int(round(KEYFRAME_S * fps)))
    for run in np.split(known, breaks):
        if run.size < 2:
            continue
        x = world_x[run]
        travel += x[-1] - x[0]
        duration += run[-1] - run[0]
        if run.size > lag:
            speeds.extend(np.abs(x[lag:] - x[:-lag]) / lag)
        else:
            speeds.append(abs(x[-1] - x[0]) / (run[-1] - run[0]))
    if duration == 0:
        return 0.0, 0.0
    scale = fps / size
    return travel / duration * scale, float(np.percentile(speeds, 80)) * scale


def gait_landings(signals: list[np.ndarray], found: np.ndarray, fps: float) -> list[float]:
    """Foot landing times (s) from per-frame gait signals (F,) each (NaN = not measured) that peak at
    every landing: the leg spread and the body's height (it is lowest at a landing).

    A walk is periodic: each signal is |cos(pi * (rate * t + phase))| up to scale and offset, with rate
    1.6-2.0 steps/s, so the rate and phase that best correlate with the whole series give every landing,
    even where single frames are noisy, a peak is flat (at 24 fps neighbours differ by < 1 px) or the legs
    are invisible (their dark outline on the night's dark ground). Landings are kept where the subject
    is found in their frame or a neighbour."""
    times = (np.arange(len(found)) + 0.5) / fps
    rates = np.arange(GAIT_RATES[0], GAIT_RATES[1] + 1e-9, GAIT_RATE_STEP)
    phases = np.arange(0.0, 1.0, GAIT_PHASE_STEP)
    scores = np.zeros((rates.size, phases.size))
    for values in signals:
        known = np.flatnonzero(found & np.isfinite(values))
        if known.size < GAIT_MIN_FRAMES or np.ptp(values[known]) == 0:
            continue
        centred = values[known] - values[known].mean()
        centred /= np.linalg.norm(centred)
        for r, rate in enumerate(rates):
            model = np.abs(np.cos(np.pi * (rate * times[known][None, :] + phases[:, None])))  # (phases, frames)
            model -= model.mean(axis=1, keepdims=True)
            scores[r] += model @ centred / np.maximum(np.linalg.norm(model, axis=1), 1e-9)
    if not scores.any():
        return []
    r, p = np.unravel_index(int(np.argmax(scores)), scores.shape)
    rate, phase = rates[r], phases[p]
    duration = len(found) / fps
    landings = (np.arange(np.ceil(phase), np.ceil(rate * duration + phase)) - phase) / rate
    # A lightning frame hides the subject from the tracker, never from the truth: a neighbour counts.
    near = ndimage.binary_dilation(found, np.ones(3, bool))
    return [float(t) for t in landings if 0 <= t < duration and near[min(int(t * fps), len(found) - 1)]]


def leg_spread(frames: np.ndarray, boxes: list) -> np.ndarray:
    """Per frame, the horizontal spread (pixels) of leg pixels below the dress, between the hem and the
    ground, within 0.12 R of the dress centre. (F,)"""
    size = frames.shape[1]
    spread = np.full(len(frames), np.nan)
    for i, box in enumerate(boxes):
        if box is None:
            continue
        x0, y0, x1, y1 = box
        height = y1 - y0
        rows = slice(y1, min(size, y1 + int(np.ceil(0.65 * height)) + 1))
        centre = (x0 + x1) / 2
        wide = slice(max(0, int(centre - 0.3 * size)), min(size, int(centre + 0.3 * size)))
        band = frames[i, rows, wide].astype(np.float32)
        if band.shape[0] == 0:
            continue
        # Legs are skin (warm, bright) in a dark outline: pixels far darker than their row's median, or
        # far brighter and warmer (rain streaks are brighter too, but blue-white).
        luma, warmth = band @ YCC[0].astype(np.float32), band[..., 0] - band[..., 2]
        ref_luma, ref_warmth = np.median(luma, axis=1, keepdims=True), np.median(warmth, axis=1, keepdims=True)
        legs = (luma < ref_luma - LEG_CONTRAST) | ((luma > ref_luma + LEG_CONTRAST) & (warmth > ref_warmth + LEG_WARMTH))
        cols = np.arange(wide.start, wide.stop) + 0.5
        near = np.abs(cols - centre) <= max(0.12 * size, (x1 - x0))
        hit = legs.any(axis=0) & near
        if hit.any():
            spread[i] = cols[hit].max() - cols[hit].min()
    return spread


def judge_video(frames: np.ndarray, fps: float) -> dict:
    """The video half of the verdict (see the module docstring). frames (F, H, W, 3) uint8."""
    frames = np.asarray(frames)
    count, size = frames.shape[0], frames.shape[1]
    ycc = to_ycc(frames)
    luma = ycc[..., 0]
    flash_frames, lit = detect_flashes(luma.mean(axis=(1, 2)))
    valid = ~lit
    side = waterfall_side(frames, valid)
    waterfall_cols = np.zeros(size, bool)
    if side == "left":
        waterfall_cols[: int(0.16 * size)] = True
    elif side == "right":
        waterfall_cols[size - int(0.16 * size) :] = True
    # Camera estimation sees the scene without the screen-fixed waterfall band (its columns are cut,
    # keeping the zoom centre in place by cutting both sides). The zoom test compares two frames only,
    # without rain streaks (1 px wide: a 3x3 median removes them); the shift search sums over many pairs
    # instead, keeping the stars that a median would remove too.
    cut = int(waterfall_cols.sum())
    scene = luma[:, :, cut : size - cut]
    usable = np.flatnonzero(valid)
    first, last = usable[0], usable[-1]
    keys = np.unique(np.concatenate([usable[:: max(1, int(round(KEYFRAME_S * fps)))], [last]]))
    ends = ndimage.median_filter(scene[[first, last]], size=(1, 3, 3))
    zoom = zoom_factor(ends[0], ends[1]) if last > first else 1.0
    offsets = np.zeros(count) if zoom > 1.0 else content_offsets(scene, valid, keys, fps)
    # Per-frame zoom relative to the first frame (the world zooms exponentially in time).
    zooms = zoom ** (np.arange(count) / max(count - 1, 1))

    background = classify_background(frames, valid, waterfall_cols)
    masks = palette_masks(ycc, background)
    for mask in masks.values():
        mask[:, :, waterfall_cols] = False
    tracked = track_subject(masks, lit)
    components = tracked["frames"]
    found = [c for c in components if c is not None]
    kinds = [_kind_of(c) if c is not None else None for c in components]
    kind = majority(kinds) if found else None

    # Camera-compensated motion in frame-0 pixels: a static world point keeps x - offset (pan, tracking)
    # or (x - centre) / zoom (zoom).
    xs = np.array([c["centroid"][0] if c else np.nan for c in components])
    ys = np.array([c["centroid"][1] if c else np.nan for c in components])
    world_x = (xs - ZOOM_CENTER[0] * size) / zooms - offsets
    velocity, speed_value = _velocity(world_x, fps, size)
    content_speed = float(offsets[last] - offsets[first]) / max(last - first, 1) * fps / size
    screen_x = xs[np.isfinite(xs)]
    if zoom > 1.0:
        camera = "zoom in"
    elif abs(content_speed) < STATIC_MAX_SPEED:
        camera = "static"
    elif screen_x.size and np.ptp(screen_x) <= TRACKING_MAX_DRIFT_PX * size / 64 and abs(np.mean(screen_x) - size / 2) <= TRACKING_MAX_OFFSET * size:
        camera = "tracking"
    else:
        camera = "pan left" if content_speed > 0 else "pan right"

    motion = {"ball": None, "car": "driving", "person": "walking", None: None}[kind]
    events = [{"kind": "flash", "time": (float(i) + 0.5) / fps} for i in flash_frames]
    if kind == "ball":
        y_range = np.nanmax(ys) - np.nanmin(ys) if found else 0.0
        motion = "bouncing" if y_range >= BOUNCE_MIN_RANGE * size else "rolling"
        if motion == "bouncing":
            # The ball's lowest frames; and, where a neighbour is lost (to lightning, the waterfall band,
            # the clip's start), frames that draw it squashed on the floor (its bottom as low as it gets,
            # in frame-0 pixels about the zoom centre).
            bottoms = np.array([c["box"][3] + c["centroid"][1] / 1e3 if c else np.nan for c in components])
            frames_hit = _plateau_peaks(bottoms, CONTACT_MIN_PROMINENCE * size)
            floor_height = (bottoms - ZOOM_CENTER[1] * size) / zooms
            for frame, c in enumerate(components):
                on_floor = floor_height[frame] >= np.nanmax(floor_height) - CONTACT_FLOOR_TOL * size
                if c is not None and c["aspect"] >= CONTACT_MIN_ASPECT and on_floor:
                    if all(abs(frame - other) > 1 for other in frames_hit):
                        frames_hit.append(frame)
            for frame in sorted(frames_hit):
                events.append({"kind": "contact", "time": (frame + 0.5) / fps})
    elif kind == "person":
        spread = leg_spread(frames, [c["box"] if c else None for c in components])
        # The dress's height, less the zoom's slow drift (a quadratic in time).
        found = np.isfinite(ys)
        height = np.full(count, np.nan)
        if found.sum() > 3:
            drift = np.polyval(np.polyfit(np.flatnonzero(found), ys[found], 2), np.flatnonzero(found))
            height[found] = ys[found] - drift
        for time in gait_landings([spread, height], found, fps):
            events.append({"kind": "footstep", "time": time})
    events.sort(key=lambda e: e["time"])

    weather = "clear"
    if len(flash_frames):
        weather = "thunderstorm"
    elif side is not None:
        weather = "waterfall"
    else:
        keep_out = np.zeros(frames.shape[:3], bool)
        for i, c in enumerate(components):
            if c is not None:
                x0, y0, x1, y1 = c["box"]
                grow = int(0.1 * size)
                keep_out[i, max(0, y0 - grow) : y1 + grow, max(0, x0 - grow) : x1 + grow] = True
        shifts = np.round(np.diff(offsets)).astype(int)
        if rain_share(frames, shifts, valid, keep_out) >= RAIN_MIN_SHARE:
            weather = "rain"

    return {
        "background": background,
        "subject": {
            "kind": kind,
            "color": tracked["color"],
            "motion": motion,
            "direction": "right" if velocity > 0 else "left",
            "speed": ("fast" if speed_value >= FAST_MIN_SPEED else "slow") if kind == "car" else None,
        },
        "camera": camera,
        "weather": weather,
        "visual_events": events,
        "track": {
            "centroid": [c["centroid"] if c else None for c in components],
            "box": [c["box"] if c else None for c in components],
            "color": tracked["frame_colors"],
            "kind": kinds,
        },
        "camera_motion": {"content_speed": content_speed, "zoom": zoom},
    }
