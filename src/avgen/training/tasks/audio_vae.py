"""`avgen train audio-vae`: the audio autoencoder."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from avgen.models.autoencoder_audio import AudioAutoencoder, kl_loss, multi_resolution_stft_loss, tonal_peak_loss
from avgen.training.tasks.base import EVAL_SEED, Task, check_train_encoder, load_component
from avgen.world import render_clip
from avgen.world.spec import sample_spec


@dataclasses.dataclass
class AudioAutoencoderOptions:
    clip_seconds: float = 1.0
    source_seconds: float = 4.0
    crops_per_clip: int = 4
    kl_weight: float = 1e-4
    l1_weight: float = 1.0
    sample_rate: int = 16000
    tonal_weight: float = 1.0
    train_encoder: bool = True


class AudioAutoencoderTask(Task):
    """The audio VAE: L1 on the waveform + multi-resolution STFT + KL + `tonal_weight` x the tonal-peak loss,
    on 1-second crops. `train_encoder=false` trains the decoder alone (from `--init-from`), so the latent space
    the audio transformer was trained on stays exactly as it is.

    Each rendered clip gives `crops_per_clip` crops (a batch holds batch_size * crops_per_clip of them): a 4 s
    clip takes ~37 ms to render on one core, a training step of the STFT VAE ~11 ms per crop, so one crop per
    clip would spend most of the step rendering."""

    Options = AudioAutoencoderOptions

    def __init__(self, config):
        super().__init__(config)
        check_train_encoder(self.options.train_encoder, config)

    def build(self):
        vae = load_component(self.config.preset, "audio_vae", AudioAutoencoder)
        if vae.config.sample_rate != self.options.sample_rate:
            raise ValueError(f"audio_vae runs at {vae.config.sample_rate} Hz, the task option sample_rate is {self.options.sample_rate}")
        vae.encoder.requires_grad_(self.options.train_encoder)  # the trainer optimises what requires grad
        return {"audio_vae": vae}

    def dataset(self, seed, rank, world_size):
        # 8 fps: the frames are rendered too but cost least there; the sound does not depend on fps
        return self.world_or_folder(seed, rank, world_size, resolution=64, formats=[(self.options.source_seconds, 8)],
                                    sample_rate=self.options.sample_rate)

    def collate(self, items):
        length = int(self.options.clip_seconds * self.options.sample_rate)
        crops = []
        for item in items:
            audio = item["audio"]  # (1, S)
            for start in np.random.randint(0, audio.shape[-1] - length + 1, size=self.options.crops_per_clip):
                crops.append(audio[:, start : start + length])
        return {"audio": torch.stack(crops)}  # (B * crops_per_clip, 1, S)

    def loss(self, modules, batch, step):
        audio = batch["audio"]
        # a posterior sample, so the decoder learns the posterior's spread; with train_encoder=false the encoder's
        # parameters do not require grad (build), so autograd records nothing through it
        reconstruction, posterior = modules["audio_vae"](audio)
        reconstruction = reconstruction.float()
        l1 = (reconstruction - audio).abs().mean()
        stft = multi_resolution_stft_loss(reconstruction, audio)
        kl = kl_loss(posterior).mean()
        total = self.options.l1_weight * l1 + stft + self.options.kl_weight * kl
        logs = {"l1": l1.item(), "stft": stft.item(), "kl": kl.item()}
        if self.options.tonal_weight:
            tonal = tonal_peak_loss(reconstruction, audio)
            total = total + self.options.tonal_weight * tonal
            logs["tonal"] = tonal.item()
        return total, logs

    def evaluate(self, modules):
        """Multi-resolution STFT distance and SNR on whole 4-second clips, posterior mode."""
        rng = np.random.default_rng(EVAL_SEED)
        vae, stft, snr, latents = modules["audio_vae"], [], [], []
        for _ in range(6):
            spec = sample_spec(rng, resolution=64, fps=8, duration=4.0, sample_rate=self.options.sample_rate)
            audio = torch.from_numpy(np.asarray(render_clip(spec).audio, dtype=np.float32)).reshape(1, 1, -1).to(vae.device)
            z = vae.encode(audio).latent_dist.mode()
            reconstruction = vae.decode(z, num_samples=audio.shape[-1]).sample.float()
            stft.append(multi_resolution_stft_loss(reconstruction, audio).item())
            noise = (reconstruction - audio).pow(2).mean().item()
            snr.append(10 * math.log10(audio.pow(2).mean().item() / max(noise, 1e-12)))
            latents.append(z.float().flatten())
        return {"stft": float(np.mean(stft)), "snr_db": float(np.mean(snr)), "latent_std": torch.cat(latents).std().item()}
