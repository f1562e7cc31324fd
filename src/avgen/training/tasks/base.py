"""What every task shares: the Task interface the trainer calls, typed task options, and small helpers.

A task builds its modules from the preset's configs (`<preset>/<component>/config.json`), streams its data
(the world, or a folder of the user's MP4s + metadata.jsonl), turns a batch into a loss, and evaluates
itself on fixed clips that no training step sees (a seed outside the training streams).

Task options (`TrainConfig.options`, `--option key=value` on the command line) are read into the task's
`Options` dataclass before anything runs: an unknown key or a value of the wrong type is an error.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoConfig, PreTrainedModel

from avgen.models.text_encoder import encoder_class, load_text_encoder, text_width
from avgen.training.config import TrainConfig
from avgen.training.tasks.streams import LoopedFolder
from avgen.world.dataset import VideoFolderDataset, WorldDataset

EVAL_SEED = 2**31 - 1  # the evaluation clips' seed; training streams are seeded by seed * 1_000_003 + step


def read_options(options_class: type, given: dict, task: str):
    """`given` (option name -> value, as parsed from `--option key=value`) as an `options_class` instance, each
    value coerced to its field's type (an int where a float is asked for, a number where a path is)."""
    hints = typing.get_type_hints(options_class)
    unknown = sorted(set(given) - set(hints))
    if unknown:
        raise ValueError(f"task {task!r} has no option(s) {unknown}; it takes {sorted(hints)}")
    return options_class(**{name: _coerce(name, value, hints[name]) for name, value in given.items()})


def _coerce(name: str, value, kind):
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and number and float(value).is_integer():
        return int(value)
    if kind is float and number:
        return float(value)
    if kind is str and (isinstance(value, str) or number):  # a folder named "12" arrives as a number
        return str(value)
    if typing.get_origin(kind) is list and isinstance(value, (list, tuple)):
        return list(value)
    expected = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(kind, "a list")
    raise ValueError(f"option {name} is {expected}; got {value!r}")


class Task:
    """One trainable component group of a preset. Subclasses set `Options` (a dataclass of their options with
    their defaults) and define build, dataset, collate and loss."""

    @dataclasses.dataclass
    class Options:
        pass

    # None: items of any shape batch together; else a function item -> key, and a batch only takes
    # items with the same key (clips of different lengths cannot be stacked)
    shape_key = None

    def __init__(self, config: TrainConfig):
        self.config = config
        self.options = read_options(self.Options, config.options, config.task)

    def build(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def dataset(self, seed: int, rank: int, world_size: int) -> torch.utils.data.IterableDataset:
        raise NotImplementedError

    def collate(self, items: list[dict]) -> dict:
        raise NotImplementedError

    def loss(self, modules: dict, batch: dict, step: int) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def evaluate(self, modules: dict) -> dict:
        return {}

    def start(self, modules: dict) -> None:
        """Called once when a run starts fresh (not on resume), after --init-from weights are loaded."""

    def to(self, device) -> None:
        """Move frozen helper models to the training device."""

    @staticmethod
    def to_device(batch: dict, device) -> dict:
        return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def world_or_folder(self, seed: int, rank: int, world_size: int, **world_options):
        if self.config.data == "world":
            return WorldDataset(seed=seed, rank=rank, world_size=world_size, **world_options)
        folder = VideoFolderDataset(self.config.data, resolution=world_options.get("resolution"),
                                    sample_rate=world_options.get("sample_rate", 16000))
        return LoopedFolder(folder, seed, rank, world_size)


def load_component(preset: str | Path, name: str, cls):
    """A randomly initialised module of the shape given by <preset>/<name>/config.json."""
    path = Path(preset) / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"preset {preset} has no {name}/config.json")
    return cls.from_config(cls.load_config(path))


def check_train_encoder(train_encoder: bool, config: TrainConfig) -> None:
    """The autoencoder tasks' `train_encoder` option: false trains the decoder alone, from --init-from's encoder."""
    if not train_encoder and not config.init_from:
        raise ValueError("train_encoder=false keeps the encoder as it is: give the trained one with --init-from")


def check_vocabulary(tokenizer, text_encoder) -> None:
    if len(tokenizer) > text_encoder.config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} entries, the text encoder's vocabulary only {text_encoder.config.vocab_size}")


def preset_text_encoder(preset: str | Path, tokenizer) -> PreTrainedModel:
    """A randomly initialised text encoder of the shape of <preset>/text_encoder/config.json (the shipped presets: a
    T5 encoder), checked against the tokenizer that will feed it."""
    config = AutoConfig.from_pretrained(Path(preset) / "text_encoder")
    text_encoder = encoder_class(config)(config)
    check_vocabulary(tokenizer, text_encoder)
    return text_encoder


def pretrained_text_encoder(name_or_path: str | Path, tokenizer) -> PreTrainedModel:
    """A pretrained transformers encoder (folder or hub id; safetensors weights only), in float32, checked against
    the tokenizer that will feed it."""
    text_encoder = load_text_encoder(name_or_path)
    check_vocabulary(tokenizer, text_encoder)
    return text_encoder


def check_text_dim(transformer, text_encoder, source: str) -> None:
    """ValueError unless the transformer reads text states as wide as the text encoder gives (`source` names it)."""
    width = text_width(text_encoder.config)
    if transformer.config.text_dim != width:
        raise ValueError(f"transformer text_dim {transformer.config.text_dim} != the width {width} of the text encoder "
                         f"({source}): set text_dim to {width} in the preset's transformer/config.json")


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1]."""
    mse = F.mse_loss(prediction.float().clamp(-1, 1), target.float()).item()
    return 10 * math.log10(4.0 / max(mse, 1e-12))
