"""How every avgen pipeline loads: float32 unless `torch_dtype` says otherwise.

diffusers builds its models in float32 when no torch_dtype is given, but transformers 5 loads a model in the
dtype its weights were saved in: the shipped fp16 T5 text encoders would come up in float16, which CPUs run
in emulation and in which T5 activations can overflow. With this default both libraries follow diffusers'
rule; `from_pretrained(path, dtype=torch.bfloat16)` (or torch_dtype=) still picks half precision explicitly.
"""

from __future__ import annotations

import torch


class Float32ByDefault:
    """Mixin for DiffusionPipeline subclasses (list it before DiffusionPipeline)."""

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:  # diffusers 0.36+ calls it `dtype`
            kwargs["dtype"] = torch.float32
        return super().from_pretrained(*args, **kwargs)
