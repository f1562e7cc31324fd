"""Spatial upsampler: Movie Gen's 768 px -> 1080p stage at our scale, the default model's 64 px -> 128 px.

Movie Gen upsamples with a latent video-to-video diffusion model (bilinear-upsampled latents concatenated
to the noise, multi-diffusion over time windows). At 64 -> 128 px on CPU we take the cheapest learned
model that does the job measurably: a pixel-space 2.5D residual CNN, trained by regression on pairs of the
same world clip rendered at both resolutions. It predicts the difference to the bicubic upsampling, so it
starts as bicubic and learns the world's sharp edges and small details.

    frames (B, 3, F, H, W) in [-1, 1] -> frames stacked in the batch    (B * F, 3, H, W)
      -> conv_in -> num_blocks x [2.5D ResNet block] at H x W        (B * F, C, H, W)
      -> conv to 4 C, pixel shuffle x2 in space                      (B * F, C, 2H, 2W)
      -> conv_out, + bicubic(frames)                                 (B * F, 3, 2H, 2W) -> (B, 3, F, 2H, 2W)

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


def silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU, in place when no gradient is recorded (inference): one activation buffer fewer per layer."""
    return F.silu(x, inplace=not torch.is_grad_enabled())


class SpatioTemporalConv(nn.Module):
    """3x3 spatial conv on every frame, then a 3-tap temporal conv at every pixel (the "2.5D" conv).

    Works on frames stacked in the batch: x (B*F, C, H, W) in channels-last memory, i.e. laid out as
    (B, F, H, W, C). The spatial conv reads that as B*F images; the temporal conv reads the same memory as B
    images of F x (H*W) pixels with a (3, 1) kernel, so no copy sits between them. Both are oneDNN 2D
    convolutions: on an AVX2 CPU core this runs the tiny upsampler 2-2.8x faster at inference than Conv3d with
    (1, 3, 3) and (3, 1, 1) kernels, whose temporal conv alone cost more than the spatial one at a third of its
    FLOPs (benchmarks/bench_upsampler.py times both). The parameters stay Conv3d so that checkpoints keep their
    names and shapes.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.spatial = nn.Conv3d(in_channels, out_channels, (1, 3, 3), padding=(0, 1, 1))
        # replicate padding in time: clip and window ends behave as "the scene goes on", not a fade to black
        self.temporal = nn.Conv3d(out_channels, out_channels, (3, 1, 1), padding=(1, 0, 0), padding_mode="replicate")

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        x = F.conv2d(x, self.spatial.weight.squeeze(2), self.spatial.bias, padding=1)  # (B*F, C_out, H, W)
        frames, channels, height, width = x.shape
        x = x.permute(0, 2, 3, 1).reshape(-1, num_frames, height * width, channels).permute(0, 3, 1, 2)  # (B, C, F, HW)
        x = F.pad(x, (0, 0, 1, 1), mode="replicate").contiguous(memory_format=torch.channels_last)  # (B, C, F+2, HW)
        x = F.conv2d(x, self.temporal.weight.squeeze(-1), self.temporal.bias)  # (B, C_out, F, HW)
        return x.permute(0, 2, 3, 1).reshape(frames, height, width, channels).permute(0, 3, 1, 2)  # (B*F, C, H, W)


class ResnetBlock(nn.Module):
    """Two (GroupNorm, SiLU, 2.5D conv) layers with a residual, (B*F, C, H, W) -> same.

    GroupNorm over frames stacked in the batch normalises each frame on its own: no statistic mixes frames.
    """

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv1 = SpatioTemporalConv(channels, channels)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.conv2 = SpatioTemporalConv(channels, channels)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        h = self.conv1(silu(self.norm1(x)), num_frames)
        return x + self.conv2(silu(self.norm2(h)), num_frames)


def pixel_shuffle(x: torch.Tensor) -> torch.Tensor:
    """F.pixel_shuffle(x, 2) as one copy in channels-last memory: (N, 4C, H, W) -> (N, C, 2H, 2W), where output
    channel c at (2h + i, 2w + j) is input channel 4c + 2i + j at (h, w). torch's own kernel is slow on
    channels-last input (measured: 116 ms for 50 frames of 128 channels at 64 px on one core)."""
    n, channels, height, width = x.shape
    x = x.permute(0, 2, 3, 1).reshape(n, height, width, channels // 4, 2, 2)  # (N, H, W, C, i, j)
    x = x.permute(0, 1, 4, 2, 5, 3).reshape(n, 2 * height, 2 * width, channels // 4)  # (N, 2H, 2W, C)
    return x.permute(0, 3, 1, 2)


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
        self.blocks = nn.ModuleList(ResnetBlock(channels, norm_num_groups) for _ in range(num_blocks))
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
        # frames stacked in the batch, channels-last: memory (B, F, H, W, 3) (see SpatioTemporalConv)
        flat = frames.transpose(1, 2).reshape(batch * num_frames, channels, height, width)
        flat = flat.contiguous(memory_format=torch.channels_last)  # (B * F, 3, H, W)
        h = self.conv_in(flat, num_frames)  # (B * F, C, H, W)
        for block in self.blocks:
            h = block(h, num_frames)
        h = F.conv2d(silu(h), self.conv_up.weight.squeeze(2), self.conv_up.bias, padding=1)  # (B * F, 4C, H, W)
        h = pixel_shuffle(silu(h))  # (B * F, C, 2H, 2W)
        residual = F.conv2d(h, self.conv_out.weight.squeeze(2), self.conv_out.bias, padding=1)  # (B * F, 3, 2H, 2W)
        bicubic = F.interpolate(flat.float(), scale_factor=2, mode="bicubic", align_corners=False).to(frames.dtype)
        output = bicubic + residual  # (B * F, 3, 2H, 2W)
        return output.unflatten(0, (batch, num_frames)).transpose(1, 2)  # (B, 3, F, 2H, 2W)

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
