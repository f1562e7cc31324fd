"""What the denoising pipelines share: the read-only state of a running `__call__` that diffusers pipelines
expose to callbacks, and the initial noise."""

import torch
from diffusers.utils.torch_utils import randn_tensor


def guidance_text(branches: int, embeds, mask, negative_embeds, negative_mask) -> tuple[torch.Tensor, torch.Tensor]:
    """The text of one forward over all guidance branches, [negative] * (branches - 1) + [positive] on the batch
    axis: (branches * B, L, D) states and (branches * B, L) masks, from (B, L, D) and (B, L) of each (padded to
    one length; the negatives may be None with one branch). The same at every step of a call, so the pipelines
    build it, and the transformer prepares it (prepare_conditions), once per call."""
    return torch.cat([negative_embeds] * (branches - 1) + [embeds]), torch.cat([negative_mask] * (branches - 1) + [mask])


class SamplingState:
    """Mixin for the denoising pipelines: `__call__` sets _guidance_scale, _num_timesteps and _interrupt
    (a callback sets `pipe._interrupt = True` to stop the loop, as in diffusers)."""

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @staticmethod
    def prepare_latents(shape, dtype, device, generator, latents: torch.Tensor | None = None) -> torch.Tensor:
        """Given latents are used as they are; otherwise noise of `shape` from the caller's generator(s)
        (a list: one per clip)."""
        if latents is not None:
            return latents.to(device=device, dtype=dtype)
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)


class VideoGuidanceState(SamplingState):
    """SamplingState of the pipelines guided on a text and a video (InstructPix2Pix's form): `__call__` also sets
    _video_guidance_scale (1 = off). Branches per step: 1 (no guidance), 2 ([video; full], text guidance only) or
    3 ([uncond; video; full]), where "video" has the negative text and the video, "uncond" neither."""

    @property
    def video_guidance_scale(self) -> float:
        return self._video_guidance_scale

    @property
    def num_guidance_branches(self) -> int:
        if self._video_guidance_scale != 1:
            return 3
        return 2 if self._guidance_scale > 1 else 1
