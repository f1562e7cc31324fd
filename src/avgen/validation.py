"""The rules for what a user gives avgen, in one place.

The commands check their flags with these before they load a model, and the pipelines their arguments in
`check_inputs` before they compute anything; `name` is what the error names: the flag ("--guidance") for a
command, the argument ("guidance_scale") for a pipeline. Every check raises ValueError.

Text is valid Unicode: a `str` that encodes as UTF-8. A byte that is not UTF-8 in a command-line argument reaches
Python as a lone surrogate (U+DC80-U+DCFF, PEP 383), and a lone surrogate cannot be encoded either, so both are
refused here rather than by the tokenizer (a TypeError deep in the text encoder). A prompt that says what to make
must also hold something besides whitespace; a negative or audio prompt may be empty.

Nothing here imports torch or the models at import time: the commands check their flags before torch is loaded.
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path

SEED_LIMIT = 2**64  # torch.Generator.manual_seed takes a uint64: seeds are integers in [0, 2**64)


def check_text(name: str, value, required: bool = False) -> str:
    """`value` if it is valid Unicode text (and, when `required`, not empty or only whitespace)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string; got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(value[error.start])
        origin = f" (the byte 0x{code - 0xDC00:02x}, which is not UTF-8)" if 0xDC80 <= code <= 0xDCFF else ""
        raise ValueError(
            f"{name} must be valid Unicode text (UTF-8); character {error.start} is a lone surrogate U+{code:04X}{origin}"
        ) from None
    if required and not value.strip():
        raise ValueError(f"{name} is {'only whitespace' if value else 'empty'}; it must say what to make")
    return value


def check_texts(name: str, value, required: bool = False):
    """check_text on a string or on each string of a list (entries named name[i]); None passes."""
    if isinstance(value, (list, tuple)):
        for index, text in enumerate(value):
            check_text(f"{name}[{index}]", text, required)
    elif value is not None:
        check_text(name, value, required)
    return value


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(name: str, value, minimum: float | None = None, hint: str = "") -> float:
    """`value` as a float if it is a finite real number (>= `minimum`); strings, bools, NaN and inf are refused."""
    if not _is_real(value) or not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}{hint}; got {value!r}")
    return float(value)


def check_duration(name: str, value) -> float:
    """`value` as a float if it is a positive, finite number of seconds."""
    if not _is_real(value) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of seconds; got {value!r}")
    return float(value)


def check_seed(name: str, value) -> int:
    """`value` if it is an integer in [0, 2**64), the seeds torch.Generator.manual_seed takes (one rule for every
    command and the batch file)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**64); got {value!r}")
    return int(value)


def check_generator(name: str, value) -> None:
    """None, a torch.Generator or a list of them (how many is the pipeline's check)."""
    import torch

    entries = value if isinstance(value, list) else [value]
    if value is not None and not all(isinstance(entry, torch.Generator) for entry in entries):
        raise ValueError(
            f"{name} must be a torch.Generator, e.g. torch.Generator().manual_seed(42), or a list of them "
            f"(one per clip); got {type(value).__name__}"
        )


def check_target(path: str | os.PathLike, suffixes: tuple[str, ...] | None = None, name: str | None = None) -> Path:
    """`path` as a Path if a file can be written there: a known suffix (when `suffixes` is given), an existing folder
    that this process can create files in (tried with a hidden probe file, removed at once), not a folder itself.
    `name`, the flag, starts the error when given."""
    path = Path(path)
    what = f"{name}: cannot write {str(path)!r}" if name else f"cannot write {str(path)!r}"
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(f"{what}: unknown extension {path.suffix!r}; expected one of {suffixes}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{what}: folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"{what}: it is a folder")
    try:  # permissions alone do not tell (root, read-only mounts, /proc): try to create a file
        descriptor, probe = tempfile.mkstemp(prefix=".avgen-", suffix=".probe", dir=folder)
    except OSError as error:
        raise ValueError(f"{what}: folder {str(folder)!r} cannot be written to ({error.strerror})") from None
    os.close(descriptor)
    os.unlink(probe)
    return path
