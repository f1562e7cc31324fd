"""Where a generation's time goes: seconds per stage of AVGenPipeline, from hooks on its modules (no change to the
pipeline), for `avgen generate --profile` and the benchmarks (benchmarks/bench_speed.py, bench_transformers.py);
and the per-step reference of the transformers' per-call conditions (issue 47), which those compare against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

# AVGenPipeline's stages, in the order a call runs them ("mux": AVGenOutput.save, timed by its caller)
PIPELINE_STAGES = ("text encoders", "video transformer", "video decode", "upsampler", "video features", "audio transformer",
                   "audio decode", "mux")  # fmt: skip
# component -> stage: the time inside the component's forward
PIPELINE_MODULES = {"text_encoder": "text encoders", "audio_text_encoder": "text encoders", "transformer": "video transformer",
                    "upsampler": "upsampler", "video_encoder": "video features", "audio_transformer": "audio transformer"}  # fmt: skip
# "component.method" -> stage: the time inside the method (the autoencoders' tiled decodes; the transformers' preparation
# of the text and video once per call, which their forwards then only read)
PIPELINE_METHODS = {"vae.decode": "video decode", "audio_vae.decode": "audio decode",
                    "transformer.prepare_conditions": "video transformer",
                    "audio_transformer.prepare_conditions": "audio transformer"}  # fmt: skip


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a timing ends when the work does."""
    if device.type == "cuda":
        torch.cuda.synchronize()


class StageTimer:
    """Seconds per stage of a pipeline, from forward hooks on its modules (attribute -> stage) and wrappers of their
    methods ("attribute.method" -> stage); a missing attribute or method is skipped. `begin`/`end` time anything else.
    pipe None: `attach` a pipeline later (one that does not exist yet while its loading is timed)."""

    def __init__(self, pipe, device, modules: dict[str, str], methods: dict[str, str], stages=None):
        stages = stages or list(dict.fromkeys([*modules.values(), *methods.values()]))
        self.device, self.seconds, self.calls, self._start = torch.device(device), dict.fromkeys(stages, 0.0), dict.fromkeys(stages, 0), {}
        self.modules, self.methods = modules, methods
        if pipe is not None:
            self.attach(pipe)

    def attach(self, pipe) -> None:
        for attribute, stage in self.modules.items():
            module = getattr(pipe, attribute, None)
            if module is not None:
                module.register_forward_pre_hook(lambda *_, key=(attribute, stage): self.begin(key))
                module.register_forward_hook(lambda *_, key=(attribute, stage): self.end(key))
        for name, stage in self.methods.items():
            attribute, method = name.split(".")
            function = getattr(getattr(pipe, attribute, None), method, None)
            if function is not None:
                setattr(getattr(pipe, attribute), method, self.wrap(function, stage))

    def begin(self, key) -> None:
        sync(self.device)
        self._start[key] = time.perf_counter()

    def end(self, key) -> None:
        sync(self.device)
        self.seconds[key[1]] += time.perf_counter() - self._start.pop(key)
        self.calls[key[1]] += 1

    def wrap(self, function: Callable, stage: str) -> Callable:
        def timed(*args, **kwargs):
            self.begin((function, stage))
            try:
                return function(*args, **kwargs)
            finally:
                self.end((function, stage))

        return timed

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage `name`."""
        self.begin(("block", name))
        try:
            yield
        finally:
            self.end(("block", name))


class PipelineProfile(StageTimer):
    """`avgen generate --profile`: AVGenPipeline's stages (PIPELINE_STAGES) and its "loading", as a table.
    enabled False: every method does nothing, so a command times only when asked to."""

    STAGES = ("loading", *PIPELINE_STAGES)

    def __init__(self, device, enabled: bool = True):
        super().__init__(None, device, PIPELINE_MODULES, PIPELINE_METHODS, stages=self.STAGES)
        self.enabled = enabled

    def attach(self, pipe) -> None:
        if self.enabled:
            super().attach(pipe)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with super().stage(name):
            yield

    def report(self, total: float) -> str:
        """The seconds of each stage, then "other" (start-up, argument checks, scheduler steps, guidance arithmetic,
        conversions: the rest of `total`) and the total, one line each."""
        rows = [*self.seconds.items(), ("other", total - sum(self.seconds.values())), ("total", total)]
        return "\n".join(["stage                 seconds", *(f"{name:<20} {seconds:8.2f}" for name, seconds in rows)])


@contextmanager
def conditions_per_step(*models) -> Iterator[None]:
    """Within: the transformers' prepare_conditions returns None, so the pipelines' forwards prepare the text (and
    video) at every step, as before the per-call conditions of issue 47: the reference that their tests and
    bench_speed.py --compare-conditions hold the per-call path to."""
    for model in models:
        model.prepare_conditions = lambda *args, **kwargs: None  # an instance attribute: shadows the method
    try:
        yield
    finally:
        for model in models:
            del model.prepare_conditions
