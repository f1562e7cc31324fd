"""Training: one accelerate-based loop (trainer.py), one task per model (tasks.py), safetensors checkpoints."""

from avgen.training.trainer import TrainConfig, train

__all__ = ["TrainConfig", "train"]
