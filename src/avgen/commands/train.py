"""`avgen train TASK --run-dir DIR`: train (or resume) one model of a preset.

    avgen train vae --run-dir runs/vae --max-steps 3000 --max-minutes 150
    accelerate launch -m avgen.cli train t2v --run-dir runs/t2v      # DDP on every GPU of the machine

Rerunning the same command resumes from the run's last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from avgen.training.checkpoint import latest_checkpoint
from avgen.training.config import TrainConfig
from avgen.training.tasks import TASKS
from avgen.training.trainer import train

STOPPED_EARLY = 75  # EX_TEMPFAIL: a time limit or a signal stopped the run; a rerun resumes it


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"options are key=value; got {text!r}")
    try:
        return key, json.loads(value)  # numbers, booleans, lists
    except json.JSONDecodeError:
        return key, value  # a plain string


def _options_help() -> str:
    """Each task's options with their defaults (its Options dataclass in avgen/training/tasks/)."""
    lines = ["task options (--option KEY=VALUE; JSON values: numbers, true/false, lists; anything else is a string):"]
    for name, task in sorted(TASKS.items()):
        defaults = dataclasses.asdict(task.Options())
        lines.append(f"  {name}: " + ", ".join(f"{key}={json.dumps(value)}" for key, value in defaults.items()))
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _options_help()
    defaults = TrainConfig(task="", run_dir="")
    parser.add_argument("task", choices=sorted(TASKS), help="which model to train")
    parser.add_argument("--run-dir", required=True, help="where checkpoints and logs go (resumed if it exists)")
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("task", "run_dir", "options"):
            continue
        default = getattr(defaults, field.name)
        kind = float if field.name in ("learning_rate", "min_lr_ratio", "weight_decay", "max_grad_norm", "max_minutes") else (
            int if isinstance(default, int) else str)
        parser.add_argument("--" + field.name.replace("_", "-"), type=kind, default=default, help=f"default: {default}")
    parser.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                        help="a task option (listed below), repeatable")


def run(args: argparse.Namespace) -> int:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "options"}
    config = TrainConfig(**values, options=dict(args.option))
    run_dir = train(config)
    checkpoint = latest_checkpoint(run_dir)
    stopped_as_asked = config.stop_at_step and checkpoint is not None and int(checkpoint.name.split("-")[1]) >= config.stop_at_step
    if stopped_as_asked and not (run_dir / "final").is_dir():  # a recipe's stage that ends part-way: done, not interrupted
        print(f"stopped at step {config.stop_at_step} as asked (--stop-at-step; the schedule runs to {config.max_steps}): {checkpoint}")
        return 0
    if not (run_dir / "final").is_dir():
        print(f"stopped before max_steps; rerun the same command to resume ({run_dir})")
        return STOPPED_EARLY
    print(f"finished: {run_dir / 'final'}")
    return 0
