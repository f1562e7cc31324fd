"""The read-only state of a running `__call__` that diffusers pipelines expose to callbacks, in one place."""


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
