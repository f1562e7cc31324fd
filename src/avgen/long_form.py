"""Long form by multi-diffusion (MultiDiffusion, Bar-Tal et al. 2023; Movie Gen Audio and the upsampler).

A sequence longer than the model's window is covered by overlapping windows; at every sampling step the
model predicts the velocity of each window separately and the predictions are blended with triangle
weights (highest in a window's middle, where it has the most context). The model only ever sees one window,
so memory and positions stay bounded however long the clip is; the blend makes neighbouring windows agree.

    windows = plan_windows(total_steps=latents.shape[-1], window=transformer.config.max_positions, overlap=100)
    velocity = multidiffusion_velocity(lambda x, window: transformer(x, ..., audio_step_offset=window.start).sample,
                                       latents, windows)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def plan_windows(total_steps: int, window: int, overlap: int) -> list[slice]:
    """Windows of exactly `window` steps (fewer only if total_steps < window) covering [0, total_steps),
    neighbours overlapping by at least `overlap` steps, starts spread evenly, the last one ending at
    total_steps."""
    if total_steps < 1 or window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need total_steps >= 1, window >= 1 and 0 <= overlap < window; got {total_steps}, {window}, {overlap}")
    if total_steps <= window:
        return [slice(0, total_steps)]
    count = math.ceil((total_steps - overlap) / (window - overlap))  # windows needed at the largest stride
    last_start = total_steps - window
    starts = [round(i * last_start / (count - 1)) for i in range(count)]
    return [slice(start, start + window) for start in starts]


def triangle_weights(length: int, device=None) -> torch.Tensor:
    """(length,) weights rising linearly from the ends to the middle; all positive, so a step covered by
    one window only still gets that window's prediction."""
    position = torch.arange(length, device=device, dtype=torch.float32)
    return torch.minimum(position + 1, length - position)


def multidiffusion_velocity(model_fn: Callable[[torch.Tensor, slice], torch.Tensor], x: torch.Tensor, windows: list[slice]) -> torch.Tensor:
    """Blend per-window predictions: x (..., T) -> (..., T), time last.

    model_fn(x[..., window], window) returns the prediction for that window, shape of its input (the slice
    tells it where the window starts, e.g. to pick the matching video frames). Each output step is the
    triangle-weighted mean of the windows covering it (weights normalised to sum to 1 there).
    """
    if windows[0].start != 0 or windows[-1].stop != x.shape[-1] or any(b.start > a.stop for a, b in zip(windows, windows[1:])):
        raise ValueError(f"windows must cover [0, {x.shape[-1]}) without gaps, in order; got {windows}")
    blended = torch.zeros_like(x, dtype=torch.float32)  # (..., T) float32 accumulator
    total_weight = torch.zeros(x.shape[-1], device=x.device)  # (T,)
    for window in windows:
        weight = triangle_weights(window.stop - window.start, device=x.device)
        blended[..., window] += weight * model_fn(x[..., window], window).float()
        total_weight[window] += weight
    return (blended / total_weight).to(x.dtype)
