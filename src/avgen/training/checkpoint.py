"""Training checkpoints in safetensors only: model weights, AdamW state, RNG state and the step.

Nothing here is pickled, so resuming never runs `torch.load` on a file: the optimizer's tensors go into
`optimizer.safetensors` under keys "<param index>.<name>" and its hyper-parameters into `state.json`.

Layout of one checkpoint, written to a hidden temporary folder and renamed into place (a killed run
never leaves a half-written checkpoint that `latest_checkpoint` could pick):

    <run>/checkpoints/step-000400/
        <component>.safetensors   (fp32 weights; shared tensors such as T5's tied embeddings kept once)
        <component>/config.json   (the module's config, when it has one)
        optimizer.safetensors
        state.json        {"step": 400, "param_groups": [...], "rng": {...}}
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from avgen import atomic

STEP_DIR = re.compile(r"^step-(\d+)$")


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step under <run_dir>/checkpoints, or None."""
    root = Path(run_dir) / "checkpoints"
    steps = [(int(m.group(1)), p) for p in root.glob("step-*") if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return max(steps)[1] if steps else None


def save_checkpoint(
    run_dir: str | Path, step: int, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer, keep: int = 2
) -> Path:
    """Write checkpoint `step` atomically, then delete all but the newest `keep` checkpoints."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, module in modules.items():
        save_model(module, str(tmp / f"{name}.safetensors"))
        if hasattr(module, "save_config"):  # diffusers models: the shape, so the checkpoint alone rebuilds it
            module.save_config(tmp / name)
        elif hasattr(getattr(module, "config", None), "save_pretrained"):  # transformers models
            module.config.save_pretrained(tmp / name)
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    save_file(tensors, tmp / "optimizer.safetensors")
    rng = {"torch": torch.get_rng_state().tolist()}
    meta = {"step": step, "param_groups": state["param_groups"], "optimizer_scalars": scalars, "rng": rng}
    (tmp / "state.json").write_text(json.dumps(meta))
    if final.exists():
        shutil.rmtree(final)
    atomic.replace(tmp, final)  # every file fsync'ed before the folder takes its name
    existing = sorted(p for p in root.glob("step-*") if STEP_DIR.match(p.name))
    for old in existing[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None) -> int:
    """Load weights (and optimizer/RNG state) of a checkpoint into `modules`; returns its step."""
    path = Path(path)
    for name, module in modules.items():
        load_model(module, str(path / f"{name}.safetensors"))
    meta = json.loads((path / "state.json").read_text())
    if optimizer is not None:
        tensors = load_file(path / "optimizer.safetensors")
        state: dict[int, dict] = {}
        for key, value in list(tensors.items()) + list(meta["optimizer_scalars"].items()):
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(torch.tensor(meta["rng"]["torch"], dtype=torch.uint8))
    return int(meta["step"])
