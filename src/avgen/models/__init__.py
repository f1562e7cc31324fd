"""One file per model: the video autoencoder and transformer, the audio autoencoder and transformer,
the per-frame video feature encoder that conditions the audio model, and the spatial upsampler."""

from .autoencoder_audio import AudioAutoencoder, kl_loss, multi_resolution_stft_loss
from .autoencoder_video import TemporalAutoencoder, outlier_penalty_loss
from .transformer_audio import AudioTransformer
from .transformer_video import TransformerBlock, VideoTransformer, flops_per_token
from .upsampler import SpatialUpsampler
from .video_features import VideoFeatureEncoder

__all__ = [
    "AudioAutoencoder",
    "AudioTransformer",
    "SpatialUpsampler",
    "TemporalAutoencoder",
    "TransformerBlock",
    "VideoFeatureEncoder",
    "VideoTransformer",
    "flops_per_token",
    "kl_loss",
    "multi_resolution_stft_loss",
    "outlier_penalty_loss",
]
