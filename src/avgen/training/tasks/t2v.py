"""`avgen train t2v`: the text-to-video transformer and its text encoder."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from avgen import flow_matching
from avgen.models.autoencoder_video import TemporalAutoencoder
from avgen.models.text_encoder import encode_prompt, load_encoder_tokenizer, load_tokenizer
from avgen.models.transformer_video import VideoTransformer
from avgen.training.latent_cache import LatentCacheDataset
from avgen.training.tasks.base import EVAL_SEED, Task, check_text_dim, load_component, preset_text_encoder, pretrained_text_encoder
from avgen.training.weights import load_allowing_optional_keys
from avgen.world import render_clip
from avgen.world.captions import caption
from avgen.world.spec import sample_spec


@dataclasses.dataclass
class TextToVideoOptions:
    vae: str = "runs/vae/final/vae"
    latent_cache: str = ""
    caption_dropout: float = 0.1
    logit_mean: float = 0.0
    logit_std: float = 1.0
    resolution: int = 64
    max_text_length: int = 256
    text_encoder: str = ""
    crop_latent_frames: int = 0
    full_clips_from: int = 0
    train_text_encoder: bool = True
    text_standardization: bool = False
    pooled_text: bool = False
    calibration_captions: int = 512
    image_until: int = 0
    image_frames: int = 8
    joint_images: bool = False


class TextToVideoTask(Task):
    """The video transformer and its text encoder, trained jointly by flow matching on TAE latents.

    Latents come from a latent cache (latent_cache.py; world clips only) or are encoded on the fly by
    the frozen autoencoder (any data, ~1 s per 10 s clip on 2 CPU cores). Each clip gets a freshly drawn
    caption; `caption_dropout` of them are "" (the unconditional branch of classifier-free guidance).

    Curriculum (Movie Gen trains short clips before long ones): before step `full_clips_from`, each batch
    is a random window of `crop_latent_frames` latent frames (0 = no cropping). 16 of 60 latent frames
    cost ~1/4 of the token FLOPs and ~1/14 of the attention, and a world caption still holds for any
    window (subject, colour, background, weather, motion and camera are the same all clip long).

    Images first (Movie Gen's first stage): before step `image_until`, each clip of the batch gives
    `image_frames` single latent frames drawn at random, each a one-frame sample with the clip's caption,
    so a batch of B clips trains B * image_frames images of 16 tokens: subject, colour, background and
    weather are seen at many times the samples per second of clips. With `joint_images`, the steps from
    `image_until` to `full_clips_from` alternate image batches and windows (the second stage).

    Text: `text_encoder` names a pretrained transformers encoder by folder or hub id (e.g. the folder of a
    packaged all-MiniLM-L6-v2, or google/umt5-base; safetensors weights only), which comes with its own
    tokenizer; empty, the text encoder is the preset's (text_encoder/config.json, randomly initialised unless
    --init-from holds one, and the preset's tokenizer). The transformer's text_dim must be the encoder's width.
    `train_text_encoder=false` freezes the text encoder (Movie Gen's are pretrained and frozen): it runs in
    eval mode (no dropout) and gets no gradient.
    `text_standardization` / `pooled_text` build the transformer with those options (VideoTransformer);
    a run that starts with text_standardization measures the text encoder's statistics on
    `calibration_captions` training captions and folds them into text_proj (the function is unchanged).
    """

    Options = TextToVideoOptions
    transformer_name = "transformer"  # the trained transformer's name among the modules

    def __init__(self, config):
        super().__init__(config)
        self.vae = TemporalAutoencoder.from_pretrained(self.options.vae).eval().requires_grad_(False)
        pretrained = self.options.text_encoder
        self.tokenizer = load_encoder_tokenizer(pretrained) if pretrained else load_tokenizer(config.preset)
        self.eval_batches = None

    def build(self):
        transformer = self.with_text_options(load_component(self.config.preset, "transformer", VideoTransformer))
        if self.options.text_encoder:
            text_encoder, source = pretrained_text_encoder(self.options.text_encoder, self.tokenizer), self.options.text_encoder
        else:
            text_encoder, source = preset_text_encoder(self.config.preset, self.tokenizer), f"{self.config.preset}/text_encoder"
        text_encoder.requires_grad_(self.options.train_text_encoder)  # the trainer optimises what requires grad
        check_text_dim(transformer, text_encoder, source)
        return {"transformer": transformer, "text_encoder": text_encoder}

    def with_text_options(self, transformer):
        """`transformer` rebuilt with the text_standardization / pooled_text options turned on, its weights
        kept (the new ones start neutral: VideoTransformer.optional_init_keys)."""
        text_options = {key: True for key in ("text_standardization", "pooled_text") if getattr(self.options, key)}
        if all(transformer.config.get(key, False) for key in text_options):
            return transformer
        config = {key: value for key, value in transformer.config.items() if not key.startswith("_")}
        rebuilt = VideoTransformer(**{**config, **text_options})
        load_allowing_optional_keys(rebuilt, transformer.state_dict(), "the transformer rebuilt with the text options")
        return rebuilt

    def start(self, modules):
        transformer = modules[self.transformer_name]
        if not transformer.config.text_standardization:
            return
        rng = np.random.default_rng(EVAL_SEED + 1)
        texts = [caption(sample_spec(rng, resolution=self.options.resolution), rng, "train")
                 for _ in range(self.options.calibration_captions)]
        device = next(transformer.parameters()).device
        with torch.no_grad():
            batches = (self.encode(modules, texts[i : i + 64], device) for i in range(0, len(texts), 64))
            transformer.calibrate_text(torch.cat([states[mask.bool()] for states, mask in batches]))  # (T, text_dim)

    def to(self, device):
        self.vae.to(device)

    def encode(self, modules, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
        """texts -> the text encoder's states (B, L, text_dim) and mask (B, L). A frozen encoder is put back in eval
        mode first (the trainer sets every module to train mode each step; a pretrained BERT has dropout 0.1) and
        runs without autograd."""
        text_encoder = modules["text_encoder"]
        if self.options.train_text_encoder:
            return encode_prompt(self.tokenizer, text_encoder, texts, self.options.max_text_length, device)
        text_encoder.eval()
        with torch.no_grad():
            return encode_prompt(self.tokenizer, text_encoder, texts, self.options.max_text_length, device)

    def dataset(self, seed, rank, world_size):
        if self.options.latent_cache:
            return LatentCacheDataset(self.options.latent_cache, seed, rank, world_size)
        return self.world_or_folder(seed, rank, world_size, resolution=self.options.resolution, include_audio=False)

    @staticmethod
    def shape_key(item):
        return tuple(item["latents" if "latents" in item else "frames"].shape)

    def collate(self, items):
        texts = ["" if np.random.random() < self.options.caption_dropout else item["text"] for item in items]
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
        frames = self.options.crop_latent_frames
        if frames <= 0 or x1.shape[2] <= frames or step >= self.options.full_clips_from:
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

    def flow_loss(self, modules, x1, texts, fps, t, noise, frame_offset: int = 0) -> torch.Tensor:
        """The flow-matching loss per sample (B,)."""
        text_states, text_mask = self.encode(modules, texts, x1.device)
        x_t = flow_matching.interpolate(noise, x1, t)
        velocity = modules["transformer"](x_t, text_states, t, fps, text_mask, frame_offset=frame_offset).sample
        return flow_matching.loss(velocity, noise, x1)

    def image_step(self, step: int) -> bool:
        if step < self.options.image_until:
            return True
        return self.options.joint_images and step < self.options.full_clips_from and step % 2 == 0

    def image_loss(self, modules, x1, texts, fps) -> torch.Tensor:
        """x1 (B, C, F', H', W') -> the flow loss (B * k,) of k = image_frames random single latent frames
        per clip, each at frame position 0 with its clip's caption: (B * k, C, 1, H', W')."""
        k = min(self.options.image_frames, x1.shape[2])
        picks = torch.stack([torch.randperm(x1.shape[2])[:k] for _ in range(len(x1))]).to(x1.device)  # (B, k)
        images = x1.transpose(1, 2)[torch.arange(len(x1), device=x1.device)[:, None], picks]  # (B, k, C, H', W')
        images = images.flatten(0, 1)[:, :, None]  # (B * k, C, 1, H', W')
        # the text encoder runs once per clip, its states repeated for the clip's frames
        text_states, text_mask = self.encode(modules, texts, x1.device)
        t = flow_matching.sample_flow_time(len(images), self.options.logit_mean, self.options.logit_std, device=x1.device)
        noise = torch.randn_like(images)
        x_t = flow_matching.interpolate(noise, images, t)
        velocity = modules["transformer"](x_t, text_states.repeat_interleave(k, 0), t, fps.repeat_interleave(k, 0),
                                          text_mask.repeat_interleave(k, 0)).sample
        return flow_matching.loss(velocity, noise, images)

    def loss(self, modules, batch, step):
        if self.image_step(step):
            return self.image_loss(modules, self.latents(batch), batch["text"], batch["fps"]).mean(), {"image": 1.0}
        x1, start = self.crop(self.latents(batch), step)
        t = flow_matching.sample_flow_time(len(x1), self.options.logit_mean, self.options.logit_std, device=x1.device)
        loss = self.flow_loss(modules, x1, batch["text"], batch["fps"], t, torch.randn_like(x1), start).mean()
        return loss, {}

    def evaluate(self, modules):
        """Flow loss on 8 fixed clips (both formats) at fixed t and noise, with their captions and without."""
        device = next(modules["transformer"].parameters()).device
        if self.eval_batches is None:
            rng, self.eval_batches = np.random.default_rng(EVAL_SEED), []
            for duration, fps in ((10.0, 24), (16.0, 16)):
                specs = [sample_spec(rng, resolution=self.options.resolution, fps=fps, duration=duration) for _ in range(4)]
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
                    losses.append(self.flow_loss(modules, x1, texts if use_text else [""] * len(x1), fps.to(device), times, noise).mean().item())
            results[name] = float(np.mean(losses))
        return results
