"""How every avgen pipeline loads: float32 unless `torch_dtype` says otherwise, safetensors only, checked first.

diffusers builds its models in float32 when no torch_dtype is given, but transformers 5 loads a model in the
dtype its weights were saved in: the shipped fp16 T5 text encoders would come up in float16, which CPUs run
in emulation and in which T5 activations can overflow. With this default both libraries follow diffusers'
rule; `from_pretrained(path, dtype=torch.bfloat16)` (or torch_dtype=) still picks half precision explicitly.

A local pipeline folder is checked before anything loads, each problem named by its own path: a component folder
model_index.json lists but the folder lacks (diffusers would name the pipeline folder instead), a model with no
safetensors weights (pickle files, .bin/.pt, are never loaded: unpickling runs code), and weights that are cut short,
not safetensors, or hold NaN or infinite values (they would load and then make NaN clips). Reading every tensor once
costs about 0.1 s of CPU on the shipped weights, a tenth of what loading them costs (docs/experiments.md, 2026-12-08).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def components(folder: str | os.PathLike) -> dict[str, Path]:
    """name -> folder of each component a pipeline folder's model_index.json lists ([library, class], not None)."""
    index_path = Path(folder) / "model_index.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{index_path} is not valid JSON ({error})") from None
    if not isinstance(index, dict):
        raise ValueError(f"{index_path} must hold a JSON object; got {type(index).__name__}")
    listed = lambda value: isinstance(value, list) and len(value) == 2 and None not in value  # noqa: E731
    return {name: Path(folder) / name for name, value in index.items() if not name.startswith("_") and listed(value)}


def check_folder(folder: str | os.PathLike, skip=()) -> None:
    """FileNotFoundError for a listed component folder that is missing or a model folder (one with a config.json)
    without safetensors weights; `skip`: components the caller passes in itself, not loaded from the folder."""
    for name, path in components(folder).items():
        if name in skip:
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is missing: {Path(folder) / 'model_index.json'} lists the component {name!r}")
        if (path / "config.json").is_file() and not any(path.glob("*.safetensors")):
            pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
            found = f"only {', '.join(pickles)} (pickle, never loaded: it can run code; convert it to safetensors)" if pickles else "none"
            raise FileNotFoundError(f"{path} has no .safetensors weights; found {found}")


def check_weights(folder: str | os.PathLike, skip=()) -> None:
    """ValueError naming the file for safetensors weights that cannot be read whole or hold NaN or infinite values."""
    from safetensors import SafetensorError, safe_open

    for name, path in components(folder).items():
        for file in sorted(path.glob("*.safetensors")) if name not in skip else ():
            try:
                with safe_open(str(file), framework="pt") as weights:
                    for key in weights.keys():
                        if not _finite(weights.get_tensor(key)):
                            raise ValueError(f"{file} holds NaN or infinite values (tensor {key!r}): these weights are corrupt")
            except SafetensorError as error:
                raise ValueError(f"{file} cannot be read as safetensors weights (cut short or not safetensors): {error}") from None


def _finite(tensor: torch.Tensor) -> bool:
    """Whether every value of a tensor is finite, told by numpy (one thread): torch.isfinite wakes torch's thread pool
    for each of the hundreds of small tensors, which on a busy CPU cost over 50x the CPU time of this (measured)."""
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: inf and NaN are the values with every exponent bit set
        return not np.any((tensor.view(torch.int16).numpy() & 0x7F80) == 0x7F80)
    if tensor.dtype in (torch.float16, torch.float32, torch.float64):
        return bool(np.isfinite(tensor.numpy()).all())
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


class Float32ByDefault:
    """Mixin for DiffusionPipeline subclasses (list it before DiffusionPipeline)."""

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:  # diffusers 0.36+ calls it `dtype`
            kwargs["dtype"] = torch.float32
        kwargs.setdefault("use_safetensors", True)  # diffusers would fall back to pickle files
        folder = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        if folder is not None and (Path(folder) / "model_index.json").is_file():  # a hub id is downloaded, not checked
            check_folder(folder, skip=kwargs)  # a component given as an argument is not read from the folder
            check_weights(folder, skip=kwargs)
        return super().from_pretrained(*args, **kwargs)
