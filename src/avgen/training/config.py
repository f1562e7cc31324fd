"""The settings of one training run (`avgen train TASK ...`), saved as <run_dir>/config.json."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class TrainConfig:
    task: str
    run_dir: str
    preset: str = "pipelines/tiny"
    data: str = "world"  # "world" (streamed procedural clips) or a folder of MP4s + metadata.jsonl
    max_steps: int = 4000
    batch_size: int = 8
    learning_rate: float = 3e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1  # cosine decay to this fraction of learning_rate at max_steps
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    # "auto" (bf16 where avgen.precision finds it faster from the machine: CUDA, CPUs with bf16 units; or as
    # AVGEN_PRECISION says), "bf16" or "no"
    mixed_precision: str = "auto"
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    eval_every: int = 250
    checkpoint_every: int = 200
    max_minutes: float | None = None
    # end the run at this step (with a checkpoint, no final/), the learning-rate schedule still planned for max_steps:
    # a stage of a recipe that stopped part-way, reproduced exactly (0: run to max_steps)
    stop_at_step: int = 0
    # a folder of exported components (e.g. weights/tiny): a new run starts from their weights instead of
    # random ones (modules without a folder there stay random); a run that has a checkpoint ignores it
    init_from: str = ""
    # a checkpoint folder of another run (<run>/checkpoints/step-N): a new run starts there, with that run's weights,
    # optimizer state and step, under its own settings (e.g. a changed --option): a recipe that changes a loss
    # part-way, reproduced exactly. A run that has a checkpoint ignores it
    branch_from: str = ""
    # task-specific settings as given (`--option key=value`), saved as given; each task reads them into its
    # typed Options dataclass (avgen/training/tasks/)
    options: dict = dataclasses.field(default_factory=dict)

    # settings that may change when a run is resumed (schedules and stopping), the rest must not
    RESUMABLE_CHANGES = ("run_dir", "max_steps", "max_minutes", "stop_at_step", "log_every", "eval_every", "checkpoint_every", "num_workers",
                         "init_from", "branch_from")
