"""Exported components (`<folder>/<name>/config.json` + safetensors): which class reads one, and copying their
weights into a run's modules (`--init-from`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoConfig

import avgen.models as models
from avgen.models.text_encoder import encoder_class


def component_class(folder: Path):
    """The class whose config.json is in `folder`: an avgen model (diffusers `_class_name`) or a transformers text
    encoder (`model_type`: a T5 encoder, a BERT, ...; avgen.models.text_encoder.encoder_class)."""
    config = json.loads((folder / "config.json").read_text())
    if "_class_name" not in config and "model_type" in config:
        return encoder_class(AutoConfig.from_pretrained(folder))
    return getattr(models, config["_class_name"])


def load_allowing_optional_keys(module: torch.nn.Module, state_dict: dict, mismatch: str) -> None:
    """module.load_state_dict(state_dict), strict except for the keys the module adds at neutral values
    (`module.optional_init_keys()`, e.g. VideoTransformer's text standardization), which an older state of the
    same shape lacks; anything else missing or unexpected raises RuntimeError("<mismatch>: ...")."""
    optional = module.optional_init_keys() if hasattr(module, "optional_init_keys") else set()
    missing, unexpected = module.load_state_dict(state_dict, strict=False)
    if unexpected or set(missing) - optional:
        raise RuntimeError(f"{mismatch}: missing {sorted(set(missing) - optional)}, unexpected {sorted(unexpected)}")


def load_exported_weights(folder: str | Path, modules: dict[str, torch.nn.Module]) -> list[str]:
    """Copy the weights of exported components <folder>/<name>/ (any dtype) into the same-named modules,
    in place; returns the names loaded. A shape mismatch is an error: the run's preset and the folder differ."""
    loaded = []
    for name, module in modules.items():
        path = Path(folder) / name
        if not (path / "config.json").is_file():
            continue
        source = component_class(path).from_pretrained(path, torch_dtype=torch.float32, use_safetensors=True)
        load_allowing_optional_keys(module, source.state_dict(), f"{path} does not match the run's {name}")
        loaded.append(name)
    if not loaded:
        raise FileNotFoundError(f"init_from={folder} holds none of the components {sorted(modules)}")
    return loaded
