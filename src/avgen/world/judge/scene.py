"""The judge's reading of the scene: lightning flashes, the camera (content shift and zoom), the background
and the weather on screen (overview: avgen.world.judge)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

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
