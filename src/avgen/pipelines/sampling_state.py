"""What the denoising pipelines share: the read-only state of a running `__call__` that diffusers pipelines
expose to callbacks, the initial noise, the timesteps, the guided text, the guidance combination and the one
denoising loop (Euler steps of flow matching, avgen.flow_matching).

Guidance runs all its branches in one forward, stacked on the batch axis (B clips each):
    1 branch:  [full]                          no guidance
    2 branches: [negative; full]               v = v_neg + g * (v_full - v_neg)
    3 branches: [uncond; video; full]          v = v_uncond + g_v * (v_video - v_uncond) + g * (v_full - v_video)
where "full" has the prompt (and the video), "negative"/"video" the negative text (and the video), "uncond" the
negative text and no video (InstructPix2Pix's form, with the video as the image: video_to_audio.py, video_edit.py).
"""

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor

from avgen.flow_matching import linear_quadratic_sigmas, start_step


def same_length(embeds, mask, negative_embeds, negative_mask) -> tuple:
    """Zero-pad (B, L, D) text states and their (B, L) masks, positive and negative, to the longer of the two, so
    that both go through one forward (the masks hide the padding). Unchanged when the negatives are None."""
    if negative_embeds is None:
        return embeds, mask, negative_embeds, negative_mask
    length = max(embeds.shape[1], negative_embeds.shape[1])
    pad = lambda x: F.pad(x, (0, 0) * (x.ndim - 2) + (0, length - x.shape[1]))  # noqa: E731
    return pad(embeds), pad(mask), pad(negative_embeds), pad(negative_mask)


def guidance_text(branches: int, embeds, mask, negative_embeds, negative_mask) -> tuple[torch.Tensor, torch.Tensor]:
    """The text of one forward over all guidance branches, [negative] * (branches - 1) + [positive] on the batch
    axis: (branches * B, L, D) states and (branches * B, L) masks, from (B, L, D) and (B, L) of each (padded to
    one length; the negatives may be None with one branch). The same at every step of a call, so the pipelines
    build it, and the transformer prepares it (prepare_conditions), once per call."""
    return torch.cat([negative_embeds] * (branches - 1) + [embeds]), torch.cat([negative_mask] * (branches - 1) + [mask])


def guided_text_conditions(transformer, branches: int, mask, negative_mask) -> Callable[[dict], dict]:
    """`prepare` of SamplingState.denoise for a video transformer: callback tensors {"prompt_embeds": (B, L, D),
    "negative_prompt_embeds": (B, L, D) or None} -> the forward's text keywords: the branches' text (guidance_text)
    and the transformer's preparation of it (TextConditions: projection, cross-attention keys and values)."""

    def prepare(text: dict) -> dict:
        embeds, text_mask = guidance_text(
            branches, text["prompt_embeds"], mask, text["negative_prompt_embeds"], negative_mask
        )
        conditions = transformer.prepare_conditions(embeds, text_mask)
        return dict(encoder_hidden_states=embeds, encoder_attention_mask=text_mask, conditions=conditions)

    return prepare


def combine_guidance(velocity: torch.Tensor, branches: int, guidance_scale: float, video_guidance_scale: float = 1.0):
    """Velocities of the branches (branches * B, ...) -> the guided velocity (B, ...), as in the module docstring.
    With three branches text guidance off (guidance_scale <= 1) is scale 1 of the form."""
    if branches == 3:
        uncond, video, full = velocity.chunk(3)
        return uncond + video_guidance_scale * (video - uncond) + max(guidance_scale, 1.0) * (full - video)
    if branches == 2:  # the form with video_guidance_scale = 1: v_uncond cancels
        negative, full = velocity.chunk(2)
        return negative + guidance_scale * (full - negative)
    return velocity


class SamplingState:
    """Mixin for the denoising pipelines: `__call__` sets _guidance_scale, _num_timesteps and _interrupt
    (a callback sets `pipe._interrupt = True` to stop the loop, as in diffusers)."""

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def num_guidance_branches(self) -> int:
        return 2 if self._guidance_scale > 1 else 1

    @property
    def do_classifier_free_guidance(self) -> bool:
        """Whether the forwards have a branch with the negative text (so it is encoded)."""
        return self.num_guidance_branches > 1

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

    def prepare_timesteps(self, num_inference_steps: int, device, strength: float = 1.0) -> tuple[torch.Tensor, float]:
        """Movie Gen's linear-quadratic schedule as the scheduler's sigmas (sigma = 1 - t, timestep = sigma *
        num_train_timesteps; flow_matching.py) -> (the timesteps to run, the sigma they start at). strength < 1 skips
        the steps above it (flow_matching.start_step; the scheduler's step index starts there, as in diffusers'
        img2img)."""
        sigmas = linear_quadratic_sigmas(num_inference_steps)
        begin = start_step(sigmas, strength)
        self.scheduler.set_timesteps(sigmas=sigmas, device=device)
        self.scheduler.set_begin_index(begin)
        timesteps = self.scheduler.timesteps[begin:]
        self._num_timesteps = len(timesteps)
        return timesteps, sigmas[begin]

    def denoise(
        self,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        velocity: Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor],
        prepare: Callable[[dict], Any],
        tensors: dict[str, torch.Tensor | None],
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        before_step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The denoising loop: Euler steps of flow matching from float32 noise `latents` (B, C, ...) over
        `timesteps`, with a progress bar, diffusers' callback_on_step_end and `self.interrupt`.

        velocity(latents, t, conditions) -> the guided velocity (B, C, ...) at flow time t (a 0-d tensor, 0 = noise,
            1 = data), one forward over the guidance branches.
        prepare(tensors) -> conditions: what every step's forward shares (the branches' text, prepared by the
            transformer; the video), computed once per call, and again only when a callback replaces one of
            `tensors`: the tensors a callback may read and replace besides "latents" (e.g. "prompt_embeds").
        before_step(latents, t) -> latents: applied before each step (known audio on its own noise path).
        """
        tensors = dict(tensors)
        conditions = prepare(tensors)
        num_train_timesteps = self.scheduler.config.num_train_timesteps
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, timestep in enumerate(timesteps):
                if self.interrupt:
                    continue
                t = 1 - timestep.float() / num_train_timesteps  # flow time: 0 = noise, 1 = data
                if before_step is not None:
                    latents = before_step(latents, t)
                # the scheduler integrates dx/dsigma = -velocity in sigma = 1 - t (flow_matching.py)
                step_velocity = velocity(latents, t, conditions)  # (B, C, ...)
                latents = self.scheduler.step(-step_velocity, timestep, latents, return_dict=False)[0]

                if callback_on_step_end is not None:
                    names = callback_on_step_end_tensor_inputs or []
                    callback_kwargs = {name: latents if name == "latents" else tensors[name] for name in names}
                    callback_outputs = callback_on_step_end(self, i, timestep, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)
                    replaced = {name: callback_outputs.pop(name) for name in tensors if name in callback_outputs}
                    if replaced:
                        conditions = prepare(tensors | replaced)
                        tensors.update(replaced)
                progress_bar.update()
        return latents


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
