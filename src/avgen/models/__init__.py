"""The video models: the temporal autoencoder (pixels <-> latents) and the flow-matching transformer."""

from .autoencoder_video import TemporalAutoencoder, outlier_penalty_loss
from .transformer_video import VideoTransformer, flops_per_token

__all__ = ["TemporalAutoencoder", "VideoTransformer", "flops_per_token", "outlier_penalty_loss"]
