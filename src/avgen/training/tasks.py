"""What each model of a preset trains on and how: one Task class per trainable component group.

A task builds its modules from the preset's configs (`<preset>/<component>/config.json`), streams its data
(the world, or a folder of the user's MP4s + metadata.jsonl), turns a batch into a loss, and evaluates
itself on fixed clips that no training step sees (a seed outside the training streams).

Task options (`TrainConfig.options`, `--option key=value` on the command line) are validated against each
task's DEFAULTS before anything runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avgen.clock import AVClock
from avgen.training.trainer import TrainConfig, load_allowing_optional_keys
from avgen.world.dataset import SampledStream

EVAL_SEED = 2**31 - 1  # the evaluation clips' seed; training streams are seeded by seed * 1_000_003 + step


def load_component(preset: str | Path, name: str, cls):
    """A randomly initialised module of the shape given by <preset>/<name>/config.json."""
    path = Path(preset) / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"preset {preset} has no {name}/config.json")
    return cls.from_config(cls.load_config(path))


def check_vocabulary(tokenizer, text_encoder) -> None:
    if len(tokenizer) > text_encoder.config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} entries, the text encoder's vocabulary only {text_encoder.config.vocab_size}")


class LoopedFolder(torch.utils.data.IterableDataset):
    """A VideoFolderDataset read forever in a seeded shuffled order; every rank and worker takes its share."""

    def __init__(self, folder, seed: int, rank: int, world_size: int):
        super().__init__()
        self.folder, self.seed, self.rank, self.world_size = folder, seed, rank, world_size

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        shard, shards = self.rank * workers + worker, self.world_size * workers
        rng = np.random.default_rng(self.seed)
        while True:
            for index in rng.permutation(len(self.folder))[shard::shards]:
                yield self.folder[int(index)]


class Task:
    DEFAULTS: dict = {}

    def __init__(self, config: TrainConfig):
        unknown = sorted(set(config.options) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"task {config.task!r} has no option(s) {unknown}; it takes {sorted(self.DEFAULTS)}")
        self.config = config
        self.options = {**self.DEFAULTS, **config.options}

    # None: items of any shape batch together; else a function item -> key, and a batch only takes
    # items with the same key (clips of different lengths cannot be stacked)
    shape_key = None

    def build(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def dataset(self, seed: int, rank: int, world_size: int) -> torch.utils.data.IterableDataset:
        raise NotImplementedError

    def collate(self, items: list[dict]) -> dict:
        raise NotImplementedError

    def loss(self, modules: dict, batch: dict, step: int) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def evaluate(self, modules: dict) -> dict:
        return {}

    def clip_groups(self, modules: dict) -> list[list[str]]:
        """Names of the modules whose gradients are clipped together (to max_grad_norm), one list per group."""
        return [list(modules)]

    def start(self, modules: dict) -> None:
        """Called once when a run starts fresh (not on resume), after --init-from weights are loaded."""

    def to(self, device) -> None:
        """Move frozen helper models to the training device."""

    @staticmethod
    def to_device(batch: dict, device) -> dict:
        return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def world_or_folder(self, seed: int, rank: int, world_size: int, **world_options):
        from avgen.world.dataset import VideoFolderDataset, WorldDataset

        if self.config.data == "world":
            return WorldDataset(seed=seed, rank=rank, world_size=world_size, **world_options)
        folder = VideoFolderDataset(self.config.data, resolution=world_options.get("resolution"),
                                    sample_rate=world_options.get("sample_rate", 16000))
        return LoopedFolder(folder, seed, rank, world_size)


def check_train_encoder(options: dict, config: TrainConfig) -> None:
    """The autoencoder tasks' `train_encoder` option: false trains the decoder alone, from --init-from's encoder."""
    if not isinstance(options["train_encoder"], bool):
        raise ValueError(f"train_encoder is true or false; got {options['train_encoder']!r}")
    if options["train_encoder"] is False and not config.init_from:
        raise ValueError("train_encoder=false keeps the encoder as it is: give the trained one with --init-from")


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1]."""
    mse = F.mse_loss(prediction.float().clamp(-1, 1), target.float()).item()
    return 10 * math.log10(4.0 / max(mse, 1e-12))


class VideoAutoencoderTask(Task):
    """The temporal autoencoder: L1 + L2 reconstruction with extra weight on what moves, KL, outlier penalty.

    L2 beside L1: the errors that matter here are few and large (a small subject, an edge, a lightning
    frame); L1 alone lets them be (its gradient does not grow with the error). Overfitting one batch for
    200 steps: 19.6 dB with L1 alone, 21.3 dB with L1 + 4 L2.

    The world's subjects cover ~2 % of a 64x64 frame, so a plain mean over pixels lets the codec blur the
    very things the judge and the user look at (a ball's colour, a footstep). Pixels that differ from the
    crop's temporal median (moving subjects, flashes) get `moving_weight` times the weight.

    `train_encoder=false` trains the decoder alone (from `--init-from`, an exported vae): the latent space
    stays exactly what the text-to-video and edit models were trained on. Measured on the tiny models: it
    raised reconstruction 24.0 -> 25.4 dB yet decoded generated latents worse (weights/tiny/MODEL_CARD.md),
    since a decoder fitted to encoder outputs alone is not fitted to what the generator produces.
    """

    DEFAULTS = dict(resolution=64, clip_frames=16, clip_seconds=4.0, kl_weight=1e-4, opl_weight=0.1,
                    moving_weight=5.0, moving_threshold=0.1, l2_weight=4.0, train_encoder=True)

    def __init__(self, config):
        super().__init__(config)
        check_train_encoder(self.options, config)

    def build(self):
        from avgen.models.autoencoder_video import TemporalAutoencoder

        vae = load_component(self.config.preset, "vae", TemporalAutoencoder)
        vae.encoder.requires_grad_(self.options["train_encoder"])  # the trainer optimises what requires grad
        return {"vae": vae}

    def dataset(self, seed, rank, world_size):
        formats = [(self.options["clip_seconds"], fps) for fps in (8, 12, 16, 24)]
        # world clips come as their random clip_frames window alone (collate's crop is then the whole item)
        return self.world_or_folder(seed, rank, world_size, resolution=self.options["resolution"], formats=formats,
                                    include_audio=False, window_frames=self.options["clip_frames"])

    def collate(self, items):
        frames = self.options["clip_frames"]
        crops = []
        for item in items:
            video = item["frames"]  # (F, 3, H, W) uint8
            if len(video) < frames:
                raise ValueError(f"a clip has {len(video)} frames, fewer than clip_frames={frames}")
            start = np.random.randint(0, len(video) - frames + 1)
            crops.append(video[start : start + frames])
        return {"frames": torch.stack(crops).permute(0, 2, 1, 3, 4)}  # (B, 3, F, H, W) uint8

    def loss(self, modules, batch, step):
        from avgen.models.autoencoder_audio import kl_loss
        from avgen.models.autoencoder_video import outlier_penalty_loss

        vae = modules["vae"]
        x = batch["frames"].float() / 127.5 - 1  # (B, 3, F, H, W)
        with torch.set_grad_enabled(self.options["train_encoder"]):
            posterior = vae.encode(x).latent_dist
            z = posterior.sample()
        reconstruction = vae.decode(z, num_frames=x.shape[2]).sample.float()
        moving = (x - x.median(dim=2, keepdim=True).values).abs().amax(dim=1, keepdim=True) > self.options["moving_threshold"]
        weight = 1 + (self.options["moving_weight"] - 1) * moving.float()  # (B, 1, F, H, W)
        l1 = ((reconstruction - x).abs() * weight).mean() / weight.mean()
        l2 = ((reconstruction - x).pow(2) * weight).mean() / weight.mean()
        kl = kl_loss(posterior).mean()
        opl = outlier_penalty_loss(posterior.mean.float())
        total = l1 + self.options["l2_weight"] * l2 + self.options["kl_weight"] * kl + self.options["opl_weight"] * opl
        return total, {"l1": l1.item(), "l2": l2.item(), "kl": kl.item(), "opl": opl.item()}

    def evaluate(self, modules):
        """PSNR of 2-second clips at every fps, encoded with the posterior mode."""
        from avgen.world import render_clip
        from avgen.world.spec import sample_spec

        rng = np.random.default_rng(EVAL_SEED)
        vae, scores, latents = modules["vae"], [], []
        for fps in (8, 12, 16, 24):
            for _ in range(2):
                spec = sample_spec(rng, resolution=self.options["resolution"], fps=fps, duration=2.0)
                frames = torch.from_numpy(render_clip(spec).frames).permute(3, 0, 1, 2)[None]  # (1, 3, F, H, W)
                x = frames.to(vae.device).float() / 127.5 - 1
                z = vae.encode(x).latent_dist.mode()
                scores.append(psnr(vae.decode(z, num_frames=x.shape[2]).sample, x))
                latents.append(z.float().flatten())
        return {"psnr": float(np.mean(scores)), "psnr_min": float(np.min(scores)), "latent_std": torch.cat(latents).std().item()}


class AudioAutoencoderTask(Task):
    """The audio VAE: L1 on the waveform + multi-resolution STFT + KL (+ `tonal_weight` x the tonal-peak
    loss, + `valley_weight` x the tonal-valley loss, + with `adversarial_weight` / `feature_weight` > 0 a
    multi-resolution spectrogram discriminator's hinge and feature-matching losses, the discriminator trained
    beside it from the start and the VAE fooling it from step `adversarial_from`), on 1-second crops. `train_encoder=false` trains the decoder alone (from `--init-from`), so the
    latent space the audio transformer was trained on stays exactly as it is.

    Each rendered clip gives `crops_per_clip` crops (a batch holds batch_size * crops_per_clip of them): a 4 s
    clip takes ~37 ms to render on one core, a training step of the STFT VAE ~11 ms per crop, so one crop per
    clip would spend most of the step rendering."""

    DEFAULTS = dict(clip_seconds=1.0, source_seconds=4.0, crops_per_clip=4, kl_weight=1e-4, l1_weight=1.0, sample_rate=16000,
                    tonal_weight=1.0, valley_weight=0.0, valley_frames=0, train_encoder=True, adversarial_weight=0.0, feature_weight=0.0, adversarial_from=0,
                    discriminator_fft_sizes=[512, 1024, 2048], discriminator_channels=16, discriminator_crops=8)

    def __init__(self, config):
        super().__init__(config)
        check_train_encoder(self.options, config)
        for name in ("valley_weight", "valley_frames", "adversarial_weight", "feature_weight", "adversarial_from", "discriminator_crops"):
            if not isinstance(self.options[name], (int, float)) or self.options[name] < 0:
                raise ValueError(f"{name} must be a number >= 0; got {self.options[name]!r}")
        sizes = self.options["discriminator_fft_sizes"]
        if not isinstance(sizes, list) or not sizes or not all(isinstance(n, int) and n >= 64 for n in sizes):
            raise ValueError(f"discriminator_fft_sizes must be a non-empty list of FFT sizes >= 64; got {sizes!r}")

    @property
    def adversarial(self) -> bool:
        """A discriminator trains beside the VAE (the GAN losses are on) when either of their weights is > 0."""
        return self.options["adversarial_weight"] > 0 or self.options["feature_weight"] > 0

    def build(self):
        from avgen.models.autoencoder_audio import AudioAutoencoder, SpectrogramDiscriminator

        vae = load_component(self.config.preset, "audio_vae", AudioAutoencoder)
        if vae.config.sample_rate != self.options["sample_rate"]:
            raise ValueError(f"audio_vae runs at {vae.config.sample_rate} Hz, the task option sample_rate is {self.options['sample_rate']}")
        vae.encoder.requires_grad_(self.options["train_encoder"])  # the trainer optimises what requires grad
        if not self.adversarial:
            return {"audio_vae": vae}
        # training only: checkpointed with the run (resume keeps it), never exported (no save_pretrained)
        discriminator = SpectrogramDiscriminator(tuple(self.options["discriminator_fft_sizes"]), self.options["discriminator_channels"])
        return {"audio_vae": vae, "audio_discriminator": discriminator}

    def clip_groups(self, modules):
        """The discriminator's gradient is clipped apart from the VAE's: its norm must not scale the decoder's steps."""
        return [["audio_vae"], ["audio_discriminator"]] if self.adversarial else super().clip_groups(modules)

    def dataset(self, seed, rank, world_size):
        # 8 fps: the frames are rendered too but cost least there; the sound does not depend on fps
        return self.world_or_folder(seed, rank, world_size, resolution=64, formats=[(self.options["source_seconds"], 8)],
                                    sample_rate=self.options["sample_rate"])

    def collate(self, items):
        length = int(self.options["clip_seconds"] * self.options["sample_rate"])
        crops = []
        for item in items:
            audio = item["audio"]  # (1, S)
            for start in np.random.randint(0, audio.shape[-1] - length + 1, size=self.options["crops_per_clip"]):
                crops.append(audio[:, start : start + length])
        return {"audio": torch.stack(crops)}  # (B * crops_per_clip, 1, S)

    def loss(self, modules, batch, step):
        from avgen.models.autoencoder_audio import kl_loss, multi_resolution_stft_loss, tonal_peak_loss

        audio = batch["audio"]
        # a posterior sample, so the decoder learns the posterior's spread; with train_encoder=false the encoder's
        # parameters do not require grad (build), so autograd records nothing through it
        reconstruction, posterior = modules["audio_vae"](audio)
        reconstruction = reconstruction.float()
        l1 = (reconstruction - audio).abs().mean()
        stft = multi_resolution_stft_loss(reconstruction, audio)
        kl = kl_loss(posterior).mean()
        total = self.options["l1_weight"] * l1 + stft + self.options["kl_weight"] * kl
        logs = {"l1": l1.item(), "stft": stft.item(), "kl": kl.item()}
        if self.options["tonal_weight"]:
            tonal = tonal_peak_loss(reconstruction, audio)
            total = total + self.options["tonal_weight"] * tonal
            logs["tonal"] = tonal.item()
        if self.options["valley_weight"]:
            from avgen.models.autoencoder_audio import tonal_valley_loss

            valley = tonal_valley_loss(reconstruction, audio)  # beside the notes, in frequency
            if self.options["valley_frames"]:
                # and before / after them in time, at the judge's 16 ms hop: a note's bin 12 dB below its peak within
                # valley_frames frames (the judge's attack rises 12 dB in 48 ms) must stay as low (pre-echo)
                valley = valley + tonal_valley_loss(reconstruction, audio, reach=0, reach_frames=int(self.options["valley_frames"]),
                                                    hop=256, depth_db=12.0)
            total = total + self.options["valley_weight"] * valley
            logs["valley"] = valley.item()
        if self.adversarial:
            from avgen.models.autoencoder_audio import adversarial_losses

            from avgen.precision import bf16_is_fast

            # on the first discriminator_crops crops only (0: all): its 2D convolutions cost more than the VAE's step
            crops = slice(0, self.options["discriminator_crops"] or None)
            dtype = torch.bfloat16 if bf16_is_fast(audio.device.type) else None
            discriminator_loss, generator_loss, feature_loss = adversarial_losses(
                modules["audio_discriminator"], reconstruction[crops], audio[crops], dtype)
            # the first adversarial_from steps train the discriminator alone, on the VAE as it is
            on = float(step >= self.options["adversarial_from"])
            total = total + discriminator_loss + on * (self.options["adversarial_weight"] * generator_loss + self.options["feature_weight"] * feature_loss)
            logs.update(discriminator=discriminator_loss.item(), adversarial=generator_loss.item(), feature=feature_loss.item())
        return total, logs

    def evaluate(self, modules):
        """Multi-resolution STFT distance and SNR on whole 4-second clips, posterior mode."""
        from avgen.models.autoencoder_audio import multi_resolution_stft_loss
        from avgen.world import render_clip
        from avgen.world.spec import sample_spec

        rng = np.random.default_rng(EVAL_SEED)
        vae, stft, snr, latents = modules["audio_vae"], [], [], []
        for _ in range(6):
            spec = sample_spec(rng, resolution=64, fps=8, duration=4.0, sample_rate=self.options["sample_rate"])
            audio = torch.from_numpy(np.asarray(render_clip(spec).audio, dtype=np.float32)).reshape(1, 1, -1).to(vae.device)
            z = vae.encode(audio).latent_dist.mode()
            reconstruction = vae.decode(z, num_samples=audio.shape[-1]).sample.float()
            stft.append(multi_resolution_stft_loss(reconstruction, audio).item())
            noise = (reconstruction - audio).pow(2).mean().item()
            snr.append(10 * math.log10(audio.pow(2).mean().item() / max(noise, 1e-12)))
            latents.append(z.float().flatten())
        return {"stft": float(np.mean(stft)), "snr_db": float(np.mean(snr)), "latent_std": torch.cat(latents).std().item()}


class TextToVideoTask(Task):
    """The video transformer and its text encoder, trained jointly by flow matching on TAE latents.

    Latents come from a latent cache (latent_cache.py; world clips only) or are encoded on the fly by
    the frozen autoencoder (any data, ~1 s per 10 s clip on 2 CPU cores). Each clip gets a freshly drawn
    caption; `caption_dropout` of them are "" (the unconditional branch of classifier-free guidance).

    Curriculum (Movie Gen trains short clips before long ones): before step `full_clips_from`, each batch
    is a random window of `crop_latent_frames` latent frames (0 = no cropping). 16 of 60 latent frames
    cost ~1/4 of the token FLOPs and ~1/14 of the attention, and a world caption still holds for any
    window (subject, colour, background, weather, motion and camera are the same all clip long).

    Motion: `temporal_weight` > 0 adds flow_matching.temporal_difference_loss, weighted so, to the flow loss:
    the error of the clean estimate's frame-to-frame change (camera pans live there, at a few % of the
    latents' energy, and the plain loss let the shipped model predict them static).

    Text: `train_text_encoder=false` freezes the text encoder (Movie Gen's are pretrained and frozen).
    `text_standardization` / `pooled_text` build the transformer with those options (VideoTransformer);
    a run that starts with text_standardization measures the text encoder's statistics on
    `calibration_captions` training captions and folds them into text_proj (the function is unchanged).
    """

    DEFAULTS = dict(vae="runs/vae/final/vae", latent_cache="", caption_dropout=0.1, logit_mean=0.0, logit_std=1.0,
                    resolution=64, max_text_length=256, crop_latent_frames=0, full_clips_from=0,
                    train_text_encoder=True, text_standardization=False, pooled_text=False, calibration_captions=512,
                    temporal_weight=0.0)

    def __init__(self, config):
        super().__init__(config)
        from avgen.models.autoencoder_video import TemporalAutoencoder
        from avgen.models.text_encoder import load_tokenizer

        self.vae = TemporalAutoencoder.from_pretrained(self.options["vae"]).eval().requires_grad_(False)
        self.tokenizer = load_tokenizer(config.preset)
        self.eval_batches = None

    def build(self):
        from transformers import T5Config

        from avgen.models.text_encoder import build_text_encoder
        from avgen.models.transformer_video import VideoTransformer

        transformer = self.with_text_options(load_component(self.config.preset, "transformer", VideoTransformer))
        text_encoder = build_text_encoder(T5Config.from_pretrained(Path(self.config.preset) / "text_encoder"))
        text_encoder.requires_grad_(bool(self.options["train_text_encoder"]))  # the trainer optimises what requires grad
        check_vocabulary(self.tokenizer, text_encoder)
        if transformer.config.text_dim != text_encoder.config.d_model:
            raise ValueError(f"transformer text_dim {transformer.config.text_dim} != text encoder width {text_encoder.config.d_model}")
        return {"transformer": transformer, "text_encoder": text_encoder}

    def with_text_options(self, transformer):
        """`transformer` rebuilt with the text_standardization / pooled_text options turned on, its weights
        kept (the new ones start neutral: VideoTransformer.optional_init_keys)."""
        from avgen.models.transformer_video import VideoTransformer

        text_options = {key: True for key in ("text_standardization", "pooled_text") if self.options[key]}
        if all(transformer.config.get(key, False) for key in text_options):
            return transformer
        config = {key: value for key, value in transformer.config.items() if not key.startswith("_")}
        rebuilt = VideoTransformer(**{**config, **text_options})
        load_allowing_optional_keys(rebuilt, transformer.state_dict(), "the transformer rebuilt with the text options")
        return rebuilt

    transformer_name = "transformer"  # the trained transformer's name among the modules

    def start(self, modules):
        from avgen.models.text_encoder import encode_prompt
        from avgen.world.captions import caption
        from avgen.world.spec import sample_spec

        transformer = modules[self.transformer_name]
        if not transformer.config.text_standardization:
            return
        rng = np.random.default_rng(EVAL_SEED + 1)
        texts = [caption(sample_spec(rng, resolution=self.options["resolution"]), rng, "train")
                 for _ in range(self.options["calibration_captions"])]
        device = next(transformer.parameters()).device
        with torch.no_grad():
            batches = (encode_prompt(self.tokenizer, modules["text_encoder"], texts[i : i + 64], self.options["max_text_length"], device)
                       for i in range(0, len(texts), 64))
            transformer.calibrate_text(torch.cat([states[mask.bool()] for states, mask in batches]))  # (T, text_dim)

    def to(self, device):
        self.vae.to(device)

    def dataset(self, seed, rank, world_size):
        from avgen.training.latent_cache import LatentCacheDataset

        if self.options["latent_cache"]:
            return LatentCacheDataset(self.options["latent_cache"], seed, rank, world_size)
        return self.world_or_folder(seed, rank, world_size, resolution=self.options["resolution"], include_audio=False)

    @staticmethod
    def shape_key(item):
        return tuple(item["latents" if "latents" in item else "frames"].shape)

    def collate(self, items):
        texts = ["" if np.random.random() < self.options["caption_dropout"] else item["text"] for item in items]
        batch = {"text": texts, "fps": torch.tensor([int(round(item["fps"])) for item in items])}
        if "latents" in items[0]:
            batch["latents"] = torch.stack([item["latents"] for item in items])  # (B, C, F', H', W')
        else:
            batch["frames"] = torch.stack([item["frames"] for item in items]).permute(0, 2, 1, 3, 4)  # (B, 3, F, H, W) uint8
        return batch

    def crop(self, x1: torch.Tensor, step: int) -> tuple[torch.Tensor, int]:
        """x1 (B, C, F', H', W') -> ((B, C, crop_latent_frames, H', W'), start): one random window per batch
        and its first latent frame, while the curriculum's short-clip phase lasts; (x1, 0) afterwards. The
        window keeps its frame positions (start..start+crop), so all of them train in the short phase."""
        frames = self.options["crop_latent_frames"]
        if frames <= 0 or x1.shape[2] <= frames or step >= self.options["full_clips_from"]:
            return x1, 0
        start = int(np.random.randint(0, x1.shape[2] - frames + 1))
        return x1[:, :, start : start + frames], start

    def latents(self, batch) -> torch.Tensor:
        """Scaled clean latents x1 (B, C, F', H', W')."""
        if "latents" in batch:
            latents = batch["latents"]
        else:
            with torch.no_grad():
                latents = self.vae.encode(batch["frames"].float() / 127.5 - 1).latent_dist.mode().float()
        return latents * self.vae.config.scaling_factor

    def flow_loss(self, modules, x1, texts, fps, t, noise, frame_offset: int = 0, temporal: bool = True) -> torch.Tensor:
        from avgen import flow_matching
        from avgen.models.text_encoder import encode_prompt

        text_states, text_mask = encode_prompt(self.tokenizer, modules["text_encoder"], texts, self.options["max_text_length"], x1.device)
        x_t = flow_matching.interpolate(noise, x1, t)
        velocity = modules["transformer"](x_t, text_states, t, fps, text_mask, frame_offset=frame_offset).sample
        return self.velocity_loss(velocity, noise, x1, t, temporal)  # (B,)

    def velocity_loss(self, velocity, noise, x1, t, temporal: bool = True) -> torch.Tensor:
        """The flow loss per sample (B,), with the temporal-difference term when temporal_weight > 0 (and
        `temporal`: evaluations leave it out, so their figures compare with runs trained without it)."""
        from avgen import flow_matching

        loss = flow_matching.loss(velocity, noise, x1)
        if temporal and self.options["temporal_weight"] and x1.shape[2] > 1:
            loss = loss + self.options["temporal_weight"] * flow_matching.temporal_difference_loss(velocity, noise, x1, t)
        return loss

    def loss(self, modules, batch, step):
        from avgen import flow_matching

        x1, start = self.crop(self.latents(batch), step)
        t = flow_matching.sample_flow_time(len(x1), self.options["logit_mean"], self.options["logit_std"], device=x1.device)
        loss = self.flow_loss(modules, x1, batch["text"], batch["fps"], t, torch.randn_like(x1), start).mean()
        return loss, {}

    def evaluate(self, modules):
        """Flow loss on 8 fixed clips (both formats) at fixed t and noise, with their captions and without."""
        from avgen.world import render_clip
        from avgen.world.captions import caption
        from avgen.world.spec import sample_spec

        device = next(modules["transformer"].parameters()).device
        if self.eval_batches is None:
            rng, self.eval_batches = np.random.default_rng(EVAL_SEED), []
            for duration, fps in ((10.0, 24), (16.0, 16)):
                specs = [sample_spec(rng, resolution=self.options["resolution"], fps=fps, duration=duration) for _ in range(4)]
                frames = torch.from_numpy(np.stack([render_clip(s).frames for s in specs])).permute(0, 4, 1, 2, 3)
                x1 = self.latents({"frames": frames.to(device)})
                noise = torch.randn(x1.shape, generator=torch.Generator().manual_seed(0)).to(device)
                self.eval_batches.append((x1, noise, [caption(s, rng, "train") for s in specs], torch.full((4,), fps)))
        results = {}
        for name, use_text in (("loss", True), ("loss_no_text", False)):
            losses = []
            for x1, noise, texts, fps in self.eval_batches:
                for t in (0.1, 0.3, 0.5, 0.7, 0.9):
                    times = torch.full((len(x1),), t, device=device)
                    losses.append(self.flow_loss(modules, x1, texts if use_text else [""] * len(x1), fps.to(device), times, noise,
                                                 temporal=False).mean().item())
            results[name] = float(np.mean(losses))
        return results


def edit_transformer_from(transformer):
    """Movie Gen Edit's initialisation: the text-to-video transformer with `in_channels` doubled, the new
    input weights (for the source video's latents, concatenated on the channel axis) zero, so at step 0
    the edit model is exactly the text-to-video model."""
    from avgen.models.transformer_video import VideoTransformer

    channels = transformer.config.in_channels
    # the public settings only: diffusers' private "_use_default_values" would reset out_channels to in_channels
    config = {key: value for key, value in transformer.config.items() if not key.startswith("_")}
    edit = VideoTransformer(**{**config, "in_channels": 2 * channels})
    state = dict(transformer.state_dict())
    weight = state["patch_embed.weight"]  # (D, C, p_f, p_h, p_w)
    state["patch_embed.weight"] = torch.cat([weight, torch.zeros_like(weight)], dim=1)  # (D, 2C, p_f, p_h, p_w)
    edit.load_state_dict(state)
    return edit


def is_edit_transformer(config) -> bool:
    """Whether a VideoTransformer config is an edit model's: its input is [x_t, source latents], twice its output."""
    return config["in_channels"] == 2 * (config.get("out_channels") or config["in_channels"])


class EditTask(TextToVideoTask):
    """Instruction editing (Movie Gen Edit): the edit transformer sees [x_t, source latents] on the channel
    axis and the instruction as text; it and its text encoder start from the trained text-to-video ones.

    - edit_cache: an edit-pair latent cache (`avgen cache-latents --edits`); latent_cache: a clip cache for
      the plain text-to-video task, mixed in with probability `t2v_mix` (source = zeros) so the model
      keeps generating from text alone.
    - source_dropout / caption_dropout: share of edit samples trained without the source video / without
      the instruction: the unconditional branches of InstructPix2Pix-style guidance.
    - init: a text-to-video pipeline folder (its transformer gets the zero source channels) or an edit
      pipeline folder (its transformer and text encoder are trained on).
    """

    DEFAULTS = dict(TextToVideoTask.DEFAULTS, init="weights/tiny", edit_cache="", t2v_mix=0.25, source_dropout=0.1)

    def build(self):
        from transformers import T5EncoderModel

        from avgen.models.transformer_video import VideoTransformer

        init = Path(self.options["init"])
        transformer = VideoTransformer.from_pretrained(init / "transformer", torch_dtype=torch.float32)
        if not is_edit_transformer(transformer.config):  # an edit pipeline's own transformer is continued as it is
            transformer = edit_transformer_from(transformer)
        text_encoder = T5EncoderModel.from_pretrained(init / "text_encoder", torch_dtype=torch.float32)
        text_encoder.requires_grad_(bool(self.options["train_text_encoder"]))
        return {"edit_transformer": self.with_text_options(transformer), "text_encoder": text_encoder}

    transformer_name = "edit_transformer"

    def dataset(self, seed, rank, world_size):
        from avgen.training.latent_cache import LatentCacheDataset

        if not self.options["edit_cache"] or not self.options["latent_cache"]:
            raise ValueError("the edit task needs the options edit_cache and latent_cache (see avgen cache-latents)")
        edits = LatentCacheDataset(self.options["edit_cache"], seed, rank, world_size)
        clips = LatentCacheDataset(self.options["latent_cache"], seed + 1, rank, world_size)
        return MixedStreams(edits, clips, self.options["t2v_mix"], seed)

    def collate(self, items):
        batch = super().collate(items)  # latents, fps, text with caption dropout
        batch["source"] = torch.stack([item.get("source", torch.zeros_like(item["latents"])) for item in items])
        keep = torch.rand(len(items)) >= self.options["source_dropout"]
        batch["source"] = batch["source"] * keep[:, None, None, None, None]
        return batch

    def flow_loss(self, modules, x1, texts, fps, t, noise, source=None, frame_offset: int = 0, temporal: bool = True) -> torch.Tensor:
        from avgen import flow_matching
        from avgen.models.text_encoder import encode_prompt

        text_states, text_mask = encode_prompt(self.tokenizer, modules["text_encoder"], texts, self.options["max_text_length"], x1.device)
        x_t = flow_matching.interpolate(noise, x1, t)
        source = torch.zeros_like(x1) if source is None else source
        velocity = modules["edit_transformer"](torch.cat([x_t, source], dim=1), text_states, t, fps, text_mask,
                                               frame_offset=frame_offset).sample
        return self.velocity_loss(velocity, noise, x1, t, temporal)  # (B,)

    def loss(self, modules, batch, step):
        from avgen import flow_matching

        scale = self.vae.config.scaling_factor
        # the t2v curriculum's window, the source cut to the same frames: an edit step costs a t2v step
        x1, start = self.crop(batch["latents"] * scale, step)  # (B, C, F', H', W')
        source = batch["source"][:, :, start : start + x1.shape[2]] * scale  # (B, C, F', H', W')
        t = flow_matching.sample_flow_time(len(x1), self.options["logit_mean"], self.options["logit_std"], device=x1.device)
        return self.flow_loss(modules, x1, batch["text"], batch["fps"], t, torch.randn_like(x1), source, start).mean(), {}

    def evaluate(self, modules):
        """Flow loss on 4 fixed train-phrasing edit pairs (10 s at 24 fps) at fixed t and noise: with the
        source video, and without it (the gap is what the model takes from the source)."""
        from avgen.world.edits import sample_edit_pair
        from avgen.training.latent_cache import _encode

        device = next(modules["edit_transformer"].parameters()).device
        if self.eval_batches is None:
            rng = np.random.default_rng(EVAL_SEED)
            pairs = [sample_edit_pair(rng, resolution=self.options["resolution"], fps=24, duration=10.0) for _ in range(4)]
            scale = self.vae.config.scaling_factor
            x1 = _encode(self.vae, [p.target for p in pairs], 4).to(device) * scale
            source = _encode(self.vae, [p.source for p in pairs], 4).to(device) * scale
            noise = torch.randn(x1.shape, generator=torch.Generator().manual_seed(0)).to(device)
            self.eval_batches = (x1, source, noise, [p.instruction for p in pairs], torch.full((4,), 24, device=device))
        x1, source, noise, texts, fps = self.eval_batches
        results = {}
        for name, given in (("loss", source), ("loss_no_source", torch.zeros_like(source))):
            losses = [self.flow_loss(modules, x1, texts, fps, torch.full((len(x1),), t, device=device), noise, given,
                                     temporal=False).mean().item()
                      for t in (0.1, 0.3, 0.5, 0.7, 0.9)]
            results[name] = float(np.mean(losses))
        return results


class MixedStreams(torch.utils.data.IterableDataset):
    """Items of `first`, replaced by the next item of `second` with probability `second_prob`."""

    def __init__(self, first, second, second_prob: float, seed: int):
        super().__init__()
        self.first, self.second, self.second_prob, self.seed = first, second, second_prob, seed

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        first, second = iter(self.first), iter(self.second)
        while True:
            yield next(second) if rng.random() < self.second_prob else next(first)


class VideoToAudioTask(Task):
    """The audio transformer, the per-frame video encoder and the audio model's text encoder, trained
    jointly by flow matching on audio-VAE latents of world clips rendered on the fly.

    - caption_dropout / video_dropout: share of samples without text / with the learned null video (the
      unconditional branches of guidance, and the text-only baseline).
    - mask_prob: share of samples trained on Movie Gen's masked prediction (a random head, tail or
      middle of the latents given, the loss on the rest), so one model also extends and infills.
    - event_weight: an auxiliary per-frame loss asking the video features to mark the frames of visual
      events (ball contacts, footsteps, lightning flashes, from the world's ground truth). It is a training
      signal only; the event head is not part of the pipeline.
    - onset_weight: extra weight of the flow loss on the audio latent steps at each of those events' onsets
      (onset_step_weights; 0 = a plain mean over steps, the shipped recipe).

    The model works in windows of its `max_positions` latent steps (positions are relative to the window;
    longer clips are sampled by multi-diffusion over overlapping windows, avgen.long_form), so it trains on
    clips one window long (`formats`, default 5 s = 250 steps at 50 Hz, at every world fps): a 10 s clip
    would cost twice the render and four times the attention for the same lesson.
    """

    DEFAULTS = dict(audio_vae="runs/audio-vae/final/audio_vae", formats=[[5, 24], [5, 16], [5, 12], [5, 8]],
                    caption_dropout=0.3, video_dropout=0.1, mask_prob=0.25, event_weight=0.1, onset_weight=0.0, logit_mean=0.0,
                    logit_std=1.0, resolution=64, max_text_length=256)
    EVENT_KINDS = ("contact", "footstep", "flash")
    ONSET_STEPS = (-1, 3)  # latent steps (20 ms at 50 Hz) before / after an event's onset that onset_weight weighs

    def __init__(self, config):
        super().__init__(config)
        from avgen.models.autoencoder_audio import AudioAutoencoder
        from avgen.models.text_encoder import load_tokenizer

        self.audio_vae = AudioAutoencoder.from_pretrained(self.options["audio_vae"]).eval().requires_grad_(False)
        self.tokenizer = load_tokenizer(config.preset)
        self.eval_batch = None

    def build(self):
        from transformers import T5Config

        from avgen.models.text_encoder import build_text_encoder
        from avgen.models.transformer_audio import AudioTransformer
        from avgen.models.video_features import VideoFeatureEncoder

        transformer = load_component(self.config.preset, "audio_transformer", AudioTransformer)
        video_encoder = load_component(self.config.preset, "video_encoder", VideoFeatureEncoder)
        text_encoder = build_text_encoder(T5Config.from_pretrained(Path(self.config.preset) / "text_encoder"))
        check_vocabulary(self.tokenizer, text_encoder)
        for name, value, expected in (("sample_rate", transformer.config.sample_rate, self.audio_vae.config.sample_rate),
                                      ("hop_length", transformer.config.hop_length, self.audio_vae.config.hop_length),
                                      ("video_dim", transformer.config.video_dim, video_encoder.config.feature_dim),
                                      ("text_dim", transformer.config.text_dim, text_encoder.config.d_model)):
            if value != expected:
                raise ValueError(f"audio_transformer {name} {value} does not match its input's {expected}")
        event_head = torch.nn.Linear(video_encoder.config.feature_dim, len(self.EVENT_KINDS))
        return {"audio_transformer": transformer, "video_encoder": video_encoder, "audio_text_encoder": text_encoder,
                "event_head": event_head}

    def to(self, device):
        self.audio_vae.to(device)

    def dataset(self, seed, rank, world_size):
        formats = [tuple(f) for f in self.options["formats"]]
        return self.world_or_folder(seed, rank, world_size, resolution=self.options["resolution"], formats=formats,
                                    sample_rate=self.audio_vae.config.sample_rate)

    @staticmethod
    def shape_key(item):
        return tuple(item["frames"].shape) + tuple(item["audio"].shape)

    @classmethod
    def sync_events(cls, item) -> list[tuple[int, float]]:
        """(EVENT_KINDS index, time in seconds) of each visual sync event of a world item; [] for a user's clip."""
        from avgen.world.simulate import ground_truth, simulate
        from avgen.world.spec import ClipSpec

        if "spec" not in item:  # a user's folder: no ground truth
            return []
        events = ground_truth(simulate(ClipSpec.from_dict(json.loads(item["spec"])))).events
        return [(cls.EVENT_KINDS.index(e.kind), e.time) for e in events if e.kind in cls.EVENT_KINDS]

    @classmethod
    def event_targets(cls, item, events: list[tuple[int, float]] | None = None) -> torch.Tensor:
        """(F, len(EVENT_KINDS)) 0/1: the frame showing each visual event (the nearest frame time; `events`: the
        item's sync_events if already known). Also the labels of benchmarks/bench_video_feature_probe.py."""
        frames, fps = item["frames"].shape[0], item["fps"]
        targets = torch.zeros(frames, len(cls.EVENT_KINDS))
        for kind, time in cls.sync_events(item) if events is None else events:
            targets[min(frames - 1, int(round(time * fps))), kind] = 1
        return targets

    def onset_step_weights(self, item, extra: float | None = None, events: list[tuple[int, float]] | None = None) -> torch.Tensor:
        """(T,) the flow loss's weight per audio latent step: 1 + extra (default: the onset_weight option) on the
        steps from ONSET_STEPS[0] to ONSET_STEPS[1] around each sync event (a contact's impact, a footstep, a
        flash's thunder all sound at the event's time), 1 elsewhere. Those few steps (~10-25 % of a clip) are
        what the sync judge hears, and a plain mean over steps lets ambience and music outweigh them."""
        extra = self.options["onset_weight"] if extra is None else extra
        clock = AVClock(int(round(item["fps"])), self.audio_vae.config.sample_rate, audio_hop=self.audio_vae.config.hop_length)
        steps = clock.audio_latent_steps(item["audio"].shape[-1])
        weights = torch.ones(steps)
        for _, time in (self.sync_events(item) if events is None else events) if extra else []:
            onset = int(clock.audio_step_at(time))
            weights[max(0, onset + self.ONSET_STEPS[0]) : max(0, onset + self.ONSET_STEPS[1] + 1)] += extra
        return weights

    def collate(self, items):
        events = [self.sync_events(item) for item in items]  # one simulation per item, for both targets below
        return {
            "frames": torch.stack([item["frames"] for item in items]).permute(0, 2, 1, 3, 4),  # (B, 3, F, H, W) uint8
            "audio": torch.stack([item["audio"] for item in items]),  # (B, 1, S)
            "text": ["" if np.random.random() < self.options["caption_dropout"] else item["text"] for item in items],
            "fps": torch.tensor([int(round(item["fps"])) for item in items]),
            "events": torch.stack([self.event_targets(item, e) for item, e in zip(items, events)]),  # (B, F, K)
            "has_events": torch.tensor(["spec" in item for item in items]),
            "step_weights": torch.stack([self.onset_step_weights(item, events=e) for item, e in zip(items, events)]),  # (B, T)
        }

    def latents(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.audio_vae.encode(audio).latent_dist.mode().float() * self.audio_vae.config.scaling_factor  # (B, C, T)

    @staticmethod
    def known_mask(batch: int, steps: int, prob: float, generator=None) -> torch.Tensor:
        """(B, 1, T) 1 = given: for a share `prob` of samples a random head, tail or head+tail (infilling)
        of 10-60 % of the steps; 0 everywhere for the rest."""
        mask = torch.zeros(batch, 1, steps)
        draws = torch.rand(batch, 3, generator=generator)
        for i in range(batch):
            if draws[i, 0] >= prob:
                continue
            given = int(steps * (0.1 + 0.5 * draws[i, 2]))
            mode = int(draws[i, 1] * 3)
            if mode == 0:
                mask[i, :, :given] = 1  # extend forwards
            elif mode == 1:
                mask[i, :, steps - given :] = 1  # extend backwards
            else:
                mask[i, :, : given // 2] = 1  # infill between a given head and tail
                mask[i, :, steps - given // 2 :] = 1
        return mask

    def velocity_error(self, modules, batch, x1, t, noise, known_mask, video_dropout) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared velocity error per latent channel and step (B, C, T), and the video features (B, F, D)."""
        from avgen import flow_matching
        from avgen.models.text_encoder import encode_prompt

        video = batch["frames"].float() / 127.5 - 1  # (B, 3, F, H, W)
        features = modules["video_encoder"](video)  # (B, F, D)
        drop = video_dropout.to(features.dtype)[:, None, None]
        null = modules["audio_transformer"].null_video_features.to(features.dtype)
        conditioning = features * (1 - drop) + null * drop  # dropped samples see the null video on every frame
        text_states, text_mask = encode_prompt(self.tokenizer, modules["audio_text_encoder"], batch["text"],
                                               self.options["max_text_length"], x1.device)
        x_t = flow_matching.interpolate(noise, x1, t)
        velocity = modules["audio_transformer"](x_t, t, text_states, text_mask, video_features=conditioning, fps=batch["fps"],
                                                known_latents=x1, known_mask=known_mask).sample
        return (velocity.float() - flow_matching.velocity_target(noise, x1)) ** 2, features

    @staticmethod
    def masked_mean(error: torch.Tensor, known_mask: torch.Tensor, step_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample mean of error (B, C, T) over the unknown steps (B,), weighted per step by step_weights (B, T)
        if given (normalised, so the loss keeps its scale)."""
        unknown = 1 - known_mask  # (B, 1, T)
        if step_weights is not None:
            unknown = unknown * step_weights[:, None].to(unknown.dtype)
        return (error * unknown).sum(dim=(1, 2)) / (unknown.sum(dim=(1, 2)) * error.shape[1]).clamp_min(1)

    def flow_loss(self, modules, batch, x1, t, noise, known_mask, video_dropout, step_weights=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample velocity MSE on the unknown steps (B,), weighted per step by step_weights (B, T) if given,
        and the video features (B, F, D)."""
        error, features = self.velocity_error(modules, batch, x1, t, noise, known_mask, video_dropout)
        return self.masked_mean(error, known_mask, step_weights), features

    def loss(self, modules, batch, step):
        from avgen import flow_matching

        x1 = self.latents(batch["audio"])
        batch_size, _, steps = x1.shape
        t = flow_matching.sample_flow_time(batch_size, self.options["logit_mean"], self.options["logit_std"], device=x1.device)
        known = self.known_mask(batch_size, steps, self.options["mask_prob"]).to(x1.device)
        video_dropout = (torch.rand(batch_size) < self.options["video_dropout"]).to(x1.device)
        weights = batch["step_weights"] if self.options["onset_weight"] else None
        flow, features = self.flow_loss(modules, batch, x1, t, torch.randn_like(x1), known, video_dropout, weights)
        flow = flow.mean()
        logits = modules["event_head"](features.float())  # (B, F, K)
        events = F.binary_cross_entropy_with_logits(logits, batch["events"], pos_weight=torch.tensor(10.0, device=x1.device),
                                                    reduction="none").mean(dim=(1, 2))
        events = (events * batch["has_events"].float()).mean()
        return flow + self.options["event_weight"] * events, {"flow": flow.item(), "events": events.item()}

    def evaluate(self, modules):
        """Flow loss on 4 fixed clips of the first training format at fixed t and noise: with video, and with
        the null video (the gap is what the video features are worth), without text; over all steps and over
        the steps at the sync events' onsets alone ("onsets": what the sync judge hears)."""
        from avgen.world.dataset import WorldDataset

        device = next(modules["audio_transformer"].parameters()).device
        if self.eval_batch is None:
            stream = WorldDataset(seed=EVAL_SEED, resolution=self.options["resolution"], formats=[tuple(self.options["formats"][0])],
                                  sample_rate=self.audio_vae.config.sample_rate)
            rng = stream.rng()
            items = [stream.sample(rng) for _ in range(4)]
            batch = self.to_device(self.collate(items), device)
            batch["text"] = [""] * 4
            batch["onset_mask"] = torch.stack([self.onset_step_weights(item, 1.0) - 1 for item in items]).clamp(0, 1).to(device)  # (B, T)
            x1 = self.latents(batch["audio"])
            noise = torch.randn(x1.shape, generator=torch.Generator().manual_seed(0)).to(device)
            self.eval_batch = (batch, x1, noise)
        batch, x1, noise = self.eval_batch
        known = torch.zeros(len(x1), 1, x1.shape[-1], device=device)
        results = {}
        for name, dropped in (("loss", False), ("loss_null_video", True)):
            losses, onsets = [], []
            for t in (0.1, 0.3, 0.5, 0.7, 0.9):
                times = torch.full((len(x1),), t, device=device)
                drop = torch.full((len(x1),), dropped, device=device)
                error = self.velocity_error(modules, batch, x1, times, noise, known, drop)[0]  # one forward for both means
                losses.append(self.masked_mean(error, known).mean().item())
                onsets.append(self.masked_mean(error, known, batch["onset_mask"]).mean().item())
            results[name] = float(np.mean(losses))
            results[name.replace("loss", "loss_onsets")] = float(np.mean(onsets))
        return results


class CaptionStream(SampledStream):
    """World captions of the training phrasing (never a held-out pair) with the attributes each one names:
    {"text": str, "labels": (len(TextEncoderTask.ATTRIBUTES),) class indices}. Text only: no rendering."""

    def __init__(self, seed: int, rank: int, world_size: int, fps_tag_prob: float, split: str = "train"):
        super().__init__()
        self.seed, self.rank, self.fps_tag_prob, self.split = seed, rank, fps_tag_prob, split

    def sample(self, rng: np.random.Generator) -> dict:
        from avgen.world.captions import caption
        from avgen.world.spec import sample_spec

        spec = sample_spec(rng, held_out=False)
        fps_tag = bool(rng.random() < self.fps_tag_prob)
        return {"text": caption(spec, rng, self.split, fps_tag), "labels": TextEncoderTask.attribute_labels(spec, fps_tag)}


class TextEncoderTask(Task):
    """The text encoder alone, before (and frozen during) the transformers' training, as Movie Gen's are.

    Why: trained only through the video model's flow loss, the tiny T5 collapsed (96 % of every token's energy
    along one shared direction, pooled states of different captions at cosine 0.995; benchmarks/bench_text_path.py),
    so one word moved the video velocity by ~0.5 %. Two objectives on world captions keep every word visible:
    - attributes: from the masked mean of the token states, linear heads name each attribute the caption states
      (subject, colour, motion, direction, speed, background, weather, music, camera, second subject, fps tag).
      The world's ground truth is the label; this is a captioning objective run backwards (text -> attributes),
      which forces the pooled state to separate every value the video model must render.
    - masked tokens (`mlm_weight`): `mask_prob` of the tokens are replaced by <unk> (never produced by the
      byte-level BPE) and predicted from the other tokens' states, so the token states keep word identity and
      context (not only what the attribute heads ask for).
    The heads are training-only; `final/text_encoder` is a plain transformers T5EncoderModel.
    """

    DEFAULTS = dict(mlm_weight=1.0, mask_prob=0.25, fps_tag_prob=0.25, max_text_length=256, eval_captions=256)
    ATTRIBUTES = {
        "subject": ("ball", "car", "person"),
        "color": ("red", "orange", "yellow", "green", "blue", "purple", "white"),
        "motion": ("bouncing", "rolling", "driving", "walking"),
        "direction": ("left", "right"),
        "speed": ("none", "slow", "fast"),
        "background": ("grassy field", "beach", "desert", "night", "city intersection"),
        "weather": ("clear", "rain", "thunderstorm", "waterfall"),
        "music": ("none", "calm piano", "upbeat"),
        "camera": ("static", "pan left", "pan right", "zoom in", "tracking"),
        "second": ("none", "ball", "car", "person"),
        "fps": ("none", "8", "12", "16", "24"),
    }
    MASK_TOKEN = "<unk>"

    def __init__(self, config):
        super().__init__(config)
        from avgen.models.text_encoder import load_tokenizer

        self.tokenizer = load_tokenizer(config.preset)
        self.mask_id = self.tokenizer.convert_tokens_to_ids(self.MASK_TOKEN)
        if self.mask_id is None:
            raise ValueError(f"the preset's tokenizer has no {self.MASK_TOKEN} token to mask with")
        if not 0 < self.options["mask_prob"] < 1:
            raise ValueError(f"mask_prob must be in (0, 1); got {self.options['mask_prob']}")
        self.eval_sets = None

    @classmethod
    def attribute_labels(cls, spec, fps_tag: bool) -> torch.Tensor:
        """(len(ATTRIBUTES),) long: the index of each attribute's value in ATTRIBUTES (\"none\" where absent)."""
        values = {"subject": spec.subject.kind, "color": spec.subject.color, "motion": spec.subject.motion,
                  "direction": spec.subject.direction, "speed": spec.subject.speed or "none", "background": spec.background,
                  "weather": spec.weather, "music": spec.music, "camera": spec.camera,
                  "second": spec.second.kind if spec.second is not None else "none",
                  "fps": str(spec.fps) if fps_tag else "none"}
        return torch.tensor([cls.ATTRIBUTES[name].index(values[name]) for name in cls.ATTRIBUTES])

    def build(self):
        from transformers import T5Config

        from avgen.models.text_encoder import build_text_encoder

        text_encoder = build_text_encoder(T5Config.from_pretrained(Path(self.config.preset) / "text_encoder"))
        check_vocabulary(self.tokenizer, text_encoder)
        width = text_encoder.config.d_model
        heads = torch.nn.ModuleDict({name: torch.nn.Linear(width, len(values)) for name, values in self.ATTRIBUTES.items()})
        return {"text_encoder": text_encoder, "attribute_heads": heads,
                "token_head": torch.nn.Linear(width, text_encoder.config.vocab_size)}

    def dataset(self, seed, rank, world_size):
        return CaptionStream(seed, rank, world_size, self.options["fps_tag_prob"])

    def collate(self, items):
        tokens = self.tokenizer([item["text"] for item in items], padding="longest", truncation=True,
                                max_length=self.options["max_text_length"], return_tensors="pt")
        return {"input_ids": tokens.input_ids, "attention_mask": tokens.attention_mask,  # (B, L)
                "labels": torch.stack([item["labels"] for item in items])}  # (B, A)

    def attribute_logits(self, modules, states, attention_mask) -> dict[str, torch.Tensor]:
        """Each attribute head on the masked mean of the token states (B, L, D)."""
        from avgen.models.transformer_video import masked_mean

        pooled = masked_mean(states.float(), attention_mask)  # (B, D)
        return {name: head(pooled) for name, head in modules["attribute_heads"].items()}  # name -> (B, classes)

    def masked_tokens(self, modules, input_ids, attention_mask, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, vocab) at the N masked positions and their true ids (N,). EOS and padding are never masked."""
        maskable = attention_mask.bool() & (input_ids != self.tokenizer.eos_token_id)
        chosen = maskable & (torch.rand(input_ids.shape, generator=generator).to(input_ids.device) < self.options["mask_prob"])
        corrupted = input_ids.masked_fill(chosen, self.mask_id)
        states = modules["text_encoder"](input_ids=corrupted, attention_mask=attention_mask).last_hidden_state  # (B, L, D)
        return modules["token_head"](states[chosen].float()), input_ids[chosen]

    def token_states(self, modules, batch) -> torch.Tensor:
        return modules["text_encoder"](input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state  # (B, L, D)

    def loss(self, modules, batch, step):
        logits = self.attribute_logits(modules, self.token_states(modules, batch), batch["attention_mask"])
        attributes = torch.stack([F.cross_entropy(logits[name], batch["labels"][:, i]) for i, name in enumerate(self.ATTRIBUTES)]).mean()
        token_logits, token_ids = self.masked_tokens(modules, batch["input_ids"], batch["attention_mask"])
        tokens = F.cross_entropy(token_logits, token_ids) if len(token_ids) else attributes.new_zeros(())
        return attributes + self.options["mlm_weight"] * tokens, {"attributes": attributes.item(), "tokens": tokens.item()}

    def evaluate(self, modules):
        """On `eval_captions` fixed captions of the training phrasing and as many of the held-out phrasing (seed
        outside training): attribute accuracy (mean over attributes), masked-token accuracy, and the collapse
        figures of avgen.models.text_encoder.text_state_statistics."""
        from avgen.models.text_encoder import text_state_statistics

        device = next(modules["text_encoder"].parameters()).device
        if self.eval_sets is None:
            count = self.options["eval_captions"]
            self.eval_sets = {}
            for split in ("train", "heldout"):
                stream = CaptionStream(EVAL_SEED, 0, 1, self.options["fps_tag_prob"], split=split)
                rng = np.random.default_rng(EVAL_SEED)
                self.eval_sets[split] = self.to_device(self.collate([stream.sample(rng) for _ in range(count)]), device)
        results, states = {}, {}
        for split, batch in self.eval_sets.items():
            states[split] = self.token_states(modules, batch)
            logits = self.attribute_logits(modules, states[split], batch["attention_mask"])
            correct = {name: (logits[name].argmax(-1) == batch["labels"][:, i]).float().mean().item() for i, name in enumerate(self.ATTRIBUTES)}
            results[f"attribute_accuracy_{split}"] = float(np.mean(list(correct.values())))
            if split == "heldout":  # per attribute where paraphrases differ most
                results.update({f"heldout/{name}": value for name, value in correct.items()})
        batch = self.eval_sets["train"]
        token_logits, token_ids = self.masked_tokens(modules, batch["input_ids"], batch["attention_mask"], torch.Generator().manual_seed(0))
        results["token_accuracy"] = (token_logits.argmax(-1) == token_ids).float().mean().item()
        results.update(text_state_statistics([states["train"]], [batch["attention_mask"]]))
        return results


class UpsamplerTask(Task):
    """The spatial upsampler, by L1 regression from a world clip rendered at `resolution` to the same clip
    rendered at twice that. The input is degraded like a generated video is (a decoded latent is a little
    blurred and noisy): with probability `degrade_prob` a 3x3 blur and Gaussian noise of std up to
    `noise_std` (in [-1, 1] units)."""

    DEFAULTS = dict(resolution=64, clip_frames=8, clip_seconds=2.0, degrade_prob=0.5, noise_std=0.03)

    def build(self):
        from avgen.models.upsampler import SpatialUpsampler

        return {"upsampler": load_component(self.config.preset, "upsampler", SpatialUpsampler)}

    def dataset(self, seed, rank, world_size):
        return PairedResolutions(seed, rank, world_size, self.options["resolution"], self.options["clip_seconds"])

    def collate(self, items):
        frames = self.options["clip_frames"]
        low, high = [], []
        for item in items:
            start = np.random.randint(0, len(item["low"]) - frames + 1)
            low.append(item["low"][start : start + frames])
            high.append(item["high"][start : start + frames])
        return {"low": torch.stack(low).permute(0, 2, 1, 3, 4), "high": torch.stack(high).permute(0, 2, 1, 3, 4)}  # (B, 3, F, H, W)

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        batch = len(x)
        chosen = (torch.rand(batch, device=x.device) < self.options["degrade_prob"]).float()[:, None, None, None, None]
        kernel = torch.tensor([1.0, 2.0, 1.0], device=x.device)
        kernel = (kernel[:, None] * kernel[None, :] / 16).expand(3, 1, 3, 3)
        flat = x.transpose(1, 2).flatten(0, 1)  # (B * F, 3, H, W)
        blurred = F.conv2d(F.pad(flat, (1, 1, 1, 1), mode="replicate"), kernel, groups=3).unflatten(0, x.shape[:1] + x.shape[2:3]).transpose(1, 2)
        noise = torch.randn_like(x) * self.options["noise_std"] * torch.rand(batch, 1, 1, 1, 1, device=x.device)
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
        stream = PairedResolutions(EVAL_SEED, 0, 1, self.options["resolution"], self.options["clip_seconds"])
        rng, ours, bicubic = stream.rng(), [], []
        for _ in range(8):
            item = stream.sample(rng)
            low = item["low"].permute(1, 0, 2, 3)[None].to(upsampler.device).float() / 127.5 - 1
            high = item["high"].permute(1, 0, 2, 3)[None].to(upsampler.device).float() / 127.5 - 1
            ours.append(psnr(upsampler(low), high))
            flat = F.interpolate(low[0].transpose(0, 1), scale_factor=2, mode="bicubic", align_corners=False)
            bicubic.append(psnr(flat.transpose(0, 1)[None], high))
        return {"psnr": float(np.mean(ours)), "psnr_bicubic": float(np.mean(bicubic))}


class PairedResolutions(SampledStream):
    """World clips rendered at `resolution` and at twice it (same spec otherwise): items "low" (F, 3, R, R)
    and "high" (F, 3, 2R, 2R) uint8. Formats: `seconds` at every world fps."""

    def __init__(self, seed: int, rank: int, world_size: int, resolution: int, seconds: float):
        super().__init__()
        self.seed, self.rank, self.resolution, self.seconds = seed, rank, resolution, seconds

    def sample(self, rng: np.random.Generator) -> dict:
        import dataclasses

        from avgen.world import render_frames, simulate
        from avgen.world.spec import WORLD_FPS, sample_spec

        fps = WORLD_FPS[rng.integers(len(WORLD_FPS))]
        spec = sample_spec(rng, held_out=False, resolution=self.resolution, fps=fps, duration=self.seconds)
        low = render_frames(simulate(spec))
        high = render_frames(simulate(dataclasses.replace(spec, resolution=2 * self.resolution)))
        to_tensor = lambda frames: torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # noqa: E731
        return {"low": to_tensor(low), "high": to_tensor(high)}


TASKS: dict[str, type[Task]] = {
    "vae": VideoAutoencoderTask,
    "audio-vae": AudioAutoencoderTask,
    "t2v": TextToVideoTask,
    "v2a": VideoToAudioTask,
    "upsampler": UpsamplerTask,
    "edit": EditTask,
    "text-encoder": TextEncoderTask,
}


def build_task(config: TrainConfig) -> Task:
    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; choose from {sorted(TASKS)}")
    return TASKS[config.task](config)
