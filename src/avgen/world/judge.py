"""The world's judge: what a decoded clip shows and sounds like, from its pixels and samples only.

`judge_clip(frames, audio, fps, sample_rate)` never sees a spec or a ground truth. It relies on the
world's *design* (documented in render.py and synth.py): the exact palette, the look of backgrounds
and weather, the camera model, the sound signatures. Its accuracy is measured on rendered ground
truth by `avgen world judge-accuracy` (judge_accuracy.py), through MP4 round trips.

Video (frames (F, H, W, 3) uint8)
- flashes: a frame whose mean luma jumps far above its neighbours' median (lightning);
- camera: integer content shift between keyframes 0.5 s apart (nearest-neighbour rendering makes the
  background move by whole pixels), its error summed over every pair of frames that far apart, and a
  zoom about the world's zoom centre (R/2, 0.75 R) tested on the first and last frames;
- background: median colours of a top (sky) and bottom (ground) band against the documented colours,
  under each weather tint;
- weather: flashes -> thunderstorm; a bright blue-white band at a screen edge -> waterfall; rain streaks
  (pixels that change between camera-aligned frames, away from the subject) -> rain;
- subject: pixels matching a palette colour in YCbCr (luma is full resolution after yuv420p; chroma is
  judged by direction and saturation, since 4:2:0 halves it on small shapes), connected components
  filtered by the main subject's place and size; kind from the shape of the palette region (car wide,
  dress tapered, ball round); motion/direction/speed from the camera-compensated track;
- events: ball contacts (lowest frames of a bouncing ball, or squashed on the floor), flashes, at frame
  centres (frame i -> (i + 0.5) / fps); footsteps from the periodic gait (leg spread below the dress and
  the body's bob) fitted over the whole clip, at the fitted landing times.
Audio (mono or (C, S) float)
- onsets of effects in the 2-7.2 kHz band, where only rain hiss is steady and music never reaches;
  classed by the sound up to the next onset: a slow decay (a crack, 50 ms) -> thunder, a 160 Hz thud
  (matched filter) -> impact, else footstep;
- ambience from steady band levels (rain hiss 2-7.2 kHz, waterfall rumble 30-350 Hz) and thunder;
- engine: a fundamental in 55-115 Hz and its 2nd harmonic, followed over the clip;
- music: attacks of each style's own pentatonic notes in 370-790 Hz on that style's exact tempo grid
  (a note every 0.857 s calm piano, every 0.234 s upbeat).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from avgen.world.spec import PALETTE

# --- colour space -------------------------------------------------------------------------------
_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _ycc(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (..., 3) float32 (Y, Cb - 128, Cr - 128), BT.601 full range as H.264 decoders use."""
    return (np.asarray(rgb, np.float32) @ _YCC.T.astype(np.float32)).astype(np.float32)


PALETTE_YCC = {name: _ycc(np.array(rgb, np.float32)) for name, rgb in PALETTE.items()}
# A pixel matches a chromatic palette colour when its luma is within LUMA_TOL, its chroma points within
# HUE_TOL_DEG of the colour's and has at least MIN_SATURATION of its length (yuv420p blurs chroma over
# 2x2 blocks, so small shapes lose saturation but keep their hue and full-resolution luma).
LUMA_TOL = 30.0
HUE_TOL_DEG = 28.0
# Tighter where a background has the same luma and a near hue: grass is 27 deg from green, the sea 18 deg
# from blue.
HUE_TOL_DEG_OF = {"green": 16.0, "blue": 12.0}
MIN_SATURATION = 0.3
# Stricter saturation where the background has the colour's hue and luma but less saturation: desert
# dunes are a pale orange (0.48 of orange, 0.42 of yellow), beach sand a pale yellow (0.37).
MIN_SATURATION_ON = {
    ("desert", "orange"): 0.62,
    ("desert", "yellow"): 0.55,
    ("beach", "yellow"): 0.5,
    ("beach", "orange"): 0.5,
}
# White (240, 240, 240): luma at least WHITE_MIN_LUMA (zebra crossings are 232, lane marks 228) and
# chroma at most WHITE_MAX_CHROMA.
WHITE_MIN_LUMA = 235.0
WHITE_MAX_CHROMA = 12.0

# --- main subject geometry (view widths at zoom 1; render.py / simulate.py) ------------------------
MIN_AREA = 0.004  # palette area of the main subject is >= 0.0085 R^2 (ball at zoom 1), the second's x0.36
MAX_WIDTH = 0.5  # wider palette regions are background (the sea's wave bands, clouds at high zoom)
MAX_HEIGHT = 0.6  # taller are background (waterfall band, zebra bars)
MIN_BOTTOM = 0.40  # the main subject's bottom is below 0.40 R at any zoom; clouds end above 0.35 R
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

# --- camera ---------------------------------------------------------------------------------------
ZOOM_CENTER = (0.5, 0.75)  # the world's zoom centre as (x, y) shares of the frame (simulate.ZOOM_CENTER_Y)
ZOOM_GRID = np.round(np.arange(1.0, 1.85, 0.05), 2)  # zoom factors tried between the first and last frame
ZOOM_MIN = 1.15  # a smaller best zoom is static
ZOOM_GAIN = 0.7  # the zoom must explain the last frame this much better than any shift
KEYFRAME_S = 0.5  # seconds between the frames whose content shift is measured
STATIC_MAX_SPEED = 0.02  # view widths/s of content motion below which the camera is static
# A tracked subject stays put on screen (drift of its centroid at 64 px, scaled with R) and centred.
TRACKING_MAX_DRIFT_PX = 1.0
TRACKING_MAX_OFFSET = 0.02
# Luma differences are clipped here: rain streaks and a moving subject differ by far more, so they add
# about the same at every shift, while the faint ripples of a desert under a thunderstorm still count.
SHIFT_CLIP = 8.0

# --- flashes and weather --------------------------------------------------------------------------
FLASH_JUMP = 30.0  # mean-luma rise over the median of the neighbouring frames (flashes add 80..150)
FLASH_WINDOW = 9  # frames in that median
WATERFALL_WIDTH = 0.12  # share of R checked at each edge (the band is 0.14 wide)
WATERFALL_MIN_SHARE = 0.8  # share of its lower-half pixels that look like falling water
RAIN_CHANGE = 18.0  # RGB change between aligned frames that a streak causes (min over a 3x3 neighbourhood)
RAIN_MIN_SHARE = 0.012  # share of such pixels, away from the subject, in rain (~4 %) vs clear (~0)

# Backgrounds: (sky colour at the top at zoom 1, sky colour at the top at zoom 1.6, ground colour) before
# weather; weather tints are affine: colour * gain + offset (render.background_strip).
BACKGROUND_COLORS = {
    "grassy field": ((104, 165, 232), (145, 189, 236), (80, 145, 55)),
    "beach": ((120, 180, 236), (170, 207, 242), (213, 189, 136)),
    "desert": ((227, 217, 196), (232, 222, 200), (200, 155, 95)),
    "night": ((12, 16, 44), (21, 26, 58), (22, 28, 30)),
    "city intersection": ((150, 155, 165), (175, 185, 200), (88, 88, 92)),
}
TINTS = {"clear": (1.0, (0, 0, 0)), "rain": (0.82, (21.6, 22.5, 24.3)), "thunderstorm": (0.55, (6.0, 6.2, 7.5))}
SKY_ROWS = 0.12  # top band (share of R) for the sky colour
GROUND_ROWS = 0.08  # bottom band for the ground colour

# --- audio ----------------------------------------------------------------------------------------
ONSET_BAND = (2000.0, 7200.0)  # effects live here; music never, rain only as a steady hiss
ENVELOPE_HOP_S = 0.001  # 1 ms energy envelope for onset times
ENVELOPE_SMOOTH_S = 0.003
ONSET_RISE_DB = 6.0  # the next 8 ms rise this far above the mean level of the 10 ms before
ONSET_AHEAD_S = 0.008  # (hiss in 8 ms varies by +-0.7 dB; a far footstep in a thunderstorm rises 9 dB)
ONSET_BASE_S = 0.01  # short: a sound 25 ms after another rises above its tail, a crack never above itself
ONSET_RANGE_DB = 45.0
ONSET_MIN_DB = -40.0  # effects peak at -18 dB or more (mean square); codec noise and hiss stay below
ONSET_REFRACTORY_S = 0.015  # one onset per sound; two subjects' sounds can be this close
ONSET_PEAK_AHEAD_S = 0.02  # effects reach their peak within 1 ms of their onset
ONSET_NEAR_PEAK_DB = 10.0
THUD_HZ, THUD_DECAY_S, THUD_WINDOW_S = 160.0, 0.04, 0.12  # the impact's thud: a 160 Hz sine, decay 40 ms
THUD_MIN_RATIO = 0.75  # thud amplitude / RMS of the 2-7.2 kHz peak: impacts >= 1.0, footsteps (leakage) < 0.7
THUD_MIN_SNR = 2.5  # ...and / the estimate's median over the clip: impacts in a waterfall >= 2.7
CRACK_MAX_DECAY_DB_PER_MS = 0.32  # a crack (decay 50 ms) fades 0.17 dB/ms, a tap (15 ms) 0.58, a click (6 ms) 1.45
RAIN_HISS_RMS = 0.008  # steady 2-7.2 kHz level: rain 0.02, thunderstorm 0.025, else ~0
WATERFALL_RMS = 0.03  # steady 30-350 Hz noise floor: waterfall 0.08
ENGINE_F0 = (55.0, 115.0)  # engine fundamental range (Hz): 55 at rest, ~73 slow, ~103 fast
ENGINE_MIN_SALIENCE_DB = 4.5  # engines >= 5.9 dB (slow car under a waterfall), no engine <= 3.6
ENGINE_MIN_SHARE = 0.4  # of the clip; the engine runs in >= 45 % of it (start-stop cars)
MUSIC_BAND = (370.0, 790.0)  # every note has its fundamental or 2nd partial here; above a waterfall, below effects
MUSIC_STYLES = {"calm piano": (261.63, 60 / 70), "upbeat": (329.63, 30 / 128)}  # (lowest note Hz, s per note)
NOTE_RISE_FRAMES, NOTE_RISE_DB = 3, 12.0  # a note's attack (10-30 ms) raises its bin this much in 48 ms
NOTE_TONAL_DB = 15.0  # ...to this far above the band's median bin (white noise stays near it)
NOTE_PEAK_DB = 6.0  # ...and rises this much more than the bins 4 away (a sinusoid's main lobe is +-2 bins)
NOTE_GRID_TOL_S = 0.04
UPBEAT_MIN_COVER = 0.37  # upbeat >= 0.40 of its grid, others <= 0.33
CALM_MIN_COVER = 0.5  # calm piano ~0.95 (a repeated note does not rise); no music ~0, 1 of 2 notes in 2 s clips with an engine


# ==== video =========================================================================================
def palette_masks(ycc: np.ndarray, background: str | None = None) -> dict[str, np.ndarray]:
    """Per palette colour, the boolean (F, H, W) mask of pixels matching it (see LUMA_TOL...)."""
    luma, chroma = ycc[..., 0], ycc[..., 1:]
    chroma_len = np.linalg.norm(chroma, axis=-1)
    masks = {}
    for name, target in PALETTE_YCC.items():
        if name == "white":
            masks[name] = (luma >= WHITE_MIN_LUMA) & (chroma_len <= WHITE_MAX_CHROMA)
            continue
        target_len = float(np.linalg.norm(target[1:]))
        along = (chroma @ (target[1:] / target_len)) / target_len  # saturation relative to the colour
        cos = np.clip(along * target_len / np.maximum(chroma_len, 1e-6), -1, 1)
        hue_tol = np.radians(HUE_TOL_DEG_OF.get(name, HUE_TOL_DEG))
        saturation = MIN_SATURATION_ON.get((background, name), MIN_SATURATION)
        masks[name] = (np.abs(luma - target[0]) <= LUMA_TOL) & (along >= saturation) & (cos >= np.cos(hue_tol))
    return masks


def detect_flashes(luma_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lightning from the per-frame mean luma (F,): (first frame of each flash, (F,) bool of lit frames)."""
    baseline = ndimage.median_filter(luma_mean, size=FLASH_WINDOW, mode="nearest")
    lit = luma_mean - baseline > FLASH_JUMP / 3
    jump = (luma_mean - baseline > FLASH_JUMP) & (np.diff(luma_mean, prepend=luma_mean[0]) > FLASH_JUMP)
    starts = np.flatnonzero(jump & ~np.roll(jump, 1))
    lit |= np.roll(lit, 1) & np.isin(np.arange(len(lit)), starts + 1)
    return starts, lit


def _shift_error(a: np.ndarray, b: np.ndarray, shift: int) -> np.ndarray:
    """Clipped mean |b - a shifted right by `shift`| over the overlap; a, b (N, H, W) -> (N,)."""
    width = a.shape[-1]
    if shift >= 0:
        diff = b[..., shift:] - a[..., : width - shift]
    else:
        diff = b[..., :shift] - a[..., -shift:]
    return np.minimum(np.abs(diff), SHIFT_CLIP).mean(axis=(-2, -1))


def content_offsets(luma: np.ndarray, valid: np.ndarray, keys: np.ndarray, fps: float) -> np.ndarray:
    """Rightward content shift of every frame relative to the first, (F,) pixels.

    Per stretch between keyframes (a shift of a pixel or more even for a slow camera), an exhaustive
    integer search up to the fastest camera (a tracked fast car, 0.18 view widths/s) of the shift over
    that lag, its error summed over every unlit pair of frames that far apart in the stretch: rain
    streaks and compression noise average out, sparse textures (stars, smooth dunes) add up. Then
    interpolated in between."""
    offsets = [0.0]
    for a, b in zip(keys[:-1], keys[1:]):
        lag = b - a
        starts = np.arange(a, b)
        starts = starts[(starts + lag < len(luma)) & valid[starts] & valid[np.minimum(starts + lag, len(luma) - 1)]]
        if starts.size == 0:
            starts = np.array([a])
        reach = int(np.ceil(0.2 * luma.shape[-1] * lag / fps)) + 1
        candidates = np.arange(-reach, reach + 1)
        errors = [_shift_error(luma[starts], luma[starts + lag], int(s)).mean() for s in candidates]
        offsets.append(offsets[-1] + float(candidates[int(np.argmin(errors))]))
    return np.interp(np.arange(len(luma)), keys, offsets)


def _zoomed(image: np.ndarray, zoom: float) -> np.ndarray:
    """(H, W) image zoomed by `zoom` about ZOOM_CENTER with nearest-neighbour sampling (as rendered)."""
    height, width = image.shape
    rows = (ZOOM_CENTER[1] * height + (np.arange(height) + 0.5 - ZOOM_CENTER[1] * height) / zoom).astype(int)
    cols = (ZOOM_CENTER[0] * width + (np.arange(width) + 0.5 - ZOOM_CENTER[0] * width) / zoom).astype(int)
    return image[np.clip(rows, 0, height - 1)][:, np.clip(cols, 0, width - 1)]


def zoom_factor(first: np.ndarray, last: np.ndarray) -> float:
    """Zoom from the first to the last frame (luma (H, W)), 1.0 unless a zoom explains the last frame
    ZOOM_GAIN times better than any content shift."""
    errors = [float(np.minimum(np.abs(_zoomed(first, z) - last), SHIFT_CLIP).mean()) for z in ZOOM_GRID]
    reach = first.shape[1] // 2
    shift_error = min(float(_shift_error(first[None], last[None], s)[0]) for s in range(-reach, reach + 1))
    best = int(np.argmin(errors))
    if ZOOM_GRID[best] >= ZOOM_MIN and errors[best] < ZOOM_GAIN * min(shift_error, errors[0]):
        return float(ZOOM_GRID[best])
    return 1.0


def classify_background(frames: np.ndarray, valid: np.ndarray, exclude_cols: np.ndarray) -> str:
    """Nearest documented (sky, ground) colour pair under any weather tint. frames (F, H, W, 3)."""
    size = frames.shape[1]
    use = frames[valid][:, :, ~exclude_cols].astype(np.float32)
    sky = np.median(use[:, : max(1, int(SKY_ROWS * size))].reshape(-1, 3), axis=0)
    ground = np.median(use[:, size - max(1, int(GROUND_ROWS * size)) :].reshape(-1, 3), axis=0)
    best, best_distance = None, np.inf
    for name, (sky_lo, sky_hi, ground_ref) in BACKGROUND_COLORS.items():
        for gain, offset in TINTS.values():
            tint = lambda c: np.asarray(c, np.float32) * gain + np.asarray(offset, np.float32)  # noqa: E731
            a, b = tint(sky_lo), tint(sky_hi)
            along = np.clip(np.dot(sky - a, b - a) / max(float(np.dot(b - a, b - a)), 1e-6), 0, 1)
            distance = np.linalg.norm(sky - (a + along * (b - a))) + np.linalg.norm(ground - tint(ground_ref))
            if distance < best_distance:
                best, best_distance = name, distance
    return best


def waterfall_side(frames: np.ndarray, valid: np.ndarray) -> str | None:
    """'left'/'right' when that edge holds a falling-water band (blue-white, in the lower half too)."""
    size = frames.shape[1]
    width = max(1, int(WATERFALL_WIDTH * size))
    lower = frames[valid][:, size // 2 :].astype(np.int16)
    for side, cols in (("left", slice(0, width)), ("right", slice(size - width, size))):
        band = lower[:, :, cols]
        red, green, blue = band[..., 0], band[..., 1], band[..., 2]
        water = (red >= 150) & (green >= 185) & (blue >= 220) & (blue >= red + 8)
        if water.mean() >= WATERFALL_MIN_SHARE:
            return side
    return None


def rain_share(frames: np.ndarray, shifts: np.ndarray, valid: np.ndarray, keep_out: np.ndarray) -> float:
    """Share of pixels that change between consecutive camera-aligned frames by more than RAIN_CHANGE
    even against their 3x3 neighbourhood, outside `keep_out` (F, H, W) (subject, waterfall)."""
    rgb = frames.astype(np.int16)
    shares = []
    for i in np.flatnonzero(valid[:-1] & valid[1:]):
        before = np.roll(rgb[i], int(shifts[i]), axis=1)
        change = np.full(before.shape[:2], np.inf, np.float32)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                moved = np.roll(before, (dy, dx), axis=(0, 1))
                change = np.minimum(change, np.abs(rgb[i + 1] - moved).max(axis=-1))
        margin = max(1, abs(int(shifts[i])) + 1)
        region = ~(keep_out[i] | keep_out[i + 1])
        region[:, :margin] = region[:, -margin:] = False
        region[:1], region[-1:] = False, False
        if region.any():
            shares.append(float((change[region] > RAIN_CHANGE).mean()))
    return float(np.median(shares)) if shares else 0.0


def _components(mask: np.ndarray, size: int) -> list[list[dict]]:
    """Per frame, the components of `mask` (F, H, W) that fit the main subject: area, box, centroid."""
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = True  # 8-connected within a frame, never across frames
    labels, count = ndimage.label(mask, structure=structure)
    per_frame: list[list[dict]] = [[] for _ in range(mask.shape[0])]
    if count == 0:
        return per_frame
    for index, slices in enumerate(ndimage.find_objects(labels), start=1):
        frame_slice, rows, cols = slices
        piece = labels[slices] == index
        area = int(piece.sum())
        height, width = rows.stop - rows.start, cols.stop - cols.start
        if area < MIN_AREA * size * size or width > MAX_WIDTH * size or height > MAX_HEIGHT * size:
            continue
        if rows.stop < MIN_BOTTOM * size:
            continue
        ys, xs = np.nonzero(piece[0])
        row_widths = piece[0].sum(axis=1)
        if height < 2:
            continue
        top, bottom = row_widths[: height // 2].mean(), row_widths[(height + 1) // 2 :].mean()
        per_frame[frame_slice.start].append({
            "area": area,
            "box": [cols.start, rows.start, cols.stop, rows.stop],
            "centroid": [float(xs.mean() + cols.start + 0.5), float(ys.mean() + rows.start + 0.5)],
            "taper": float(top / max(bottom, 1)),
            "aspect": float(width / height),
        })
    return per_frame


def track_subject(masks: dict[str, np.ndarray], lit: np.ndarray) -> dict:
    """The main subject: the palette colour whose per-frame largest fitting component is largest over
    the clip, and per frame that component (None where it is not found or the frame is lit)."""
    size = next(iter(masks.values())).shape[1]
    per_color = {name: _components(mask & ~lit[:, None, None], size) for name, mask in masks.items()}
    scores = {name: sum(max((c["area"] for c in frame), default=0) for frame in comps) for name, comps in per_color.items()}
    color = max(scores, key=scores.get)
    if scores[color] == 0:
        return {"color": None, "frames": [None] * len(lit), "frame_colors": [None] * len(lit)}
    frames = [max(frame, key=lambda c: c["area"]) if frame else None for frame in per_color[color]]
    # Per frame, the colour that best covers the chosen component (for colour-stability metrics).
    frame_colors = []
    for i, component in enumerate(frames):
        if component is None:
            frame_colors.append(None)
            continue
        x0, y0, x1, y1 = component["box"]
        counts = {name: int(mask[i, y0:y1, x0:x1].sum()) for name, mask in masks.items()}
        frame_colors.append(max(counts, key=counts.get))
    return {"color": color, "frames": frames, "frame_colors": frame_colors}


def subject_pixels(frames: np.ndarray, verdict: dict) -> np.ndarray:
    """(F, H, W) bool: the tracked subject's own pixels per frame - its palette colour inside the box the
    verdict (`judge_video(frames, ...)`) found, grown by one pixel for the world's 1-px outline; empty
    where no subject was found. Unlike the box, it leaves out the background around the subject, which a
    scene edit (background, weather, night) is meant to change."""
    frames = np.asarray(frames)
    pixels = np.zeros(frames.shape[:3], bool)
    color = verdict["subject"]["color"]
    if color is None:
        return pixels
    colored = palette_masks(_ycc(frames), verdict["background"])[color]
    for i, box in enumerate(verdict["track"]["box"][: len(frames)]):
        if box is not None:
            x0, y0, x1, y1 = box
            pixels[i, y0:y1, x0:x1] = colored[i, y0:y1, x0:x1]
    return ndimage.binary_dilation(pixels, structure=np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))


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
        luma, warmth = band @ _YCC[0].astype(np.float32), band[..., 0] - band[..., 2]
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
    ycc = _ycc(frames)
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


# ==== audio =========================================================================================
def _band(x: np.ndarray, sample_rate: int, low: float, high: float) -> np.ndarray:
    """x band-limited to [low, high] Hz by an FFT mask (the synthesizer's own way of shaping noise).
    Mirror-padded, so that the FFT's wrap-around joins no two unrelated ends (a false transient)."""
    pad = min(x.size - 1, int(0.1 * sample_rate))
    padded = np.pad(x, pad, mode="reflect")
    spectrum = np.fft.rfft(padded)
    freqs = np.fft.rfftfreq(padded.size, 1.0 / sample_rate)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, padded.size)[pad : pad + x.size]


def _envelope_db(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy envelope in dB on an ENVELOPE_HOP_S grid, (S // hop,)."""
    hop = max(1, int(round(ENVELOPE_HOP_S * sample_rate)))
    energy = (x[: x.size // hop * hop] ** 2).reshape(-1, hop).mean(axis=1)
    smooth = max(1, int(round(ENVELOPE_SMOOTH_S / ENVELOPE_HOP_S)))
    energy = ndimage.uniform_filter1d(energy, smooth, origin=-(smooth // 2))  # look ahead: keep onsets sharp
    return 10 * np.log10(energy + 1e-12)


def audio_onsets(mono: np.ndarray, sample_rate: int) -> list[dict]:
    """Onsets of effects with their class (impact / footstep / thunder), times in seconds.

    An onset is where the mean level of the next ONSET_AHEAD_S rises ONSET_RISE_DB above the mean level
    of the ONSET_BASE_S before: means over several milliseconds, since a footstep or a weak thunder crack
    stands only 10-15 dB above the thunderstorm's hiss, whose 1 ms envelope swings by as much."""
    nyquist = sample_rate / 2
    high = _band(mono, sample_rate, ONSET_BAND[0], min(ONSET_BAND[1], 0.9 * nyquist))
    envelope = _envelope_db(high, sample_rate)
    ms = lambda s: int(round(s / ENVELOPE_HOP_S))  # noqa: E731
    energy = np.cumsum(np.concatenate([[0.0], 10 ** (envelope / 10)]))
    mean = lambda lo, hi: (energy[hi] - energy[lo]) / np.maximum(hi - lo, 1)  # noqa: E731
    index = np.arange(envelope.size)
    ahead = 10 * np.log10(mean(index, np.minimum(index + ms(ONSET_AHEAD_S), envelope.size)) + 1e-12)
    before_end = np.maximum(index - ms(0.002), 0)
    before = 10 * np.log10(mean(np.maximum(before_end - ms(ONSET_BASE_S), 0), before_end) + 1e-12)
    # Quiet level of the band; never more than ONSET_RANGE_DB under the loudest moment, so that the
    # filter's ringing in a silent band is no onset.
    floor = max(np.percentile(envelope, 30), envelope.max() - ONSET_RANGE_DB)
    rising = (ahead - np.maximum(before, floor) >= ONSET_RISE_DB) & (ahead >= ONSET_MIN_DB)
    # Nothing before the clip to rise from; the clip's abrupt end is a false transient.
    rising[: ms(0.002)] = rising[envelope.size - ms(ONSET_AHEAD_S) :] = False
    onsets, last = [], -np.inf
    for start in np.flatnonzero(rising):
        if start - last < ms(ONSET_REFRACTORY_S):
            continue
        # The onset is where the envelope first gets halfway (in dB) from the level before to the peak
        # that follows, and within ONSET_NEAR_PEAK_DB of it (the band-limiting filter rings a little
        # before a transient).
        window = envelope[start : start + ms(ONSET_PEAK_AHEAD_S)]
        threshold = max((window.max() + max(before[start], floor)) / 2, window.max() - ONSET_NEAR_PEAK_DB)
        onset = start + int(np.argmax(window >= threshold))
        onsets.append(onset)
        last = onset
    kinds = _onset_kinds(mono, sample_rate, envelope, onsets)
    return [{"kind": kind, "time": index * ENVELOPE_HOP_S} for index, kind in zip(onsets, kinds)]


def _onset_kinds(mono: np.ndarray, sample_rate: int, envelope: np.ndarray, onsets: list[int]) -> list[str]:
    """Class of each onset (envelope indices) from the sound up to the next onset, so that overlapping
    sounds do not mix: a thunder crack decays slowly above the band's level before the onset, an impact
    carries a 160 Hz thud (measured by a matched filter, minus the thuds of earlier impacts still
    ringing), else a footstep."""
    power = 10 ** (envelope / 10)
    ms = lambda s: int(round(s / ENVELOPE_HOP_S))  # noqa: E731
    hop = int(round(ENVELOPE_HOP_S * sample_rate))
    taps = np.arange(int(THUD_WINDOW_S * sample_rate))
    weight = np.exp(-taps / (THUD_DECAY_S * sample_rate))
    # The thud estimate's noise level: its median over the clip (a waterfall's rumble reaches 160 Hz).
    kernel = weight * np.exp(-2j * np.pi * THUD_HZ * taps / sample_rate) * 2 / np.sum(weight**2)
    spots = np.arange(0, mono.size - taps.size, int(0.025 * sample_rate))
    noise = float(np.median(np.abs(mono[spots[:, None] + taps] @ kernel))) if spots.size else 0.0
    kinds, impacts = [], []  # impacts: (sample, complex thud amplitude) of those found so far
    for k, index in enumerate(onsets):
        following = onsets[k + 1] if k + 1 < len(onsets) else envelope.size
        end = max(index + 1, min(following, envelope.size - ms(ONSET_AHEAD_S)))  # the envelope's end is false
        before = power[max(0, index - ms(ONSET_BASE_S) - ms(0.002)) : max(1, index - ms(0.002))].mean()
        peak = power[index : min(end, index + ms(0.02))].max() - before
        # Decay rate (dB/ms) of the level above what came before: the second half of the sound (up to
        # 60 ms, or to the next onset) against the first. Exponential decays give their own rate at any
        # length: a crack 0.17 dB/ms, a tap 0.58, a click 1.45.
        half = min(ms(0.06), end - index - ms(0.002)) // 2
        decay = -np.inf
        if half >= ms(0.006):
            first = power[index : index + half].mean() - before
            second = power[index + half : index + 2 * half].mean() - before
            if first > 0:
                decay = 10 * np.log10(max(second, 1e-12) / first) / half
        # Amplitude of a 160 Hz sine decaying like the thud, at the onset, up to the next one (absolute
        # phase, so that an earlier thud's share is its own amplitude, decayed).
        start = index * hop
        n = min(taps.size, (following - index) * hop, mono.size - start)
        w = weight[:n] * np.exp(-2j * np.pi * THUD_HZ * (start + taps[:n]) / sample_rate)
        thud = 2 * np.sum(mono[start : start + n] * w) / np.sum(weight[:n] ** 2)
        thud -= sum(a * np.exp(-(start - s) / (THUD_DECAY_S * sample_rate)) for s, a in impacts)
        if decay >= -CRACK_MAX_DECAY_DB_PER_MS:
            kinds.append("thunder")
        elif abs(thud) >= max(THUD_MIN_RATIO * np.sqrt(max(peak, 1e-12)), THUD_MIN_SNR * noise):
            kinds.append("impact")
            impacts.append((start, thud))
        else:
            kinds.append("footstep")
    return kinds


def _noise_rms(power: np.ndarray, freqs: np.ndarray, low: float, high: float) -> np.ndarray:
    """Per STFT frame, the RMS of the *noise floor* in [low, high] Hz: the median bin power times the
    number of bins, so that a few harmonic peaks (an engine, music) do not count. (frames,)"""
    band = power[(freqs >= low) & (freqs <= high)]
    return np.sqrt(np.median(band, axis=0) * band.shape[0])


def engine_present(mono: np.ndarray, sample_rate: int) -> bool:
    """An engine's fundamental and 2nd harmonic (f0 in ENGINE_F0) both standing above the spectrum's
    local median in ENGINE_MIN_SHARE of the clip. Only the two strongest partials count: under a
    waterfall's rumble the higher ones (amplitude 1/k) drown. Per frame, the best f0 after following
    it over 3 frames within +-2 steps, since the pitch glides while the car speeds up or slows down."""
    nperseg = int(sample_rate * 0.25)
    freqs, _, spec = signal.stft(mono, sample_rate, nperseg=nperseg, noverlap=nperseg // 2)
    level = 10 * np.log10(np.abs(spec) ** 2 + 1e-14)  # (bins, frames)
    salience = level - ndimage.median_filter(level, size=(15, 1), mode="nearest")
    f0 = np.arange(ENGINE_F0[0], ENGINE_F0[1], freqs[1] / 2)
    fundamental, second = (np.round(k * f0 / freqs[1]).astype(int) for k in (1, 2))
    both = np.minimum(salience[fundamental], salience[second])  # (f0, frames); a 160 Hz thud alone is no pair
    followed = ndimage.uniform_filter1d(ndimage.maximum_filter1d(both, 5, axis=0), 3, axis=1, mode="nearest")
    return float(np.percentile(followed.max(axis=0), 100 * (1 - ENGINE_MIN_SHARE))) >= ENGINE_MIN_SALIENCE_DB


def _note_attacks(level: np.ndarray, freqs: np.ndarray, notes: np.ndarray) -> np.ndarray:
    """Frames (of `level` (bins, frames) in dB, less NOTE_RISE frames) where one of `notes` (Hz) starts:
    its bin rises NOTE_RISE_DB within NOTE_RISE_S, to NOTE_TONAL_DB above the median of MUSIC_BAND, and
    NOTE_PEAK_DB more than the bins 4 away rise (an effect's leak rises everywhere, an engine's
    neighbouring harmonics stay put). One frame per attack."""
    rise = level[:, NOTE_RISE_FRAMES:] - level[:, :-NOTE_RISE_FRAMES]
    now = level[:, NOTE_RISE_FRAMES:]
    median = np.median(now[(freqs >= MUSIC_BAND[0]) & (freqs <= MUSIC_BAND[1])], axis=0)
    hit = np.zeros(now.shape[1], bool)
    for b in np.unique(np.round(notes / freqs[1]).astype(int)):
        others = np.maximum(rise[b - 4], rise[b + 4])
        hit |= (rise[b] >= NOTE_RISE_DB) & (now[b] - median >= NOTE_TONAL_DB) & (rise[b] - others >= NOTE_PEAK_DB)
    frames = np.flatnonzero(hit)
    return frames[np.diff(frames, prepend=-NOTE_RISE_FRAMES - 1) > NOTE_RISE_FRAMES]


def music_class(mono: np.ndarray, sample_rate: int) -> tuple[str, dict]:
    """('none' | 'calm piano' | 'upbeat', {style: beat cover}) from the attacks of each style's own notes
    (pentatonic fundamentals and 2nd partials in MUSIC_BAND) and its exact tempo: the share of the
    style's note grid (one note every 60/70 s, or every 30/128 s), at its best phase, that has an attack
    within NOTE_GRID_TOL_S. Engines, effects and other music fall off the grid."""
    nperseg, hop = int(sample_rate * 0.128), int(sample_rate * 0.016)
    freqs, _, spec = signal.stft(mono, sample_rate, nperseg=nperseg, noverlap=nperseg - hop)
    level = 10 * np.log10(np.abs(spec) ** 2 + 1e-14)
    duration = mono.size / sample_rate
    cover = {}
    for style, (base, step) in MUSIC_STYLES.items():
        notes = base * 2 ** (np.array([0, 2, 4, 7, 9, 12]) / 12)
        notes = np.concatenate([notes, 2 * notes])
        notes = notes[(notes >= MUSIC_BAND[0]) & (notes <= MUSIC_BAND[1])]
        times = (_note_attacks(level, freqs, notes) + NOTE_RISE_FRAMES) * hop / sample_rate
        cover[style] = 0.0
        for phase in np.arange(0.0, step, 0.004) if times.size else []:
            grid = np.arange(phase, duration, step)
            cover[style] = max(cover[style], float(np.mean(np.abs(times[:, None] - grid).min(axis=0) <= NOTE_GRID_TOL_S)))
    if cover["upbeat"] >= UPBEAT_MIN_COVER:
        return "upbeat", cover
    return ("calm piano" if cover["calm piano"] >= CALM_MIN_COVER else "none"), cover


def judge_audio(audio: np.ndarray, sample_rate: int) -> dict:
    """The audio half of the verdict. audio (S,) or (C, S) float."""
    audio = np.asarray(audio, np.float64)
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    if mono.size < sample_rate // 4:
        return {"audio_onsets": [], "ambience": "clear", "music": "none", "subject_sounds": []}
    onsets = audio_onsets(mono, sample_rate)
    music = music_class(mono, sample_rate)
    nperseg = int(sample_rate * 0.25)  # 4 Hz bins: an engine's harmonics fill few of them
    freqs, _, spec = signal.stft(mono, sample_rate, nperseg=nperseg, noverlap=nperseg // 2)
    power = np.abs(spec) ** 2 * 2  # one-sided: RMS^2 = sum over bins of 2 |X|^2 (Hann, scaling='spectrum')
    hiss = float(np.percentile(_noise_rms(power, freqs, ONSET_BAND[0], min(ONSET_BAND[1], 0.45 * sample_rate)), 30))
    rumble = float(np.percentile(_noise_rms(power, freqs, 30, 350), 20))
    if any(o["kind"] == "thunder" for o in onsets):
        ambience = "thunderstorm"
    elif rumble >= WATERFALL_RMS:
        ambience = "waterfall"
    elif hiss >= RAIN_HISS_RMS:
        ambience = "rain"
    else:
        ambience = "clear"
    sounds = set()
    if any(o["kind"] == "impact" for o in onsets):
        sounds.add("impacts")
    if any(o["kind"] == "footstep" for o in onsets):
        sounds.add("footsteps")
    if engine_present(mono, sample_rate):
        sounds.add("engine")
    return {
        "audio_onsets": onsets,
        "ambience": ambience,
        "music": music[0],
        "subject_sounds": sorted(sounds),
        "levels": {"hiss_rms": hiss, "rumble_rms": rumble, "beat_cover": music[1]},  # for diagnosis
    }


def judge_clip(frames: np.ndarray, audio: np.ndarray | None, fps: float, sample_rate: int | None) -> dict:
    """The full verdict of one decoded clip (JSON-serialisable). audio may be None (no sound track)."""
    verdict = judge_video(frames, float(fps))
    if audio is None or sample_rate is None:
        verdict.update({"audio_onsets": [], "ambience": "clear", "music": "none", "subject_sounds": []})
    else:
        verdict.update(judge_audio(audio, int(sample_rate)))
    return verdict
