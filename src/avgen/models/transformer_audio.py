"""Movie Gen Audio's transformer: flow-matching velocity on audio latents, conditioned on per-frame video
features (added frame-aligned), text (cross-attention) and flow time (adaLN).

Built from the video transformer's blocks (avgen.models.transformer_video: RMSNorm, bidirectional
self-attention, cross-attention to text, SwiGLU, adaLN-single modulation with adaLN-zero init), on a 1D
sequence: one token per audio latent step.

- Masked-latent conditioning (Movie Gen's masked audio prediction): the input per step is
  [noisy latent x_t (C), known latent * mask (C), mask (1)]. One model generates (mask all 0), extends
  forwards or backwards (mask 1 on the given head or tail) and infills (mask 1 around a gap). Train the
  velocity loss on the unknown steps; at sampling the known steps are given, so their output is unused.
- Video: per-frame features (B, F, D_video) are resampled to the latent rate by taking, for every latent
  step, the frame shown at its centre (AVClock.video_frame_for_audio_step, nearest frame, exact), projected
  to the model width and ADDED to the tokens - at the input of every block, with the positions (as the video
  model adds its positions), so the sync signal does not fade with depth. Concatenating video tokens along
  time would leave the model to learn the alignment; adding puts frame k's feature on exactly the steps
  whose centres fall in frame k.
- Null video: `null_video_features` (learned, D_video) stands in for the video of every frame when
  video_features is None: the unconditional branch of classifier-free guidance on video and the text-only
  baseline. To train it, replace the features of a random share of samples by it (CFG dropout).
- Positions: learned 1D embeddings of `max_positions` steps, relative to the window. Longer audio is made
  with multi-diffusion over windows (avgen.long_form) and `audio_step_offset` tells a window where it
  starts so it gathers the right frames.
- Per-call conditions (issue 47): the projected text, every block's cross-attention keys and values and the
  video of each window (its frames projected, plus the positions) are the same at every sampling step, so a
  pipeline prepares them once per call (`prepare_conditions` -> AudioConditions) and passes them to each step;
  without them the forward prepares its own, with the same operations (the same numbers).
- The latent clock (sample_rate, hop_length) is the audio autoencoder's; it is stored here too because the
  model is only valid on latents of that rate. A pipeline must check that both configs agree.

Conventions (avgen.flow_matching): `timestep` is the flow time t in [0, 1], 0 = noise, 1 = data; the
output is the velocity dx_t/dt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from ..clock import AVClock
from .transformer_video import TextConditions, TransformerBlock, run_blocks


@dataclass
class AudioTransformerOutput(BaseOutput):
    sample: torch.Tensor  # (B, C, T): the predicted velocity


@dataclass(eq=False)
class AudioConditions(TextConditions):
    """TextConditions (the text, B rows = all guidance branches) and the video they go with, as the audio model
    reads them at every sampling step of a call: video_features (B, F, D_video) of the clip's F frames, None =
    the null video; fps int or (B,). Each window's video conditioning (B, T, D: its frames projected, plus the
    positions) is kept in `memo` by the window's length and offset at its first step."""

    video_features: torch.Tensor | None = None
    fps: torch.Tensor | int | None = None


class AudioTransformer(ModelMixin, ConfigMixin):
    """Velocity model of (video, text)-to-audio flow matching on audio-VAE latents.

    Args:
        in_channels: audio latent channels C (the velocity has C channels; the input 2C + 1).
        num_layers, dim, ffn_dim, num_attention_heads: transformer shape (Movie Gen Audio: 36 layers).
        text_dim: width of the text encoder's hidden states, projected to `dim`.
        video_dim: width of the per-frame video features (VideoFeatureEncoder.feature_dim).
        max_positions: the longest window in latent steps (learned positions).
        sample_rate, hop_length: the latent clock, equal to the audio autoencoder's config.
        timestep_embedding_dim: sinusoidal features of t.
        timestep_scale: t in [0, 1] is multiplied by it before the sinusoids (diffusers' models see 0..1000).
        norm_eps: RMSNorm epsilon.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 16,
        num_layers: int = 6,
        dim: int = 192,
        ffn_dim: int = 512,
        num_attention_heads: int = 3,
        text_dim: int = 256,
        video_dim: int = 128,
        max_positions: int = 800,
        sample_rate: int = 16000,
        hop_length: int = 320,
        timestep_embedding_dim: int = 256,
        timestep_scale: float = 1000.0,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        if dim % num_attention_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_attention_heads ({num_attention_heads})")
        self.proj_in = nn.Linear(2 * in_channels + 1, dim)  # [noisy, known * mask, mask] per step
        self.pos_embed = nn.Parameter(torch.randn(max_positions, dim) * 0.02)
        self.video_proj = nn.Linear(video_dim, dim)
        self.null_video_features = nn.Parameter(torch.zeros(video_dim))
        self.text_proj = nn.Linear(text_dim, dim)
        self.time_proj = Timesteps(timestep_embedding_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(timestep_embedding_dim, dim)
        self.modulation = nn.Linear(dim, 6 * dim)  # shared adaLN-single
        self.blocks = nn.ModuleList(TransformerBlock(dim, ffn_dim, num_attention_heads, norm_eps) for _ in range(num_layers))
        self.norm_out = nn.RMSNorm(dim, eps=norm_eps, elementwise_affine=False)
        self.modulation_table_out = nn.Parameter(torch.zeros(2, dim))  # final shift, scale offsets
        self.proj_out = nn.Linear(dim, in_channels)
        self.gradient_checkpointing = False
        # adaLN-zero: no modulation, closed gates and a zero output at initialisation
        for layer in (self.modulation, self.proj_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def video_frame_indices(self, num_steps: int, num_frames: int, fps: int, audio_step_offset: int = 0) -> torch.Tensor:
        """The video frame shown at the centre of each latent step offset .. offset + num_steps - 1, (num_steps,).

        Raises if the steps reach past the audio of a num_frames-frame clip (the features would not cover
        them), rather than silently repeating the last frame.
        """
        clock = AVClock(fps, self.config.sample_rate, audio_hop=self.config.hop_length)
        clip_steps = clock.audio_latent_steps(clock.num_samples(num_frames))
        if audio_step_offset < 0 or audio_step_offset + num_steps > clip_steps:
            raise ValueError(
                f"latent steps {audio_step_offset}..{audio_step_offset + num_steps - 1} are outside the "
                f"{clip_steps} steps of a {num_frames}-frame clip at {fps} fps"
            )
        indices = clock.video_frame_for_audio_step(audio_step_offset + num_steps, num_frames)[audio_step_offset:]
        return torch.from_numpy(indices)

    def align_video_features(self, video_features: torch.Tensor, num_steps: int, fps, audio_step_offset: int = 0) -> torch.Tensor:
        """Per-frame features (B, F, D_video) -> one per latent step (B, num_steps, D_video); fps int or (B,)."""
        batch, num_frames, _ = video_features.shape
        fps = fps.reshape(-1).expand(batch).tolist() if torch.is_tensor(fps) else [fps] * batch
        indices = torch.stack([self.video_frame_indices(num_steps, num_frames, f, audio_step_offset) for f in fps])
        indices = indices.to(video_features.device)[:, :, None].expand(-1, -1, video_features.shape[-1])  # (B, T, D_video)
        return torch.gather(video_features, 1, indices)

    def prepare_conditions(
        self,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
        video_features: torch.Tensor | None = None,
        fps: torch.Tensor | int | None = None,
    ) -> AudioConditions:
        """The text and video as every step's forward reads them, once per pipeline call: encoder_hidden_states
        (B, L, text_dim) and its (B, L) 1/0 mask, video_features (B, F, video_dim) at `fps` (None: null video),
        B = all guidance branches -> AudioConditions (projected text, every block's cross-attention keys and
        values; each window's video at its first step). Pass it as `conditions` to each forward with that batch."""
        return self._conditions(encoder_hidden_states, encoder_attention_mask, video_features, fps, per_call=True)

    def _conditions(self, encoder_hidden_states, encoder_attention_mask, video_features, fps, per_call: bool) -> AudioConditions:
        batch = encoder_hidden_states.shape[0]
        if video_features is not None and (video_features.ndim != 3 or video_features.shape[::2] != (batch, self.config.video_dim)):
            raise ValueError(f"video_features must be (B={batch}, F, {self.config.video_dim}); got {tuple(video_features.shape)}")
        if video_features is not None and fps is None:
            raise ValueError("fps is needed to align video_features with the audio latent steps")
        states = self.text_proj(encoder_hidden_states)  # (B, L, D)
        return AudioConditions.of(self.blocks, states, encoder_attention_mask, per_call, video_features=video_features, fps=fps)

    def video_conditioning(self, conditions: AudioConditions, steps: int, audio_step_offset: int, dtype: torch.dtype) -> torch.Tensor:
        """The video of steps offset .. offset + steps - 1, one frame per step at the step's centre, projected,
        plus the positions: (B, T, D)."""
        if conditions.video_features is None:
            video = self.null_video_features.expand(conditions.batch_size, steps, -1)  # (B, T, D_video)
        else:
            video = self.align_video_features(conditions.video_features, steps, conditions.fps, audio_step_offset)  # (B, T, D_video)
        return self.video_proj(video.to(dtype)) + self.pos_embed[:steps]  # (B, T, D)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None = None,
        video_features: torch.Tensor | None = None,
        fps: torch.Tensor | int | None = None,
        known_latents: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
        audio_step_offset: int = 0,
        return_dict: bool = True,
        conditions: AudioConditions | None = None,
    ) -> AudioTransformerOutput | tuple:
        """hidden_states (B, C, T) noisy latents x_t; timestep (B,) or scalar flow time t; encoder_hidden_states
        (B, L, text_dim); encoder_attention_mask (B, L), 1 = token, 0 = padding; video_features (B, F, video_dim)
        for the clip's F frames at `fps` (int or (B,)), None = null video; known_latents (B, C, T) and
        known_mask (B, 1, T), 1 = given, both or neither (None = generate everything); audio_step_offset: the
        first step's index in the clip (windows of long form). conditions: prepare_conditions(encoder_hidden_states,
        encoder_attention_mask, video_features, fps), made once per sampling call and given to each step (the
        text, video and fps arguments are then not read); None: prepared here from them, the same numbers.
        Returns the velocity (B, C, T)."""
        batch, channels, steps = hidden_states.shape
        if steps > self.config.max_positions:
            raise ValueError(f"{steps} latent steps exceed max_positions {self.config.max_positions}; use avgen.long_form windows")
        if (known_latents is None) != (known_mask is None):
            raise ValueError("pass known_latents and known_mask together (or neither)")
        if known_latents is not None and (known_latents.shape != hidden_states.shape or known_mask.shape != (batch, 1, steps)):
            raise ValueError(
                f"known_latents must be {tuple(hidden_states.shape)} and known_mask {(batch, 1, steps)}; "
                f"got {tuple(known_latents.shape)} and {tuple(known_mask.shape)}"
            )
        if conditions is None:  # per step: the text's projection here, its keys and values in each block
            conditions = self._conditions(encoder_hidden_states, encoder_attention_mask, video_features, fps, per_call=False)
        if conditions.batch_size != batch:
            raise ValueError(f"the text and video are for a batch of {conditions.batch_size}; hidden_states has {batch}")

        # 1. Tokens: [x_t, known * mask, mask] per step -> (B, T, D)
        if known_latents is None:
            known_latents = hidden_states.new_zeros(batch, channels, steps)
            known_mask = hidden_states.new_zeros(batch, 1, steps)
        known_mask = known_mask.to(hidden_states.dtype)
        tokens = torch.cat([hidden_states, known_latents * known_mask, known_mask], dim=1)  # (B, 2C + 1, T)
        hidden_states = self.proj_in(tokens.transpose(1, 2))  # (B, T, D)

        # 2. Video of this window, one frame per step at the step's centre, projected; plus positions -> (B, T, D)
        window, dtype = (steps, audio_step_offset), hidden_states.dtype
        conditioning = conditions.cached((window, dtype), lambda: self.video_conditioning(conditions, *window, dtype))

        # 3. Text (prepared); flow time -> embedding -> shared modulation
        timestep = torch.as_tensor(timestep, device=hidden_states.device, dtype=torch.float32).expand(batch)
        embedding = self.time_embedding(self.time_proj(timestep * self.config.timestep_scale).to(hidden_states.dtype))  # (B, D)
        modulation = self.modulation(F.silu(embedding)).view(batch, 6, self.config.dim)  # (B, 6, D)

        # 4. Blocks, video and positions added to the input of each one
        hidden_states = run_blocks(self, hidden_states, conditioning, conditions, modulation)  # (B, T, D)

        # 5. Modulated output projection -> (B, C, T)
        shift, scale = (self.modulation_table_out + embedding[:, None]).unbind(1)  # each (B, D)
        hidden_states = self.norm_out(hidden_states) * (1 + scale[:, None]) + shift[:, None]
        sample = self.proj_out(hidden_states).transpose(1, 2)  # (B, C, T)
        return AudioTransformerOutput(sample=sample) if return_dict else (sample,)
