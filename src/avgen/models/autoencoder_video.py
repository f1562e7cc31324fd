"""Temporal autoencoder (TAE): Movie Gen's "2.5D" video VAE at small scale, as a patch autoencoder.

Layout. `encode`: cut the clip into non-overlapping patches of t frames x p x p pixels (a stride-equals-kernel
3D conv, done as a reshape plus a linear map: 3 * t * p * p values -> `dim` channels), then `num_layers`
2.5D ConvNeXt blocks at the latent resolution, then a linear map to the Gaussian's mean and log-variance.
`decode` mirrors it: linear from the latent to `dim`, the blocks, a linear map back to 3 * t * p * p values per
patch, which are put back in place. A block is Movie Gen's factorisation of a 3D conv: a depthwise k x k
spatial conv on every frame, then a depthwise 3-tap temporal conv at every position, then LayerNorm and a
channel MLP (ConvNeXt), with a residual.

Why patches. The first design (Movie Gen's stack of 2.5D ResNet levels, 8x8 spatial x 4x temporal, 4.2M
parameters) reached 19.5 dB on world clips after 750 steps (~28 minutes on one CPU core), still short of a
bicubic 8x downsample-upsample (20.9 dB); a linear PCA of 4-frame 8x8 patches to 16 numbers gives 23.8 dB,
of 4-frame 4x4 patches 26.2 dB. Full-resolution convolutions spend most compute where a linear map does
the job; here every layer runs at the latent resolution, the network starts as a near-linear patch codec
(layer scale 1 / num_layers on every block) and reaches PCA level in tens of steps, then goes past it.

Compression: `patch_size` in height and width, `temporal_patch_size` in time. The default preset
(pipelines/tiny/vae) is chosen by measured reconstruction: see pipelines/README.md. Movie Gen uses 8x in
time; we keep 4x so a 1-2-frame lightning flash only has to be placed among 4 frames per latent step.

Frames are normalised and convolved per position, never across the clip (LayerNorm over channels, bounded
temporal receptive field: +-1 latent frame per block), so tiled decoding matches untiled decoding away
from tile borders.

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


def patchify(x: torch.Tensor, t: int, p: int) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, C * t * p * p, F / t, H / p, W / p): every t x p x p patch becomes channels."""
    batch, channels, frames, height, width = x.shape
    x = x.reshape(batch, channels, frames // t, t, height // p, p, width // p, p)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(batch, channels * t * p * p, frames // t, height // p, width // p)


def unpatchify(x: torch.Tensor, t: int, p: int) -> torch.Tensor:
    """The inverse of patchify: (B, C * t * p * p, F, H, W) -> (B, C, F * t, H * p, W * p)."""
    batch, channels, frames, height, width = x.shape
    x = x.reshape(batch, channels // (t * p * p), t, p, p, frames, height, width)
    return x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(batch, channels // (t * p * p), frames * t, height * p, width * p)


class SpatioTemporalBlock(nn.Module):
    """2.5D ConvNeXt block, (B, D, F, H, W) -> same: depthwise k x k conv on each frame, depthwise 3-tap conv
    in time at each position, LayerNorm over channels, MLP (D -> 4D -> D), scaled residual."""

    def __init__(self, dim: int, kernel_size: int, layer_scale: float):
        super().__init__()
        self.spatial = nn.Conv3d(dim, dim, (1, kernel_size, kernel_size), padding=(0, kernel_size // 2, kernel_size // 2), groups=dim)
        # replicate padding in time: clip and tile ends behave as "the scene goes on", not a fade to black
        self.temporal = nn.Conv3d(dim, dim, (3, 1, 1), padding=(1, 0, 0), padding_mode="replicate", groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_in = nn.Linear(dim, 4 * dim)
        self.mlp_out = nn.Linear(4 * dim, dim)
        # small residual branches: the stack starts close to its linear in/out maps (a PCA-like patch codec)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.temporal(self.spatial(x)).permute(0, 2, 3, 4, 1)  # (B, F, H, W, D)
        h = self.mlp_out(F.gelu(self.mlp_in(self.norm(h))))
        return x + (self.gamma * h).permute(0, 4, 1, 2, 3)


class PatchStack(nn.Module):
    """Linear in (1x1x1 conv), `num_layers` SpatioTemporalBlocks, LayerNorm, linear out: (B, C_in, F, H, W) ->
    (B, C_out, F, H, W). The encoder and the decoder are one each."""

    def __init__(self, in_channels: int, dim: int, out_channels: int, num_layers: int, kernel_size: int):
        super().__init__()
        self.proj_in = nn.Conv3d(in_channels, dim, 1)
        self.blocks = nn.ModuleList(SpatioTemporalBlock(dim, kernel_size, 1.0 / num_layers) for _ in range(num_layers))
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.proj_out = nn.Linear(dim, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj_in(x)
        for block in self.blocks:
            x = block(x)
        return self.proj_out(self.norm_out(x.permute(0, 2, 3, 4, 1))).permute(0, 4, 1, 2, 3)


class TemporalAutoencoder(ModelMixin, ConfigMixin):
    """2.5D video VAE. Input and output (B, 3, F, H, W) in [-1, 1]; latents (B, latent_channels, F', H', W').

    Args:
        in_channels: image channels (3).
        latent_channels: channels of the latent (Movie Gen: 16).
        patch_size: pixels per latent position in height and width (the spatial compression).
        temporal_patch_size: frames per latent frame (the temporal compression).
        dim: channels of the blocks, in the encoder and in the decoder.
        num_layers: SpatioTemporalBlocks in the encoder, and as many in the decoder.
        kernel_size: the blocks' spatial depthwise kernel (odd).
        scaling_factor: latents are multiplied by it before the transformer (set after training so they
            have unit variance), diffusers' convention.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        latent_channels: int = 16,
        patch_size: int = 4,
        temporal_patch_size: int = 4,
        dim: int = 192,
        num_layers: int = 6,
        kernel_size: int = 7,
        scaling_factor: float = 1.0,
    ):
        super().__init__()
        for name, value in dict(in_channels=in_channels, latent_channels=latent_channels, patch_size=patch_size,
                                temporal_patch_size=temporal_patch_size, dim=dim, num_layers=num_layers).items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1; got {value}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive; got {kernel_size}")
        patch_values = in_channels * temporal_patch_size * patch_size**2
        self.encoder = PatchStack(patch_values, dim, 2 * latent_channels, num_layers, kernel_size)  # mean, log-variance
        self.decoder = PatchStack(latent_channels, dim, patch_values, num_layers, kernel_size)
        # Start with a nearly deterministic posterior (std e^-3 = 0.05, not 1): with unit noise on latents of
        # unit scale the decoder first learns to ignore them and blurs (measured: 16 dB after 300 steps, the
        # log-variance still at 0). The KL term then widens it as far as reconstruction allows.
        nn.init.constant_(self.encoder.proj_out.bias[latent_channels:], INITIAL_LOGVAR)

    @property
    def temporal_compression_ratio(self) -> int:
        """Frames per latent frame; pass it to AVClock(video_time_compression=...)."""
        return self.config.temporal_patch_size

    @property
    def spatial_compression_ratio(self) -> int:
        return self.config.patch_size

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
        ratio_t = self.temporal_compression_ratio
        pad = -sample.shape[2] % ratio_t
        if pad:  # repeat the last frame up to a multiple of the temporal factor
            sample = torch.cat([sample, sample[:, :, -1:].expand(-1, -1, pad, -1, -1)], dim=2)
        posterior = DiagonalGaussianDistribution(self.encoder(patchify(sample, ratio_t, ratio)))
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
            frame depends on +-num_layers latent frames (one per block), so tiles overlapping by less
            than that differ from the untiled decode near their borders (e.g. tiles of 16, overlap 6).
        """
        ratio = self.temporal_compression_ratio
        latent_frames = z.shape[2]
        if num_frames is not None and not (latent_frames - 1) * ratio < num_frames <= latent_frames * ratio:
            raise ValueError(
                f"{latent_frames} latent frames decode to {(latent_frames - 1) * ratio + 1}..{latent_frames * ratio} "
                f"frames, not {num_frames}"
            )
        if tile_latent_frames is None or latent_frames <= tile_latent_frames:
            sample = self._decode_frames(z)
        else:
            sample = self._tiled_decode(z, tile_latent_frames, tile_overlap)
        sample = sample[:, :, :num_frames]
        return DecoderOutput(sample=sample) if return_dict else (sample,)

    def _decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_channels, F', H', W') -> frames (B, 3, F' * t, H' * p, W' * p), untiled."""
        return unpatchify(self.decoder(z), self.temporal_compression_ratio, self.spatial_compression_ratio)

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
            decoded = self._decode_frames(z[:, :, start:end]).float()  # (B, 3, (end - start) * t, H, W)
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
