"""`avgen train vae`: the temporal video autoencoder."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from avgen.models.autoencoder_audio import kl_loss
from avgen.models.autoencoder_video import TemporalAutoencoder, outlier_penalty_loss
from avgen.training.tasks.base import EVAL_SEED, Task, check_train_encoder, load_component, psnr
from avgen.world import render_clip
from avgen.world.spec import sample_spec


@dataclasses.dataclass
class VideoAutoencoderOptions:
    resolution: int = 64
    clip_frames: int = 16
    clip_seconds: float = 4.0
    kl_weight: float = 1e-4
    opl_weight: float = 0.1
    moving_weight: float = 5.0
    moving_threshold: float = 0.1
    l2_weight: float = 4.0
    temporal_weight: float = 0.0
    temporal_strides: list[int] = dataclasses.field(default_factory=lambda: [1, 4])
    train_encoder: bool = True


class VideoAutoencoderTask(Task):
    """The temporal autoencoder: L1 + L2 reconstruction with extra weight on what moves, KL, outlier penalty.

    L2 beside L1: the errors that matter here are few and large (a small subject, an edge, a lightning
    frame); L1 alone lets them be (its gradient does not grow with the error). Overfitting one batch for
    200 steps: 19.6 dB with L1 alone, 21.3 dB with L1 + 4 L2.

    The world's subjects cover ~2 % of a 64x64 frame, so a plain mean over pixels lets the codec blur the
    very things the judge and the user look at (a ball's colour, a footstep). Pixels that differ from the
    crop's temporal median (moving subjects, flashes) get `moving_weight` times the weight.

    `temporal_weight` adds an L1 loss on frame-to-frame change (reconstruction[t + s] - reconstruction[t]
    against the same in the input, for each stride s). A slow pan moves the world's nearest-neighbour
    content one pixel every few frames; per pixel that is a small error, so the plain loss let the codec
    return a static background (the judge's camera errors at step 7,000 were slow pans and zooms read as
    static). Stride 1 keeps flashes and contacts; stride 4 (one latent frame) sees the slow shifts.

    `train_encoder=false` trains the decoder alone (from `--init-from`, an exported vae): the latent space
    stays exactly what the text-to-video and edit models were trained on. Measured on the tiny models: it
    raised reconstruction 24.0 -> 25.4 dB yet decoded generated latents worse (docs/experiments.md,
    2026-11-30), since a decoder fitted to encoder outputs alone is not fitted to what the generator produces.
    """

    Options = VideoAutoencoderOptions

    def __init__(self, config):
        super().__init__(config)
        check_train_encoder(self.options.train_encoder, config)

    def build(self):
        vae = load_component(self.config.preset, "vae", TemporalAutoencoder)
        vae.encoder.requires_grad_(self.options.train_encoder)  # the trainer optimises what requires grad
        return {"vae": vae}

    def dataset(self, seed, rank, world_size):
        formats = [(self.options.clip_seconds, fps) for fps in (8, 12, 16, 24)]
        # world clips come as their random clip_frames window alone (collate's crop is then the whole item)
        return self.world_or_folder(seed, rank, world_size, resolution=self.options.resolution, formats=formats,
                                    include_audio=False, window_frames=self.options.clip_frames)

    def collate(self, items):
        frames = self.options.clip_frames
        crops = []
        for item in items:
            video = item["frames"]  # (F, 3, H, W) uint8
            if len(video) < frames:
                raise ValueError(f"a clip has {len(video)} frames, fewer than clip_frames={frames}")
            start = np.random.randint(0, len(video) - frames + 1)
            crops.append(video[start : start + frames])
        return {"frames": torch.stack(crops).permute(0, 2, 1, 3, 4)}  # (B, 3, F, H, W) uint8

    def loss(self, modules, batch, step):
        vae = modules["vae"]
        x = batch["frames"].float() / 127.5 - 1  # (B, 3, F, H, W)
        with torch.set_grad_enabled(self.options.train_encoder):
            posterior = vae.encode(x).latent_dist
            z = posterior.sample()
        reconstruction = vae.decode(z, num_frames=x.shape[2]).sample.float()
        moving = (x - x.median(dim=2, keepdim=True).values).abs().amax(dim=1, keepdim=True) > self.options.moving_threshold
        weight = 1 + (self.options.moving_weight - 1) * moving.float()  # (B, 1, F, H, W)
        l1 = ((reconstruction - x).abs() * weight).mean() / weight.mean()
        l2 = ((reconstruction - x).pow(2) * weight).mean() / weight.mean()
        kl = kl_loss(posterior).mean()
        opl = outlier_penalty_loss(posterior.mean.float())
        total = l1 + self.options.l2_weight * l2 + self.options.kl_weight * kl + self.options.opl_weight * opl
        logs = {"l1": l1.item(), "l2": l2.item(), "kl": kl.item(), "opl": opl.item()}
        if self.options.temporal_weight > 0:
            temporal = temporal_difference_loss(reconstruction, x, self.options.temporal_strides)
            total = total + self.options.temporal_weight * temporal
            logs["temporal"] = temporal.item()
        return total, logs

    def evaluate(self, modules):
        """PSNR of 2-second clips at every fps, encoded with the posterior mode."""
        rng = np.random.default_rng(EVAL_SEED)
        vae, scores, latents = modules["vae"], [], []
        for fps in (8, 12, 16, 24):
            for _ in range(2):
                spec = sample_spec(rng, resolution=self.options.resolution, fps=fps, duration=2.0)
                frames = torch.from_numpy(render_clip(spec).frames).permute(3, 0, 1, 2)[None]  # (1, 3, F, H, W)
                x = frames.to(vae.device).float() / 127.5 - 1
                z = vae.encode(x).latent_dist.mode()
                scores.append(psnr(vae.decode(z, num_frames=x.shape[2]).sample, x))
                latents.append(z.float().flatten())
        return {"psnr": float(np.mean(scores)), "psnr_min": float(np.min(scores)), "latent_std": torch.cat(latents).std().item()}


def temporal_difference_loss(reconstruction: torch.Tensor, target: torch.Tensor, strides=(1, 4)) -> torch.Tensor:
    """Mean L1 between the frame-to-frame changes of two (B, C, F, H, W) clips, averaged over the strides
    shorter than the clip."""
    frames = target.shape[2]
    losses = [
        ((reconstruction[:, :, s:] - reconstruction[:, :, :-s]) - (target[:, :, s:] - target[:, :, :-s])).abs().mean()
        for s in strides
        if 0 < s < frames
    ]
    if not losses:
        raise ValueError(f"no temporal stride in {tuple(strides)} is shorter than the clip's {frames} frames")
    return torch.stack(losses).mean()
