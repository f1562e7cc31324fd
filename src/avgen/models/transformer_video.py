"""Movie Gen Video's transformer: flow-matching velocity on TAE latents, conditioned on text, flow time and fps.

One class builds every size, from the unit-test model to the paper's 1B and 30B (pipelines/*/transformer):
- patchify: Conv3d with kernel = stride = patch_size (Movie Gen 1x2x2), unpatchify: a linear to the patch;
- factorized learnable positions: E_t[f] + E_h[h] + E_w[w], added to the input of EVERY block (Movie Gen
  reports this reduces morphing over time);
- LLaMA-3 blocks: RMSNorm, bidirectional self-attention, cross-attention to the projected text, SwiGLU MLP,
  no biases;
- flow time t (and fps, added to it) enter through adaLN-zero modulation of the self-attention and MLP.
  The modulation is SHARED across blocks (PixArt-alpha's adaLN-single): one linear maps the embedding to
  6 * dim, and each block adds its own learned (6, dim) table. A per-block dim -> 6 * dim linear (DiT)
  would add 6 * dim^2 per block: 40B parameters at the 30B shape instead of 29B.
- optional (session 11, see the Args): text states standardized per feature with the text encoder's fixed
  statistics before the projection, and the pooled text added to the time embedding (SD3's pooled path).
The shared modulation (hence every gate) and the output projection start at zero (DiT's adaLN-zero): a
fresh model predicts velocity 0 and its self-attention and MLP branches start closed; the cross-attention
is not modulated (PixArt-alpha), so it is open from the start.

Sizes (details in pipelines/README.md): tiny 4.03M parameters, 10.8 MFLOP per token forward at 960 tokens,
250 GFLOP per training step of 8 ten-second clips (0.92 s in bf16 on 2 CPU cores); 1B shape 0.933B
parameters; 30B shape 29.3B.

Conventions (avgen.flow_matching): `timestep` is the flow time t in [0, 1], 0 = noise, 1 = data; the
output is the velocity dx_t/dt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn


@dataclass
class VideoTransformerOutput(BaseOutput):
    sample: torch.Tensor  # (B, out_channels, F, H, W): the predicted velocity


def flops_per_token(config: Mapping, num_tokens: int, num_text_tokens: int) -> float:
    """Forward FLOPs per video token (2 per multiply-add; attention included; norms and activations not).

    num_tokens: video tokens per sample (F' * H' * W' / prod(patch_size)); num_text_tokens: L.
    Per-text-token and per-sample work (text projection, cross-attention keys/values, time embedding)
    is spread over the video tokens. A training step costs about 3x this (backward = 2x forward).
    """
    dim, ffn, layers, text = config["dim"], config["ffn_dim"], config["num_layers"], num_text_tokens / num_tokens
    patch = config["patch_size"][0] * config["patch_size"][1] * config["patch_size"][2]
    freq = config["timestep_embedding_dim"]
    per_block = (
        2 * 4 * dim * dim  # self-attention query, key, value, out
        + 2 * 2 * num_tokens * dim  # self-attention scores and weighted sum
        + 2 * 2 * dim * dim  # cross-attention query, out
        + 2 * 2 * dim * dim * text  # cross-attention key, value (per text token)
        + 2 * 2 * num_text_tokens * dim  # cross-attention scores and weighted sum
        + 2 * 3 * dim * ffn  # SwiGLU gate, up, down
    )
    embed = 2 * patch * (config["in_channels"] + config["out_channels"]) * dim  # patchify + unpatchify
    text_projection = 2 * config["text_dim"] * dim * text
    per_sample = 2 * 2 * (freq * dim + dim * dim) + 2 * dim * 6 * dim  # time + fps MLPs, shared modulation
    return layers * per_block + embed + text_projection + per_sample / num_tokens


class Attention(nn.Module):
    """Multi-head attention of `hidden_states` (B, N, D) to `context` (B, M, D) (itself for self-attention)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(
        self, hidden_states: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, length, dim = hidden_states.shape
        heads = (batch, -1, self.num_heads, dim // self.num_heads)  # split D into heads, then move heads forward
        query = self.query(hidden_states).view(heads).transpose(1, 2)  # (B, heads, N, d)
        key = self.key(context).view(heads).transpose(1, 2)  # (B, heads, M, d)
        value = self.value(context).view(heads).transpose(1, 2)  # (B, heads, M, d)
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)  # (B, heads, N, d)
        return self.out(attended.transpose(1, 2).reshape(batch, length, dim))


class FeedForward(nn.Module):
    """SwiGLU MLP: down(silu(gate(x)) * up(x))."""

    def __init__(self, dim: int, ffn_dim: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, ffn_dim, bias=False)
        self.up_proj = nn.Linear(dim, ffn_dim, bias=False)
        self.down_proj = nn.Linear(ffn_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def masked_mean(states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, L, D) states, (B, L) mask of 1 = token (None: all) -> (B, D) mean over the tokens."""
    if mask is None:
        return states.mean(1)
    weights = mask.to(states.dtype)[..., None]  # (B, L, 1)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1)


def text_attention_mask(encoder_attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, L) with 1 = token, 0 = padding -> the (B, 1, 1, L) boolean mask of the cross-attention."""
    if encoder_attention_mask is None:
        return None
    mask = encoder_attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L), True = attend
    if not mask.any(dim=-1).all():
        raise ValueError("every sample needs at least one unmasked text token (an empty prompt still has EOS)")
    return mask


class TransformerBlock(nn.Module):
    """Modulated self-attention, then cross-attention to the text, then the modulated MLP."""

    def __init__(self, dim: int, ffn_dim: int, num_heads: int, norm_eps: float):
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, eps=norm_eps, elementwise_affine=False)  # scale comes from adaLN
        self.self_attention = Attention(dim, num_heads)
        self.norm2 = nn.RMSNorm(dim, eps=norm_eps)
        self.cross_attention = Attention(dim, num_heads)
        self.norm3 = nn.RMSNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.feed_forward = FeedForward(dim, ffn_dim)
        self.modulation_table = nn.Parameter(torch.zeros(6, dim))  # this block's offset to the shared modulation

    def forward(self, hidden_states, encoder_hidden_states, modulation, encoder_attention_mask):
        # hidden_states (B, N, D), encoder_hidden_states (B, L, D), modulation (B, 6, D), mask (B, 1, 1, L)
        shift_attention, scale_attention, gate_attention, shift_mlp, scale_mlp, gate_mlp = (
            modulation + self.modulation_table
        )[:, :, None].unbind(1)  # each (B, 1, D)
        normed = self.norm1(hidden_states) * (1 + scale_attention) + shift_attention
        hidden_states = hidden_states + gate_attention * self.self_attention(normed, normed)
        normed = self.norm2(hidden_states)
        hidden_states = hidden_states + self.cross_attention(normed, encoder_hidden_states, encoder_attention_mask)
        normed = self.norm3(hidden_states) * (1 + scale_mlp) + shift_mlp
        return hidden_states + gate_mlp * self.feed_forward(normed)  # (B, N, D)


class VideoTransformer(ModelMixin, ConfigMixin):
    """Velocity model of text-to-video flow matching on TAE latents.

    Args:
        in_channels: latent channels in (2x for the editing model: source-video latents concatenated).
        out_channels: velocity channels out (defaults to in_channels).
        num_layers, dim, ffn_dim, num_attention_heads: transformer shape (Movie Gen 1B: 24, 1536, 4096, 16).
        text_dim: width of the text encoder's hidden states, projected to `dim`.
        patch_size: (frames, height, width) of one token in latent units (Movie Gen: 1x2x2).
        pos_embed_size: (frames, height, width) in tokens covered by the learned positions; the longest
            clip and largest frame the model can take.
        timestep_embedding_dim: sinusoidal features of t and of fps.
        timestep_scale: t in [0, 1] is multiplied by it before the sinusoids, so their frequencies resolve
            small changes of t (diffusers' models see 0..1000).
        norm_eps: RMSNorm epsilon.
        text_standardization: standardize each feature of the text states with fixed statistics of the
            text encoder (buffers `text_mean`, `text_scale`, set by `calibrate_text`) before `text_proj`.
            Why: the tiny T5 trained jointly with the first tiny transformer puts 96 % of every token's
            energy in one direction shared by all tokens (per-feature std 0.16 around a mean of norm 14.5),
            so all keys of the cross-attention look alike and prompts differing in one word move the
            velocity by under 1 % (benchmarks/bench_text_path.py). Training with it doubled that answer but
            did not raise the judged adherence (weights/tiny/MODEL_CARD.md, "The text path").
        pooled_text: also add the masked mean of the projected text tokens to the flow-time embedding (a
            global path into the adaLN modulation, as SD3's pooled projection), zero-initialised.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 16,
        out_channels: int | None = None,
        num_layers: int = 6,
        dim: int = 192,
        ffn_dim: int = 512,
        num_attention_heads: int = 3,
        text_dim: int = 256,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        pos_embed_size: tuple[int, int, int] = (64, 4, 4),
        timestep_embedding_dim: int = 256,
        timestep_scale: float = 1000.0,
        norm_eps: float = 1e-6,
        text_standardization: bool = False,
        pooled_text: bool = False,
    ):
        super().__init__()
        if out_channels is None:
            self.register_to_config(out_channels=in_channels)
        if dim % num_attention_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_attention_heads ({num_attention_heads})")
        self.patch_embed = nn.Conv3d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.pos_embed_frames = nn.Parameter(torch.randn(pos_embed_size[0], dim) * 0.02)
        self.pos_embed_height = nn.Parameter(torch.randn(pos_embed_size[1], dim) * 0.02)
        self.pos_embed_width = nn.Parameter(torch.randn(pos_embed_size[2], dim) * 0.02)
        self.text_proj = nn.Linear(text_dim, dim)
        if text_standardization:  # identity until calibrate_text
            self.register_buffer("text_mean", torch.zeros(text_dim))
            self.register_buffer("text_scale", torch.ones(text_dim))
        self.pooled_text_proj = nn.Linear(dim, dim) if pooled_text else None
        self.time_proj = Timesteps(timestep_embedding_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(timestep_embedding_dim, dim)
        self.fps_embedding = TimestepEmbedding(timestep_embedding_dim, dim)
        self.modulation = nn.Linear(dim, 6 * dim)  # shared adaLN-single
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, ffn_dim, num_attention_heads, norm_eps) for _ in range(num_layers)
        )
        self.norm_out = nn.RMSNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.modulation_table_out = nn.Parameter(torch.zeros(2, dim))  # final shift, scale offsets
        self.proj_out = nn.Linear(dim, patch_size[0] * patch_size[1] * patch_size[2] * self.config.out_channels)
        self.gradient_checkpointing = False
        # adaLN-zero: no modulation, closed gates and a zero output at initialisation
        for layer in (self.modulation, self.proj_out, self.pooled_text_proj):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def optional_init_keys(self) -> set[str]:
        """State keys a checkpoint of the same shape without text_standardization / pooled_text lacks. They
        start as the identity (mean 0, scale 1) and a zero projection, so loading such a checkpoint without
        them keeps its function exactly (training.trainer.load_exported_weights)."""
        keys = {"text_mean", "text_scale"} if self.config.text_standardization else set()
        if self.pooled_text_proj is not None:
            keys |= {"pooled_text_proj.weight", "pooled_text_proj.bias"}
        return keys

    @torch.no_grad()
    def calibrate_text(self, tokens: torch.Tensor) -> None:
        """Set the text statistics from (T, text_dim) token states of the text encoder (padding left out)
        and fold the change into text_proj, so the model computes exactly what it did before: only the
        parametrisation of text_proj changes (each input feature now has unit variance, so an optimiser
        step moves the informative features as much as the shared offset)."""
        if not self.config.text_standardization:
            raise ValueError("calibrate_text needs a model built with text_standardization=True")
        tokens = tokens.float()
        mean, scale = tokens.mean(0), 1 / tokens.std(0).clamp_min(1e-4)
        weight = self.text_proj.weight  # (dim, text_dim), applied to (s - text_mean) * text_scale
        # W1 ((s - m1) k1) + b1 == W0 ((s - m0) k0) + b0 for every s
        self.text_proj.bias += weight @ ((mean - self.text_mean) * self.text_scale)
        weight *= (self.text_scale / scale)[None]
        self.text_mean.copy_(mean)
        self.text_scale.copy_(scale)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor | float,
        fps: torch.Tensor | int,
        encoder_attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
        frame_offset: int = 0,
    ) -> VideoTransformerOutput | tuple:
        """hidden_states (B, in_channels, F, H, W) noisy latents x_t; encoder_hidden_states (B, L, text_dim);
        timestep (B,) or scalar flow time t; fps (B,) or int; encoder_attention_mask (B, L), 1 = token,
        0 = padding. frame_offset: the latent frame index of hidden_states' first frame in the whole clip
        (a training window cut from a longer clip keeps its place, so every learned frame position trains).
        Returns the velocity (B, out_channels, F, H, W)."""
        batch, _, frames, height, width = hidden_states.shape
        patch_frames, patch_height, patch_width = self.config.patch_size
        grid = (frames // patch_frames, height // patch_height, width // patch_width)  # tokens along f, h, w
        if frames % patch_frames or height % patch_height or width % patch_width:
            raise ValueError(
                f"latent (F, H, W) = {(frames, height, width)} must be divisible by "
                f"patch_size {tuple(self.config.patch_size)}"
            )
        if any(n > limit for n, limit in zip((grid[0] + frame_offset, *grid[1:]), self.config.pos_embed_size)):
            raise ValueError(f"{grid} tokens (F, H, W) from frame {frame_offset} exceed pos_embed_size "
                             f"{tuple(self.config.pos_embed_size)}")

        # 1. Patchify: (B, C, F, H, W) -> (B, N, D), tokens ordered frame-major then row-major
        hidden_states = self.patch_embed(hidden_states).flatten(2).transpose(1, 2)  # (B, N, D)
        positions = (
            self.pos_embed_frames[frame_offset : frame_offset + grid[0], None, None]
            + self.pos_embed_height[None, : grid[1], None]
            + self.pos_embed_width[None, None, : grid[2]]
        ).reshape(1, -1, self.config.dim)  # (1, N, D)

        # 2. Conditioning: text to the model width; flow time + fps -> one embedding -> shared modulation
        if self.config.text_standardization:
            encoder_hidden_states = (encoder_hidden_states - self.text_mean) * self.text_scale
        encoder_hidden_states = self.text_proj(encoder_hidden_states)  # (B, L, D)
        mask = text_attention_mask(encoder_attention_mask)
        timestep = torch.as_tensor(timestep, device=hidden_states.device, dtype=torch.float32).expand(batch)
        fps = torch.as_tensor(fps, device=hidden_states.device, dtype=torch.float32).expand(batch)
        dtype = hidden_states.dtype
        embedding = self.time_embedding(self.time_proj(timestep * self.config.timestep_scale).to(dtype))  # (B, D)
        embedding = embedding + self.fps_embedding(self.time_proj(fps).to(dtype))  # (B, D)
        if self.pooled_text_proj is not None:
            embedding = embedding + self.pooled_text_proj(masked_mean(encoder_hidden_states, encoder_attention_mask))
        modulation = self.modulation(F.silu(embedding)).view(batch, 6, self.config.dim)  # (B, 6, D)

        # 3. Blocks, the positions added to the input of each one
        for block in self.blocks:
            hidden_states = hidden_states + positions
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(
                    block, hidden_states, encoder_hidden_states, modulation, mask
                )
            else:
                hidden_states = block(hidden_states, encoder_hidden_states, modulation, mask)  # (B, N, D)

        # 4. Modulated output projection, unpatchify: (B, N, p_f * p_h * p_w * C_out) -> (B, C_out, F, H, W)
        shift, scale = (self.modulation_table_out + embedding[:, None]).unbind(1)  # each (B, D)
        hidden_states = self.norm_out(hidden_states) * (1 + scale[:, None]) + shift[:, None]
        hidden_states = self.proj_out(hidden_states)  # (B, N, p_f * p_h * p_w * C_out)
        hidden_states = hidden_states.view(
            batch, *grid, patch_frames, patch_height, patch_width, self.config.out_channels
        )
        sample = hidden_states.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(
            batch, self.config.out_channels, frames, height, width
        )
        return VideoTransformerOutput(sample=sample) if return_dict else (sample,)
