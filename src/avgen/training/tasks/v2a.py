"""`avgen train v2a`: the sound models (audio transformer, per-frame video encoder, audio text encoder)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch
import torch.nn.functional as F

from avgen import flow_matching
from avgen.clock import AVClock
from avgen.models.autoencoder_audio import AudioAutoencoder
from avgen.models.text_encoder import encode_prompt, load_tokenizer
from avgen.models.transformer_audio import AudioTransformer
from avgen.models.video_features import VideoFeatureEncoder
from avgen.training.tasks.base import EVAL_SEED, Task, load_component, preset_text_encoder
from avgen.world.dataset import WorldDataset
from avgen.world.simulate import ground_truth, simulate
from avgen.world.spec import ClipSpec


@dataclasses.dataclass
class VideoToAudioOptions:
    audio_vae: str = "runs/audio-vae/final/audio_vae"
    formats: list[list[float]] = dataclasses.field(default_factory=lambda: [[5, 24], [5, 16], [5, 12], [5, 8]])
    caption_dropout: float = 0.3
    video_dropout: float = 0.1
    mask_prob: float = 0.25
    event_weight: float = 0.1
    onset_weight: float = 0.0
    logit_mean: float = 0.0
    logit_std: float = 1.0
    resolution: int = 64
    max_text_length: int = 256


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
      (onset_step_weights; 0 = a plain mean over steps). One stage of the shipped recipe ran with 4
      (pipelines/tiny/train.sh stage 12); a control without it did as well (docs/experiments.md, 2026-12-04).

    The model works in windows of its `max_positions` latent steps (positions are relative to the window;
    longer clips are sampled by multi-diffusion over overlapping windows, avgen.long_form), so it trains on
    clips one window long (`formats`, default 5 s = 250 steps at 50 Hz, at every world fps): a 10 s clip
    would cost twice the render and four times the attention for the same lesson.
    """

    Options = VideoToAudioOptions
    EVENT_KINDS = ("contact", "footstep", "flash")
    ONSET_STEPS = (-1, 3)  # latent steps (20 ms at 50 Hz) before / after an event's onset that onset_weight weighs

    def __init__(self, config):
        super().__init__(config)
        self.audio_vae = AudioAutoencoder.from_pretrained(self.options.audio_vae).eval().requires_grad_(False)
        self.tokenizer = load_tokenizer(config.preset)
        self.eval_batch = None

    def build(self):
        transformer = load_component(self.config.preset, "audio_transformer", AudioTransformer)
        video_encoder = load_component(self.config.preset, "video_encoder", VideoFeatureEncoder)
        text_encoder = preset_text_encoder(self.config.preset, self.tokenizer)
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
        formats = [tuple(f) for f in self.options.formats]
        return self.world_or_folder(seed, rank, world_size, resolution=self.options.resolution, formats=formats,
                                    sample_rate=self.audio_vae.config.sample_rate)

    @staticmethod
    def shape_key(item):
        return tuple(item["frames"].shape) + tuple(item["audio"].shape)

    @classmethod
    def sync_events(cls, item) -> list[tuple[int, float]]:
        """(EVENT_KINDS index, time in seconds) of each visual sync event of a world item; [] for a user's clip."""
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
        extra = self.options.onset_weight if extra is None else extra
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
            "text": ["" if np.random.random() < self.options.caption_dropout else item["text"] for item in items],
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
        video = batch["frames"].float() / 127.5 - 1  # (B, 3, F, H, W)
        features = modules["video_encoder"](video)  # (B, F, D)
        drop = video_dropout.to(features.dtype)[:, None, None]
        null = modules["audio_transformer"].null_video_features.to(features.dtype)
        conditioning = features * (1 - drop) + null * drop  # dropped samples see the null video on every frame
        text_states, text_mask = encode_prompt(self.tokenizer, modules["audio_text_encoder"], batch["text"],
                                               self.options.max_text_length, x1.device)
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
        x1 = self.latents(batch["audio"])
        batch_size, _, steps = x1.shape
        t = flow_matching.sample_flow_time(batch_size, self.options.logit_mean, self.options.logit_std, device=x1.device)
        known = self.known_mask(batch_size, steps, self.options.mask_prob).to(x1.device)
        video_dropout = (torch.rand(batch_size) < self.options.video_dropout).to(x1.device)
        weights = batch["step_weights"] if self.options.onset_weight else None
        flow, features = self.flow_loss(modules, batch, x1, t, torch.randn_like(x1), known, video_dropout, weights)
        flow = flow.mean()
        logits = modules["event_head"](features.float())  # (B, F, K)
        events = F.binary_cross_entropy_with_logits(logits, batch["events"], pos_weight=torch.tensor(10.0, device=x1.device),
                                                    reduction="none").mean(dim=(1, 2))
        events = (events * batch["has_events"].float()).mean()
        return flow + self.options.event_weight * events, {"flow": flow.item(), "events": events.item()}

    def evaluate(self, modules):
        """Flow loss on 4 fixed clips of the first training format at fixed t and noise: with video, and with
        the null video (the gap is what the video features are worth), without text; over all steps and over
        the steps at the sync events' onsets alone ("onsets": what the sync judge hears)."""
        device = next(modules["audio_transformer"].parameters()).device
        if self.eval_batch is None:
            stream = WorldDataset(seed=EVAL_SEED, resolution=self.options.resolution, formats=[tuple(self.options.formats[0])],
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
