"""Temporal autoencoder (TAE): Movie Gen's "2.5D" video VAE at small scale.

Every convolution is factorised into a 2D spatial conv on each frame followed by a 1D temporal conv at
each pixel (kernel (1, 3, 3) then (3, 1, 1)). Normalisation is per frame, so a frame's features never
depend on frames outside the temporal receptive field; that is what makes temporally tiled decoding
match untiled decoding away from tile borders.

Compression: 2 ** (number of levels - 1) in height and width, 2 ** sum(temporal_downsample) in time.
The default preset (pipelines/tiny/vae) is 4x in time, 8x8 in space, 16 channels: a 64x64 clip of 240
frames becomes a (16, 60, 8, 8) latent (48x fewer values). Movie Gen uses 8x in time; we take 4x so a
1-2-frame lightning flash only has to be placed among 4 frames per latent step (at 8x, among 8 frames,
a third of a second at 24 fps), and set it with `temporal_downsample` (e.g. (True, True, True) = 8x).

Frame counts that are not a multiple of the temporal factor: `encode` pads the end by repeating the last
frame (a repeated frame is the cheapest thing to encode, where zeros would look like a cut to black),
giving ceil(F / factor) latent frames as `AVClock.video_latent_frames` says; `decode(z, num_frames=F)`
crops the decoded frames back to F.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


INITIAL_LOGVAR = -6.0  # the encoder's initial log-variance output (see TemporalAutoencoder.__init__)


def outlier_penalty_loss(z: torch.Tensor, r: float = 3.0) -> torch.Tensor:
    """Movie Gen's outlier penalty: mean over latent positions of max(|z - mean| - r * |std|, 0).

    z: (B, C, F, H, W). Mean and std are per sample and channel over (F, H, W); |.| is the L2 norm over
    channels. It discourages the high-norm "latent dots" that decode to bright spots.
    """
    mean = z.mean(dim=(2, 3, 4), keepdim=True)  # (B, C, 1, 1, 1)
    std = z.std(dim=(2, 3, 4), keepdim=True)  # (B, C, 1, 1, 1)
    distance = (z - mean).norm(dim=1)  # (B, F, H, W)
    return F.relu(distance - r * std.norm(dim=1)).mean()


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm with statistics per frame, (B, C, F, H, W) -> same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = x.shape
        x = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        x = super().forward(x)
        return x.reshape(batch, frames, channels, height, width).transpose(1, 2)


class SpatioTemporalConv(nn.Module):
    """3x3 spatial conv on every frame, then a 3-tap temporal conv at every pixel (the "2.5D" conv)."""

    def __init__(self, in_channels: int, out_channels: int, spatial_stride: int = 1, temporal_stride: int = 1):
        super().__init__()
        self.spatial = nn.Conv3d(
            in_channels, out_channels, (1, 3, 3), stride=(1, spatial_stride, spatial_stride), padding=(0, 1, 1)
        )
        # replicate padding in time: clip and tile ends behave as "the scene goes on", not a fade to black
        self.temporal = nn.Conv3d(
            out_channels,
            out_channels,
            (3, 1, 1),
            stride=(temporal_stride, 1, 1),
            padding=(1, 0, 0),
            padding_mode="replicate",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.spatial(x))  # (B, C_out, ceil(F / temporal_stride), H / s, W / s)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = FrameGroupNorm(groups, in_channels)
        self.conv1 = SpatioTemporalConv(in_channels, out_channels)
        self.norm2 = FrameGroupNorm(groups, out_channels)
        self.conv2 = SpatioTemporalConv(out_channels, out_channels)
        self.shortcut = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.shortcut(x) + h


class SpatioTemporalAttention(nn.Module):
    """Self-attention over the pixels of each frame, then over the frames at each pixel (single head)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.spatial_norm = FrameGroupNorm(groups, channels)
        self.spatial_query_key_value = nn.Linear(channels, 3 * channels)
        self.spatial_out = nn.Linear(channels, channels)
        self.temporal_norm = FrameGroupNorm(groups, channels)
        self.temporal_query_key_value = nn.Linear(channels, 3 * channels)
        self.temporal_out = nn.Linear(channels, channels)

    @staticmethod
    def _attend(tokens: torch.Tensor, query_key_value: nn.Linear, out: nn.Linear) -> torch.Tensor:
        query, key, value = query_key_value(tokens).chunk(3, dim=-1)  # each (N, L, C)
        return out(F.scaled_dot_product_attention(query, key, value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = x.shape
        tokens = self.spatial_norm(x).permute(0, 2, 3, 4, 1).reshape(batch * frames, height * width, channels)
        attended = self._attend(tokens, self.spatial_query_key_value, self.spatial_out)  # (B*F, H*W, C)
        x = x + attended.reshape(batch, frames, height, width, channels).permute(0, 4, 1, 2, 3)
        tokens = self.temporal_norm(x).permute(0, 3, 4, 2, 1).reshape(batch * height * width, frames, channels)
        attended = self._attend(tokens, self.temporal_query_key_value, self.temporal_out)  # (B*H*W, F, C)
        return x + attended.reshape(batch, height, width, frames, channels).permute(0, 4, 3, 1, 2)


class MidBlock(nn.Module):
    def __init__(self, channels: int, groups: int, attention: bool):
        super().__init__()
        self.resnet1 = ResnetBlock(channels, channels, groups)
        self.attention = SpatioTemporalAttention(channels, groups) if attention else nn.Identity()
        self.resnet2 = ResnetBlock(channels, channels, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet2(self.attention(self.resnet1(x)))


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by 2 in space (and in time if asked), then a 2.5D conv."""

    def __init__(self, channels: int, temporal: bool):
        super().__init__()
        self.scale_factor = (2 if temporal else 1, 2, 2)
        self.conv = SpatioTemporalConv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=self.scale_factor, mode="nearest"))


class Encoder(nn.Module):
    def __init__(
        self,
        image_channels,
        latent_channels,
        block_out_channels,
        temporal_downsample,
        layers_per_block,
        groups,
        mid_attention,
    ):
        super().__init__()
        self.conv_in = SpatioTemporalConv(image_channels, block_out_channels[0])
        self.down_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        channels = block_out_channels[0]
        for level, out_channels in enumerate(block_out_channels):
            resnets = [
                ResnetBlock(channels if i == 0 else out_channels, out_channels, groups) for i in range(layers_per_block)
            ]
            self.down_blocks.append(nn.ModuleList(resnets))
            channels = out_channels
            if level < len(block_out_channels) - 1:  # stride-2 conv: halve H and W, and F where asked
                self.downsamplers.append(
                    SpatioTemporalConv(channels, channels, 2, 2 if temporal_downsample[level] else 1)
                )
        self.mid_block = MidBlock(channels, groups, mid_attention)
        self.norm_out = FrameGroupNorm(groups, channels)
        self.conv_out = SpatioTemporalConv(channels, 2 * latent_channels)  # mean and log-variance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)  # (B, C0, F, H, W)
        for level, resnets in enumerate(self.down_blocks):
            for resnet in resnets:
                x = resnet(x)
            if level < len(self.downsamplers):
                x = self.downsamplers[level](x)
        x = self.mid_block(x)  # (B, C_last, F / t, H / s, W / s)
        return self.conv_out(F.silu(self.norm_out(x)))  # (B, 2 * latent_channels, F / t, H / s, W / s)


class Decoder(nn.Module):
    def __init__(
        self,
        image_channels,
        latent_channels,
        block_out_channels,
        temporal_downsample,
        layers_per_block,
        groups,
        mid_attention,
    ):
        super().__init__()
        channels = block_out_channels[-1]
        self.conv_in = SpatioTemporalConv(latent_channels, channels)
        self.mid_block = MidBlock(channels, groups, mid_attention)
        self.up_blocks = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level in reversed(range(len(block_out_channels))):  # mirror of the encoder, deepest level first
            out_channels = block_out_channels[level]
            resnets = [
                ResnetBlock(channels if i == 0 else out_channels, out_channels, groups) for i in range(layers_per_block)
            ]
            self.up_blocks.append(nn.ModuleList(resnets))
            channels = out_channels
            if level > 0:
                self.upsamplers.append(Upsample(channels, temporal_downsample[level - 1]))
        self.norm_out = FrameGroupNorm(groups, channels)
        self.conv_out = SpatioTemporalConv(channels, image_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))  # (B, C_last, F', H', W')
        for level, resnets in enumerate(self.up_blocks):
            for resnet in resnets:
                x = resnet(x)
            if level < len(self.upsamplers):
                x = self.upsamplers[level](x)
        return self.conv_out(F.silu(self.norm_out(x)))  # (B, 3, F' * t, H' * s, W' * s)


class TemporalAutoencoder(ModelMixin, ConfigMixin):
    """2.5D video VAE. Input and output (B, 3, F, H, W) in [-1, 1]; latents (B, latent_channels, F', H', W').

    Args:
        in_channels: image channels (3).
        latent_channels: channels of the latent (Movie Gen: 16).
        block_out_channels: channels per resolution level; there are len - 1 spatial 2x downsamplings.
        temporal_downsample: one flag per downsampling, True halves the frame count there.
        layers_per_block: ResNet blocks per level, in the encoder and in the decoder.
        norm_num_groups: GroupNorm groups (must divide every entry of block_out_channels).
        mid_block_attention: add spatial-then-temporal self-attention at the lowest resolution.
        scaling_factor: latents are multiplied by it before the transformer (set after training so they
            have unit variance), diffusers' convention.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        latent_channels: int = 16,
        block_out_channels: tuple[int, ...] = (32, 64, 128, 128),
        temporal_downsample: tuple[bool, ...] = (True, True, False),
        layers_per_block: int = 1,
        norm_num_groups: int = 8,
        mid_block_attention: bool = False,
        scaling_factor: float = 1.0,
    ):
        super().__init__()
        if len(temporal_downsample) != len(block_out_channels) - 1:
            raise ValueError(
                f"temporal_downsample needs one flag per downsampling ({len(block_out_channels) - 1}); "
                f"got {temporal_downsample}"
            )
        args = (
            latent_channels,
            block_out_channels,
            temporal_downsample,
            layers_per_block,
            norm_num_groups,
            mid_block_attention,
        )
        self.encoder = Encoder(in_channels, *args)
        self.decoder = Decoder(in_channels, *args)
        # Start with a nearly deterministic posterior (std e^-3 = 0.05, not 1): with unit noise on latents of
        # unit scale the decoder first learns to ignore them and blurs (measured: 16 dB after 300 steps, the
        # log-variance still at 0). The KL term then widens it as far as reconstruction allows.
        nn.init.constant_(self.encoder.conv_out.temporal.bias[latent_channels:], INITIAL_LOGVAR)

    @property
    def temporal_compression_ratio(self) -> int:
        """Frames per latent frame; pass it to AVClock(video_time_compression=...)."""
        return 2 ** sum(self.config.temporal_downsample)

    @property
    def spatial_compression_ratio(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def encode(self, sample: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """sample (B, 3, F, H, W) -> latent_dist over (B, latent_channels, ceil(F / t), H / s, W / s).

        latent_dist is diffusers' DiagonalGaussianDistribution; note its kl() sums over dims 1-3 only, so
        for these 5-D latents use latent_dist.kl().sum(-1) for the per-sample KL.
        """
        ratio = self.spatial_compression_ratio
        if sample.ndim != 5 or sample.shape[-1] % ratio or sample.shape[-2] % ratio:
            raise ValueError(
                f"sample must be (B, C, F, H, W) with H and W divisible by {ratio}; got {tuple(sample.shape)}"
            )
        pad = -sample.shape[2] % self.temporal_compression_ratio
        if pad:  # repeat the last frame up to a multiple of the temporal factor
            sample = torch.cat([sample, sample[:, :, -1:].expand(-1, -1, pad, -1, -1)], dim=2)
        posterior = DiagonalGaussianDistribution(self.encoder(sample))
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(
        self,
        z: torch.Tensor,
        num_frames: int | None = None,
        tile_latent_frames: int | None = None,
        tile_overlap: int = 2,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple:
        """z (B, latent_channels, F', H', W') -> sample (B, 3, num_frames or F' * t, H' * s, W' * s).

        num_frames: crop to this many frames (must be in (F' - 1) * t + 1 ... F' * t).
        tile_latent_frames: decode windows of this many latent frames, overlapping by `tile_overlap`
            latent frames and linearly cross-faded there, so memory no longer grows with F'. A decoded
            frame depends on about +-12 latent frames in the tiny preset, so windows much shorter than
            that differ from the untiled decode near their borders (e.g. use 16 with overlap 4 or more).
        """
        ratio = self.temporal_compression_ratio
        latent_frames = z.shape[2]
        if num_frames is not None and not (latent_frames - 1) * ratio < num_frames <= latent_frames * ratio:
            raise ValueError(
                f"{latent_frames} latent frames decode to {(latent_frames - 1) * ratio + 1}..{latent_frames * ratio} "
                f"frames, not {num_frames}"
            )
        if tile_latent_frames is None or latent_frames <= tile_latent_frames:
            sample = self.decoder(z)
        else:
            sample = self._tiled_decode(z, tile_latent_frames, tile_overlap)
        sample = sample[:, :, :num_frames]
        return DecoderOutput(sample=sample) if return_dict else (sample,)

    def _tiled_decode(self, z: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
        if not 0 <= overlap < tile:
            raise ValueError(f"tile_overlap must be in [0, tile_latent_frames); got {overlap} with tiles of {tile}")
        batch, _, latent_frames, latent_height, latent_width = z.shape
        ratio, spatial = self.temporal_compression_ratio, self.spatial_compression_ratio
        blend = overlap * ratio  # decoded frames shared by two neighbouring tiles
        ramp = torch.arange(1, blend + 1, device=z.device) / (blend + 1)  # fade-in; ramp + ramp.flip(0) = 1
        shape = (batch, self.config.in_channels, latent_frames * ratio, latent_height * spatial, latent_width * spatial)
        sample = torch.zeros(shape, device=z.device)  # float32 accumulator (B, 3, F, H, W)
        weight = torch.zeros(latent_frames * ratio, device=z.device)  # (F,)
        start = 0
        while True:
            end = min(start + tile, latent_frames)
            decoded = self.decoder(z[:, :, start:end]).float()  # (B, 3, (end - start) * t, H, W)
            tile_weight = torch.ones(decoded.shape[2], device=z.device)
            if start > 0 and blend:
                tile_weight[:blend] = ramp
            if end < latent_frames and blend:
                tile_weight[-blend:] = ramp.flip(0)
            sample[:, :, start * ratio : end * ratio] += decoded * tile_weight[:, None, None]
            weight[start * ratio : end * ratio] += tile_weight
            if end == latent_frames:
                return (sample / weight[:, None, None]).to(z.dtype)
            start += tile - overlap

    def forward(
        self,
        sample: torch.Tensor,
        sample_posterior: bool = False,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> DecoderOutput | tuple:
        """Encode and decode (B, 3, F, H, W); the output has the input's frame count."""
        posterior = self.encode(sample).latent_dist
        z = posterior.sample(generator=generator) if sample_posterior else posterior.mode()
        return self.decode(z, num_frames=sample.shape[2], return_dict=return_dict)
