"""Training: one accelerate-based loop (trainer.py), one task per model (tasks/), safetensors checkpoints
(checkpoint.py), run settings (config.py), exported components (weights.py, export.py)."""

from avgen.training.config import TrainConfig
from avgen.training.trainer import train

__all__ = ["TrainConfig", "train"]
