"""Per-frame visual features for the audio model (Movie Gen Audio uses MetaCLIP per frame; none can be
downloaded here, so we learn a small one).

Every frame at the clip's own fps is encoded (no temporal striding, unlike the TAE's 4x), so a 1-2-frame
event (a ball's floor contact, a lightning flash) has a feature of its own:
- each frame is resized to `frame_size` and paired with its absolute difference to the previous frame
  (|x_t - x_{t-1}|, 0 for the first frame): motion and flashes show up directly instead of having to be
  inferred from two separate embeddings;
- a small 2D CNN (stride-2 3x3 convs, GroupNorm, SiLU) maps each 6-channel frame to a vector;
- one centred temporal conv (kernel 3, residual) over the frame axis lets frame t see t-1 and t+1: a floor
  contact is where the vertical motion reverses, which needs both neighbours. Centred and unstrided, it
  keeps features frame-aligned.
Output (B, F, feature_dim), one vector per frame, which AudioTransformer resamples to its latent rate.

Training: jointly with AudioTransformer (the flow-matching loss back-propagates into it), since only that
loss says what the audio needs; an auxiliary per-frame event loss on the world's ground truth (contact /
footstep / flash flags) is a cheap way to speed it up. Separate training would need such a target alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class VideoFeatureEncoder(ModelMixin, ConfigMixin):
    """Frames (B, 3, F, H, W) in [-1, 1] -> per-frame features (B, F, feature_dim).

    Args:
        in_channels: image channels (3); the CNN sees 2x that (frame and frame difference).
        frame_size: frames are resized to frame_size x frame_size (bilinear) when they are not already.
        block_out_channels: channels of the stride-2 conv stages (4 stages: 64 -> 4x4).
        feature_dim: output width per frame (the audio transformer's video_dim).
        norm_num_groups: GroupNorm groups per stage.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        frame_size: int = 64,
        block_out_channels: tuple[int, ...] = (16, 32, 64, 64),
        feature_dim: int = 128,
        norm_num_groups: int = 8,
    ):
        super().__init__()
        layers, channels = [], 2 * in_channels
        for out_channels in block_out_channels:
            layers += [nn.Conv2d(channels, out_channels, 3, stride=2, padding=1), nn.GroupNorm(norm_num_groups, out_channels), nn.SiLU()]
            channels = out_channels
        self.frame_encoder = nn.Sequential(*layers)
        side = frame_size // 2 ** len(block_out_channels)
        self.proj = nn.Linear(channels * side * side, feature_dim)  # keeps where things are in the frame
        self.temporal_conv = nn.Conv1d(feature_dim, feature_dim, kernel_size=3, padding=1, padding_mode="replicate")
        self.norm_out = nn.LayerNorm(feature_dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, 3, F, H, W) in [-1, 1] -> (B, F, feature_dim)."""
        if video.ndim != 5 or video.shape[1] != self.config.in_channels:
            raise ValueError(f"video must be (B, {self.config.in_channels}, F, H, W); got {tuple(video.shape)}")
        batch, channels, frames, height, width = video.shape
        size = self.config.frame_size
        frames_flat = video.transpose(1, 2).reshape(batch * frames, channels, height, width)  # (B * F, 3, H, W)
        if (height, width) != (size, size):
            frames_flat = F.interpolate(frames_flat, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        frames_flat = frames_flat.view(batch, frames, channels, size, size)
        difference = (frames_flat - torch.cat([frames_flat[:, :1], frames_flat[:, :-1]], dim=1)).abs()  # (B, F, 3, s, s)
        x = torch.cat([frames_flat, difference], dim=2).flatten(0, 1)  # (B * F, 6, s, s)
        x = self.frame_encoder(x).flatten(1)  # (B * F, C_last * side * side)
        features = self.proj(x).view(batch, frames, -1).transpose(1, 2)  # (B, D, F)
        features = features + self.temporal_conv(F.silu(features))  # each frame sees its two neighbours
        return self.norm_out(features.transpose(1, 2))  # (B, F, D)
