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
- optional (see the Args): text states standardized per feature with the text encoder's fixed
  statistics before the projection, and the pooled text added to the time embedding (SD3's pooled path).
- per-call conditions (issue 47): what depends on the text alone - its projection, the pooled text, the
  cross-attention keys and values of every block - and the positions are the same at every sampling step, so
  a pipeline prepares them once per call (`prepare_conditions` -> TextConditions) and passes them to each
  step's forward; without them the forward prepares its own, with the same operations (the same numbers).
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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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


def flops_per_token(config: Mapping, num_tokens: int, num_text_tokens: int, prepared_text: bool = False) -> float:
    """Forward FLOPs per video token (2 per multiply-add; attention included; norms and activations not).

    num_tokens: video tokens per sample (F' * H' * W' / prod(patch_size)); num_text_tokens: L.
    Per-text-token and per-sample work (text projection, cross-attention keys/values, time embedding)
    is spread over the video tokens. A training step costs about 3x this (backward = 2x forward).
    prepared_text: a forward given `conditions` (the text projection and cross-attention keys/values were
    computed once per call, by prepare_conditions), so they are left out.
    """
    dim, ffn, layers = config["dim"], config["ffn_dim"], config["num_layers"]
    text = 0 if prepared_text else num_text_tokens / num_tokens
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
    """Multi-head attention of `hidden_states` (B, N, D) to `context` (B, M, D) (itself for self-attention), or to
    its precomputed `key_value` (a context that is the same at every call, as the text at every sampling step)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(dim, dim, bias=False)
        self.key = nn.Linear(dim, dim, bias=False)
        self.value = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def split_heads(self, states: torch.Tensor) -> torch.Tensor:
        """(B, M, D) -> (B, heads, M, d): split D into heads, then move heads forward."""
        batch, _, dim = states.shape
        return states.view(batch, -1, self.num_heads, dim // self.num_heads).transpose(1, 2)

    def key_value(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M, D) context -> its key and value, each (B, heads, M, d)."""
        return self.split_heads(self.key(context)), self.split_heads(self.value(context))

    def forward(
        self,
        hidden_states: torch.Tensor,
        context: torch.Tensor | None,
        mask: torch.Tensor | None = None,
        key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        batch, length, dim = hidden_states.shape
        query = self.split_heads(self.query(hidden_states))  # (B, heads, N, d)
        key, value = self.key_value(context) if key_value is None else key_value  # each (B, heads, M, d)
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


@dataclass(eq=False)
class TextConditions:
    """The text as the blocks read it, the same at every sampling step of a pipeline call: prepared once per call
    (VideoTransformer / AudioTransformer.prepare_conditions) instead of once per step (issue 47). For B rows (all
    guidance branches, as the forward gets them), L text tokens, D = dim, `heads` heads of d = D / heads:

    states: (B, L, D) the projected text; mask: (B, 1, 1, L) boolean, True = attend (None: every token);
    keys_values: per block, its cross-attention's key and value, each (B, heads, L, d); None: each block
    computes its own (the forward given no conditions); pooled: (B, D), the video model's pooled text
    (pooled_text_proj's output), else None. `memo` (filled by `cached`) keeps other per-call constants that
    depend on the step's shapes but not on the step (the positions of a latent grid, the fps embedding, the audio
    model's video of a window).
    """

    states: torch.Tensor
    mask: torch.Tensor | None
    keys_values: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    pooled: torch.Tensor | None = None
    memo: dict = field(default_factory=dict)

    @classmethod
    def of(cls, blocks: nn.ModuleList, states: torch.Tensor, encoder_attention_mask: torch.Tensor | None,
           per_call: bool = True, **extra) -> TextConditions:
        """From the projected (B, L, D) text and its (B, L) 1/0 mask; per_call: also the blocks' keys and values."""
        keys_values = [block.cross_attention.key_value(states) for block in blocks] if per_call else None
        return cls(states, text_attention_mask(encoder_attention_mask), keys_values, **extra)

    @property
    def batch_size(self) -> int:
        return self.states.shape[0]

    def key_value(self, index: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Block `index`'s cross-attention key and value, or None when the block computes them."""
        return None if self.keys_values is None else self.keys_values[index]

    def cached(self, key, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """compute(), once per key for these conditions."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


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

    def forward(self, hidden_states, encoder_hidden_states, modulation, encoder_attention_mask, cross_key_value=None):
        # hidden_states (B, N, D), encoder_hidden_states (B, L, D), modulation (B, 6, D), mask (B, 1, 1, L);
        # cross_key_value: the cross-attention's key and value of encoder_hidden_states, each (B, heads, L, d),
        # when prepared once per call (TextConditions), else None
        shift_attention, scale_attention, gate_attention, shift_mlp, scale_mlp, gate_mlp = (
            modulation + self.modulation_table
        )[:, :, None].unbind(1)  # each (B, 1, D)
        normed = self.norm1(hidden_states) * (1 + scale_attention) + shift_attention
        hidden_states = hidden_states + gate_attention * self.self_attention(normed, normed)
        normed = self.norm2(hidden_states)
        hidden_states = hidden_states + self.cross_attention(
            normed, encoder_hidden_states, encoder_attention_mask, cross_key_value
        )
        normed = self.norm3(hidden_states) * (1 + scale_mlp) + shift_mlp
        return hidden_states + gate_mlp * self.feed_forward(normed)  # (B, N, D)


def run_blocks(model: ModelMixin, hidden_states: torch.Tensor, addend: torch.Tensor, conditions: TextConditions,
               modulation: torch.Tensor) -> torch.Tensor:
    """`model.blocks` in turn on (B, N, D) tokens, `addend` ((1 or B, N, D): the positions, and the audio model's
    video) added to the input of each, cross-attending to the prepared text; checkpointed when training with
    gradient checkpointing on."""
    for index, block in enumerate(model.blocks):
        hidden_states = hidden_states + addend
        inputs = (hidden_states, conditions.states, modulation, conditions.mask, conditions.key_value(index))
        if torch.is_grad_enabled() and model.gradient_checkpointing:
            hidden_states = model._gradient_checkpointing_func(block, *inputs)
        else:
            hidden_states = block(*inputs)  # (B, N, D)
    return hidden_states


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
            did not raise the judged adherence (docs/experiments.md, 2026-12-01).
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

    def prepare_conditions(
        self, encoder_hidden_states: torch.Tensor, encoder_attention_mask: torch.Tensor | None = None
    ) -> TextConditions:
        """The text as every step's forward reads it, once per pipeline call: (B, L, text_dim) states and their
        (B, L) 1/0 mask, B = all guidance branches -> TextConditions (projected text, pooled text, every block's
        cross-attention keys and values). Pass the result as `conditions` to each forward with that batch."""
        return self._text_conditions(encoder_hidden_states, encoder_attention_mask, per_call=True)

    def _text_conditions(self, encoder_hidden_states, encoder_attention_mask, per_call: bool) -> TextConditions:
        if self.config.text_standardization:
            encoder_hidden_states = (encoder_hidden_states - self.text_mean) * self.text_scale
        states = self.text_proj(encoder_hidden_states)  # (B, L, D)
        pooled = None
        if self.pooled_text_proj is not None:
            pooled = self.pooled_text_proj(masked_mean(states, encoder_attention_mask))  # (B, D)
        return TextConditions.of(self.blocks, states, encoder_attention_mask, per_call, pooled=pooled)

    def positions(self, grid: tuple[int, int, int], frame_offset: int = 0) -> torch.Tensor:
        """The learned positions of a (F', H', W') token grid from latent frame `frame_offset`: (1, N, D)."""
        return (
            self.pos_embed_frames[frame_offset : frame_offset + grid[0], None, None]
            + self.pos_embed_height[None, : grid[1], None]
            + self.pos_embed_width[None, None, : grid[2]]
        ).reshape(1, -1, self.config.dim)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None,
        timestep: torch.Tensor | float,
        fps: torch.Tensor | int,
        encoder_attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
        frame_offset: int = 0,
        conditions: TextConditions | None = None,
    ) -> VideoTransformerOutput | tuple:
        """hidden_states (B, in_channels, F, H, W) noisy latents x_t; encoder_hidden_states (B, L, text_dim);
        timestep (B,) or scalar flow time t; fps (B,) or int; encoder_attention_mask (B, L), 1 = token,
        0 = padding. frame_offset: the latent frame index of hidden_states' first frame in the whole clip
        (a training window cut from a longer clip keeps its place, so every learned frame position trains).
        conditions: prepare_conditions(encoder_hidden_states, encoder_attention_mask), made once per sampling
        call and given to each step (the text is not read again; its positions are kept for the next step);
        None: prepared here from encoder_hidden_states, the same numbers.
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

        if conditions is None:  # per step: the text's projection here, its keys and values in each block
            conditions = self._text_conditions(encoder_hidden_states, encoder_attention_mask, per_call=False)
        elif conditions.batch_size != batch:
            raise ValueError(f"conditions were prepared for a batch of {conditions.batch_size}; hidden_states has {batch}")

        # 1. Patchify: (B, C, F, H, W) -> (B, N, D), tokens ordered frame-major then row-major
        hidden_states = self.patch_embed(hidden_states).flatten(2).transpose(1, 2)  # (B, N, D)
        positions = conditions.cached(("positions", grid, frame_offset), lambda: self.positions(grid, frame_offset))  # (1, N, D)

        # 2. Conditioning: the text (prepared); flow time + fps (+ pooled text) -> one embedding -> shared modulation
        timestep = torch.as_tensor(timestep, device=hidden_states.device, dtype=torch.float32).expand(batch)
        dtype = hidden_states.dtype

        def fps_embedding() -> torch.Tensor:  # (B, D)
            rates = torch.as_tensor(fps, device=hidden_states.device, dtype=torch.float32).expand(batch)
            return self.fps_embedding(self.time_proj(rates).to(dtype))

        embedding = self.time_embedding(self.time_proj(timestep * self.config.timestep_scale).to(dtype))  # (B, D)
        # a pipeline's fps is one number for the whole call: its embedding is kept with the conditions
        constant_fps = isinstance(fps, (int, float))
        embedding = embedding + (conditions.cached(("fps", fps, dtype), fps_embedding) if constant_fps else fps_embedding())
        if conditions.pooled is not None:
            embedding = embedding + conditions.pooled
        modulation = self.modulation(F.silu(embedding)).view(batch, 6, self.config.dim)  # (B, 6, D)

        # 3. Blocks, the positions added to the input of each one
        hidden_states = run_blocks(self, hidden_states, positions, conditions, modulation)  # (B, N, D)

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
