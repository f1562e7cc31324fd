"""`avgen train upsampler`: the spatial upsampler (64 -> 128 px)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from avgen.models.upsampler import SpatialUpsampler
from avgen.training.tasks.base import EVAL_SEED, Task, load_component, psnr
from avgen.training.tasks.streams import PairedResolutions


@dataclasses.dataclass
class UpsamplerOptions:
    resolution: int = 64
    clip_frames: int = 8
    clip_seconds: float = 2.0
    degrade_prob: float = 0.5
    noise_std: float = 0.03


class UpsamplerTask(Task):
    """The spatial upsampler, by L1 regression from a world clip rendered at `resolution` to the same clip
    rendered at twice that. The input is degraded like a generated video is (a decoded latent is a little
    blurred and noisy): with probability `degrade_prob` a 3x3 blur and Gaussian noise of std up to
    `noise_std` (in [-1, 1] units)."""

    Options = UpsamplerOptions

    def build(self):
        return {"upsampler": load_component(self.config.preset, "upsampler", SpatialUpsampler)}

    def dataset(self, seed, rank, world_size):
        return PairedResolutions(seed, rank, world_size, self.options.resolution, self.options.clip_seconds)

    def collate(self, items):
        frames = self.options.clip_frames
        low, high = [], []
        for item in items:
            start = np.random.randint(0, len(item["low"]) - frames + 1)
            low.append(item["low"][start : start + frames])
            high.append(item["high"][start : start + frames])
        return {"low": torch.stack(low).permute(0, 2, 1, 3, 4), "high": torch.stack(high).permute(0, 2, 1, 3, 4)}  # (B, 3, F, H, W)

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        batch = len(x)
        chosen = (torch.rand(batch, device=x.device) < self.options.degrade_prob).float()[:, None, None, None, None]
        kernel = torch.tensor([1.0, 2.0, 1.0], device=x.device)
        kernel = (kernel[:, None] * kernel[None, :] / 16).expand(3, 1, 3, 3)
        flat = x.transpose(1, 2).flatten(0, 1)  # (B * F, 3, H, W)
        blurred = F.conv2d(F.pad(flat, (1, 1, 1, 1), mode="replicate"), kernel, groups=3).unflatten(0, x.shape[:1] + x.shape[2:3]).transpose(1, 2)
        noise = torch.randn_like(x) * self.options.noise_std * torch.rand(batch, 1, 1, 1, 1, device=x.device)
        return x + chosen * (blurred - x + noise)

    def loss(self, modules, batch, step):
        low = self.degrade(batch["low"].float() / 127.5 - 1)
        high = batch["high"].float() / 127.5 - 1
        prediction = modules["upsampler"](low).float()
        l1 = (prediction - high).abs().mean()
        return l1, {}

    def evaluate(self, modules):
        """PSNR of the upsampler and of plain bicubic against the 2x render, on 2 s clips at every fps."""
        upsampler = modules["upsampler"]
        stream = PairedResolutions(EVAL_SEED, 0, 1, self.options.resolution, self.options.clip_seconds)
        rng, ours, bicubic = stream.rng(), [], []
        for _ in range(8):
            item = stream.sample(rng)
            low = item["low"].permute(1, 0, 2, 3)[None].to(upsampler.device).float() / 127.5 - 1
            high = item["high"].permute(1, 0, 2, 3)[None].to(upsampler.device).float() / 127.5 - 1
            ours.append(psnr(upsampler(low), high))
            flat = F.interpolate(low[0].transpose(0, 1), scale_factor=2, mode="bicubic", align_corners=False)
            bicubic.append(psnr(flat.transpose(0, 1)[None], high))
        return {"psnr": float(np.mean(ours)), "psnr_bicubic": float(np.mean(bicubic))}
