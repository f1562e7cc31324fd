"""Spatial upsampler: Movie Gen's 768 px -> 1080p stage at our scale, the default model's 64 px -> 128 px.

Movie Gen upsamples with a latent video-to-video diffusion model (bilinear-upsampled latents concatenated
to the noise, multi-diffusion over time windows). At 64 -> 128 px on CPU we take the cheapest learned
model that does the job measurably: a pixel-space 2.5D residual CNN, trained by regression on pairs of the
same world clip rendered at both resolutions. It predicts the difference to the bicubic upsampling, so it
starts as bicubic and learns the world's sharp edges and small details.

    frames (B, 3, F, H, W) in [-1, 1]
      -> conv_in -> num_blocks x [2.5D ResNet block] at H x W        (B, C, F, H, W)
      -> conv to 4 C, pixel shuffle x2 in space                      (B, C, F, 2H, 2W)
      -> conv_out, + bicubic(frames)                                 (B, 3, F, 2H, 2W)

No normalisation mixes frames (the 2.5D blocks below use per-frame GroupNorm), so an
output frame depends on +- num_blocks * 2 frames only; `forward(..., window=...)` processes time windows
with exactly that margin and stitches them, giving the untiled result at bounded memory for any length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm with statistics per frame, (B, C, F, H, W) -> same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = x.shape
        x = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        x = super().forward(x)
        return x.reshape(batch, frames, channels, height, width).transpose(1, 2)


class SpatioTemporalConv(nn.Module):
    """3x3 spatial conv on every frame, then a 3-tap temporal conv at every pixel (the "2.5D" conv)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.spatial = nn.Conv3d(in_channels, out_channels, (1, 3, 3), padding=(0, 1, 1))
        # replicate padding in time: clip and window ends behave as "the scene goes on", not a fade to black
        self.temporal = nn.Conv3d(out_channels, out_channels, (3, 1, 1), padding=(1, 0, 0), padding_mode="replicate")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.spatial(x))  # (B, C_out, F, H, W)


class ResnetBlock(nn.Module):
    """Two (GroupNorm per frame, SiLU, 2.5D conv) layers with a residual, (B, C, F, H, W) -> same."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm1 = FrameGroupNorm(groups, channels)
        self.conv1 = SpatioTemporalConv(channels, channels)
        self.norm2 = FrameGroupNorm(groups, channels)
        self.conv2 = SpatioTemporalConv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class SpatialUpsampler(ModelMixin, ConfigMixin):
    """2x spatial video upsampler. Input (B, 3, F, H, W) in [-1, 1]; output (B, 3, F, 2H, 2W).

    Args:
        channels: width of the network (at the input resolution).
        num_blocks: 2.5D ResNet blocks; each sees one more frame on each side through each temporal conv.
        norm_num_groups: per-frame GroupNorm groups.
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, channels: int = 32, num_blocks: int = 4, norm_num_groups: int = 8):
        super().__init__()
        self.conv_in = SpatioTemporalConv(in_channels, channels)
        self.blocks = nn.Sequential(*(ResnetBlock(channels, norm_num_groups) for _ in range(num_blocks)))
        self.conv_up = nn.Conv3d(channels, 4 * channels, (1, 3, 3), padding=(0, 1, 1))
        self.conv_out = nn.Conv3d(channels, in_channels, (1, 3, 3), padding=(0, 1, 1))
        nn.init.zeros_(self.conv_out.weight)  # starts as plain bicubic upsampling
        nn.init.zeros_(self.conv_out.bias)

    @property
    def temporal_margin(self) -> int:
        """Frames on each side that influence an output frame: conv_in and two convs per block, 1 each."""
        return 1 + 2 * self.config.num_blocks

    def _upsample(self, frames: torch.Tensor) -> torch.Tensor:
        batch, channels, num_frames, height, width = frames.shape
        h = self.blocks(self.conv_in(frames))  # (B, C, F, H, W)
        h = self.conv_up(F.silu(h))  # (B, 4C, F, H, W)
        h = h.transpose(1, 2).flatten(0, 1)  # (B * F, 4C, H, W)
        h = F.pixel_shuffle(h, 2)  # (B * F, C, 2H, 2W)
        h = h.unflatten(0, (batch, num_frames)).transpose(1, 2)  # (B, C, F, 2H, 2W)
        residual = self.conv_out(F.silu(h))  # (B, 3, F, 2H, 2W)
        flat = frames.transpose(1, 2).flatten(0, 1)  # (B * F, 3, H, W)
        bicubic = F.interpolate(flat.float(), scale_factor=2, mode="bicubic", align_corners=False)
        bicubic = bicubic.to(frames.dtype).unflatten(0, (batch, num_frames)).transpose(1, 2)  # (B, 3, F, 2H, 2W)
        return bicubic + residual

    def forward(self, frames: torch.Tensor, window: int | None = None) -> torch.Tensor:
        """frames (B, 3, F, H, W) -> (B, 3, F, 2H, 2W). window: output frames per time window (None: all);
        windows read `temporal_margin` extra frames on each side, so the result equals the untiled one."""
        if frames.ndim != 5 or frames.shape[1] != self.config.in_channels:
            raise ValueError(f"frames must be (B, {self.config.in_channels}, F, H, W); got {tuple(frames.shape)}")
        num_frames = frames.shape[2]
        if window is None or window >= num_frames:
            return self._upsample(frames)
        if window < 1:
            raise ValueError(f"window must be a positive number of frames; got {window}")
        margin, outputs = self.temporal_margin, []
        for start in range(0, num_frames, window):
            end = min(start + window, num_frames)
            lo, hi = max(0, start - margin), min(num_frames, end + margin)
            outputs.append(self._upsample(frames[:, :, lo:hi])[:, :, start - lo : end - lo])
        return torch.cat(outputs, dim=2)
