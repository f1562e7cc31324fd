"""The judge's colour reading: BT.601 YCbCr, pixels matching each palette colour, and the main subject
tracked as the largest fitting region of one palette colour (overview: avgen.world.judge)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from avgen.world.spec import PALETTE

# --- colour space -------------------------------------------------------------------------------
YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def to_ycc(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> (..., 3) float32 (Y, Cb - 128, Cr - 128), BT.601 full range as H.264 decoders use."""
    return (np.asarray(rgb, np.float32) @ YCC.T.astype(np.float32)).astype(np.float32)


PALETTE_YCC = {name: to_ycc(np.array(rgb, np.float32)) for name, rgb in PALETTE.items()}
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
    colored = palette_masks(to_ycc(frames), verdict["background"])[color]
    for i, box in enumerate(verdict["track"]["box"][: len(frames)]):
        if box is not None:
            x0, y0, x1, y1 = box
            pixels[i, y0:y1, x0:x1] = colored[i, y0:y1, x0:x1]
    return ndimage.binary_dilation(pixels, structure=np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]], bool))
