"""The training loop shared by every model of a preset, built on accelerate.

The same loop runs on one CPU, one GPU, or many GPUs and nodes (`accelerate launch -m avgen.cli train ...`
gives DDP; each rank draws its own world stream, see WorldDataset). What differs between models (which
modules train, the data, the loss, the evaluation) lives in a Task (tasks/).

A run directory holds everything a run writes; nothing of it belongs in git:

    <run_dir>/config.json      the TrainConfig (a resumed run checks it did not change in ways that matter)
    <run_dir>/log.jsonl        one line per logged step: losses, learning rate, seconds per step
    <run_dir>/machines.jsonl   one line per start or resume that takes steps: the step it starts at, the time, the
                               machine (precision.machine), the precision and the process count (model cards name them)
    <run_dir>/checkpoints/     the newest checkpoints (checkpoint.py); a rerun resumes from the last one
    <run_dir>/final/<name>/    save_pretrained of every trained module at the end (fp32)

Runs end at max_steps, after max_minutes (with a checkpoint, so a machine that is about to be taken back keeps
its work), at stop_at_step (with a checkpoint), or on SIGTERM/SIGINT (also with a checkpoint).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import signal
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from avgen.precision import bf16_is_fast, machine
from avgen.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from avgen.training.config import TrainConfig
from avgen.training.tasks import build_task
from avgen.training.weights import load_exported_weights


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * learning_rate at max_steps."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    ratio = config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return config.learning_rate * ratio


def _check_resumable(run_dir: Path, config: TrainConfig) -> None:
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        return
    saved = json.loads(saved_path.read_text())
    current = dataclasses.asdict(config)
    changed = [k for k in current if k not in TrainConfig.RESUMABLE_CHANGES and saved.get(k) != current[k]]
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise ValueError(f"{run_dir} holds a run with other settings ({details}); use a new --run-dir")


class SameShapeBatches(torch.utils.data.IterableDataset):
    """Groups a stream of items into lists of `batch_size` items with the same shape_key(item) (e.g. the
    10 s and 16 s clips of the two Movie Gen formats), each list yielded as soon as it is full."""

    def __init__(self, dataset, batch_size: int, shape_key):
        super().__init__()
        self.dataset, self.batch_size, self.shape_key = dataset, batch_size, shape_key

    def __iter__(self):
        buckets: dict = {}
        for item in self.dataset:
            bucket = buckets.setdefault(self.shape_key(item), [])
            bucket.append(item)
            if len(bucket) == self.batch_size:
                yield buckets.pop(self.shape_key(item))


class TaskLoss(torch.nn.Module):
    """The trained modules with the task's loss as forward: (batch, step) -> (loss, logs)."""

    def __init__(self, task, modules: dict[str, torch.nn.Module]):
        super().__init__()
        self.task = task
        self.models = torch.nn.ModuleDict(modules)

    def forward(self, batch: dict, step: int):
        return self.task.loss(self.models, batch, step)


def train(config: TrainConfig) -> Path:
    """Train (or resume) the run; returns the run directory."""
    run_dir = Path(config.run_dir)
    task = build_task(config)  # validates the options before anything is written
    _check_resumable(run_dir, config)
    if config.branch_from and latest_checkpoint(run_dir) is None:
        if config.init_from:
            raise ValueError("give --branch-from (a checkpoint: weights, optimizer and step) or --init-from (exported weights), not both")
        if not (Path(config.branch_from) / "state.json").is_file():
            raise FileNotFoundError(f"--branch-from {config.branch_from} is not a checkpoint folder (<run>/checkpoints/step-N with state.json)")
    precision = config.mixed_precision
    if precision == "auto":
        precision = "bf16" if bf16_is_fast("cuda" if torch.cuda.is_available() else "cpu") else "no"
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))

    set_seed(config.seed)
    modules = task.build()  # name -> trainable module
    parameters = [p for module in modules.values() for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    # forward goes through the (DDP-)wrapped module, so gradient sync and autocast apply to the loss
    model, optimizer = accelerator.prepare(TaskLoss(task, modules), optimizer)
    step = 0
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:
        step = load_checkpoint(checkpoint, modules, optimizer)  # optimizer state is moved to the parameters' device
        accelerator.print(f"resumed from {checkpoint} (step {step})")
    elif config.branch_from:
        step = load_checkpoint(Path(config.branch_from), modules, optimizer)
        accelerator.print(f"branched from {config.branch_from} (step {step})")
    else:
        if config.init_from:
            loaded = load_exported_weights(config.init_from, modules)
            accelerator.print(f"initialised {loaded} from {config.init_from}")
        task.start(modules)  # a fresh run only: e.g. statistics measured on the initial weights
    if step >= config.max_steps:
        accelerator.print(f"already at step {step} >= max_steps {config.max_steps}")
    # The data stream is seeded by (seed, step): a resumed run draws new clips instead of replaying the
    # ones it saw before it stopped, and the same resume point always gives the same stream.
    dataset = task.dataset(seed=config.seed * 1_000_003 + step, rank=accelerator.process_index, world_size=accelerator.num_processes)
    if task.shape_key is not None:
        dataset = SameShapeBatches(dataset, config.batch_size, task.shape_key)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None if task.shape_key is not None else config.batch_size,
        collate_fn=task.collate,
        num_workers=config.num_workers,
        persistent_workers=config.num_workers > 0,
    )
    task.to(accelerator.device)  # frozen helpers (e.g. a pretrained autoencoder)

    stop = {"signal": None}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: stop.update(signal=number))
    started = time.monotonic()
    log_path = run_dir / "log.jsonl"
    batches = iter(loader)
    window_start, window_steps = time.monotonic(), 0
    last_step = min(config.max_steps, config.stop_at_step or config.max_steps)
    if step < last_step and accelerator.is_main_process:  # a run can resume on another machine: a line per piece
        started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        piece = {"step": step, "started": started_at, **machine(accelerator.device), "precision": precision,
                 "processes": accelerator.num_processes}
        with (run_dir / "machines.jsonl").open("a") as f:
            f.write(json.dumps(piece) + "\n")
    while step < last_step:
        batch = task.to_device(next(batches), accelerator.device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(step, config)
        model.train()
        loss, logs = model(batch, step)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        grad_norm = float(accelerator.clip_grad_norm_(parameters, config.max_grad_norm))
        optimizer.step()
        step += 1
        window_steps += 1
        if step % config.log_every == 0 and accelerator.is_main_process:
            seconds = (time.monotonic() - window_start) / window_steps
            record = {"step": step, "loss": loss.item(), **{k: float(v) for k, v in logs.items()},
                      "grad_norm": grad_norm, "lr": learning_rate_at(step - 1, config), "sec_per_step": round(seconds, 3)}
            with log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()), flush=True)
            window_start, window_steps = time.monotonic(), 0
        if step % config.eval_every == 0 and accelerator.is_main_process:
            model.eval()
            with torch.no_grad(), accelerator.autocast():
                metrics = task.evaluate(modules)
            with log_path.open("a") as f:
                f.write(json.dumps({"step": step, "eval": metrics}) + "\n")
            print(f"eval step={step} " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)
        out_of_time = config.max_minutes is not None and time.monotonic() - started > 60 * config.max_minutes
        if step % config.checkpoint_every == 0 or step == last_step or out_of_time or stop["signal"]:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                save_checkpoint(run_dir, step, modules, optimizer)
        if out_of_time or stop["signal"]:
            accelerator.print(f"stopping at step {step} ({'time limit' if out_of_time else 'signal'}); rerun to resume")
            return run_dir
    if step < config.max_steps:
        accelerator.print(f"stopped at step {step} (stop_at_step; the schedule runs to {config.max_steps}): export takes its checkpoint")
        return run_dir
    if accelerator.is_main_process:
        for name, module in modules.items():
            if hasattr(module, "save_pretrained"):  # training-only heads (e.g. v2a's event head) are not kept
                module.save_pretrained(run_dir / "final" / name)
    return run_dir
