"""`avgen train edit`: instruction editing (Movie Gen Edit), from the text-to-video model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from transformers import T5EncoderModel

from avgen import flow_matching
from avgen.models.text_encoder import encode_prompt
from avgen.models.transformer_video import VideoTransformer
from avgen.training.latent_cache import LatentCacheDataset, _encode
from avgen.training.tasks.base import EVAL_SEED
from avgen.training.tasks.streams import MixedStreams
from avgen.training.tasks.t2v import TextToVideoOptions, TextToVideoTask
from avgen.world.edits import sample_edit_pair


def edit_transformer_from(transformer):
    """Movie Gen Edit's initialisation: the text-to-video transformer with `in_channels` doubled, the new
    input weights (for the source video's latents, concatenated on the channel axis) zero, so at step 0
    the edit model is exactly the text-to-video model."""
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


@dataclasses.dataclass
class EditOptions(TextToVideoOptions):
    init: str = "weights/tiny"
    edit_cache: str = ""
    t2v_mix: float = 0.25
    source_dropout: float = 0.1


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

    Options = EditOptions
    transformer_name = "edit_transformer"

    def build(self):
        init = Path(self.options.init)
        transformer = VideoTransformer.from_pretrained(init / "transformer", torch_dtype=torch.float32)
        if not is_edit_transformer(transformer.config):  # an edit pipeline's own transformer is continued as it is
            transformer = edit_transformer_from(transformer)
        text_encoder = T5EncoderModel.from_pretrained(init / "text_encoder", torch_dtype=torch.float32)
        text_encoder.requires_grad_(self.options.train_text_encoder)
        return {"edit_transformer": self.with_text_options(transformer), "text_encoder": text_encoder}

    def dataset(self, seed, rank, world_size):
        if not self.options.edit_cache or not self.options.latent_cache:
            raise ValueError("the edit task needs the options edit_cache and latent_cache (see avgen cache-latents)")
        edits = LatentCacheDataset(self.options.edit_cache, seed, rank, world_size)
        clips = LatentCacheDataset(self.options.latent_cache, seed + 1, rank, world_size)
        return MixedStreams(edits, clips, self.options.t2v_mix, seed)

    def collate(self, items):
        batch = super().collate(items)  # latents, fps, text with caption dropout
        batch["source"] = torch.stack([item.get("source", torch.zeros_like(item["latents"])) for item in items])
        keep = torch.rand(len(items)) >= self.options.source_dropout
        batch["source"] = batch["source"] * keep[:, None, None, None, None]
        return batch

    def flow_loss(self, modules, x1, texts, fps, t, noise, source=None, frame_offset: int = 0) -> torch.Tensor:
        """The flow-matching loss per sample (B,) of the edit transformer given `source` (zeros: none)."""
        text_states, text_mask = encode_prompt(self.tokenizer, modules["text_encoder"], texts, self.options.max_text_length, x1.device)
        x_t = flow_matching.interpolate(noise, x1, t)
        source = torch.zeros_like(x1) if source is None else source
        velocity = modules["edit_transformer"](torch.cat([x_t, source], dim=1), text_states, t, fps, text_mask,
                                               frame_offset=frame_offset).sample
        return flow_matching.loss(velocity, noise, x1)

    def loss(self, modules, batch, step):
        scale = self.vae.config.scaling_factor
        # the t2v curriculum's window, the source cut to the same frames: an edit step costs a t2v step
        x1, start = self.crop(batch["latents"] * scale, step)  # (B, C, F', H', W')
        source = batch["source"][:, :, start : start + x1.shape[2]] * scale  # (B, C, F', H', W')
        t = flow_matching.sample_flow_time(len(x1), self.options.logit_mean, self.options.logit_std, device=x1.device)
        return self.flow_loss(modules, x1, batch["text"], batch["fps"], t, torch.randn_like(x1), source, start).mean(), {}

    def evaluate(self, modules):
        """Flow loss on 4 fixed train-phrasing edit pairs (10 s at 24 fps) at fixed t and noise: with the
        source video, and without it (the gap is what the model takes from the source)."""
        device = next(modules["edit_transformer"].parameters()).device
        if self.eval_batches is None:
            rng = np.random.default_rng(EVAL_SEED)
            pairs = [sample_edit_pair(rng, resolution=self.options.resolution, fps=24, duration=10.0) for _ in range(4)]
            scale = self.vae.config.scaling_factor
            x1 = _encode(self.vae, [p.target for p in pairs], 4).to(device) * scale
            source = _encode(self.vae, [p.source for p in pairs], 4).to(device) * scale
            noise = torch.randn(x1.shape, generator=torch.Generator().manual_seed(0)).to(device)
            self.eval_batches = (x1, source, noise, [p.instruction for p in pairs], torch.full((4,), 24, device=device))
        x1, source, noise, texts, fps = self.eval_batches
        results = {}
        for name, given in (("loss", source), ("loss_no_source", torch.zeros_like(source))):
            losses = [self.flow_loss(modules, x1, texts, fps, torch.full((len(x1),), t, device=device), noise, given).mean().item()
                      for t in (0.1, 0.3, 0.5, 0.7, 0.9)]
            results[name] = float(np.mean(losses))
        return results
