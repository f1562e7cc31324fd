"""Movie Gen Audio as a diffusers pipeline: a video (and optionally a text prompt) -> synchronized sound.

Stages, for B videos of F frames at `fps`, N = num_waveforms_per_prompt, S = AVClock(fps, sample_rate)
.num_samples(F) audio samples, T = ceil(S / hop_length) latent steps of C channels, L text tokens:

1. video: a path (any frame rate, constant or variable: its frames mapped onto the clock of the supported fps
   nearest its own, decoded and shrunk frame by frame; S = the file's exact length in samples), uint8
   (F, H, W, 3) / (B, F, H, W, 3), float (B, F, 3, H, W) in [0, 1] or a list of PIL images (video_input.py) ->
   resized to the encoder's frame_size s, in chunks of frames -> video_encoder -> per-frame features
   (B, F, D_video), every frame at the clip's own fps.
2. text: prompt (B strings, "" when there is none) -> tokenizer + text_encoder -> (B * N, L, D_text) and
   mask (B * N, L); with guidance_scale > 1 the negative prompt as well (classifier-free guidance on text).
3. latents: Gaussian noise (B * N, C, T); optional known audio (extension / infilling) -> VAE latents
   (B * N, C, T) and a per-step mask (B * N, 1, T).
4. denoising: FlowMatchEulerDiscreteScheduler over Movie Gen's linear-quadratic sigmas. Each step the audio
   transformer predicts the velocity (B * N, C, T) from the latents, text and features (which it aligns to
   the latent steps itself, through AVClock). Guidance, InstructPix2Pix's form with the video as the image:
       v = v_uncond + video_guidance_scale * (v_video - v_uncond) + guidance_scale * (v_full - v_video)
   where v_uncond has the negative text and the learned null video, v_video the negative text and the video,
   v_full the prompt and the video. video_guidance_scale == 1 leaves the two branches [v_video, v_full].
   When T exceeds the window (max_positions or window_seconds), the window's predictions are blended over
   overlapping windows with triangle weights (avgen.long_form). The text and video of the branches are the same
   at every step: the transformer prepares them (text projection, cross-attention keys and values, each
   window's projected video) once per call (prepare_conditions).
5. audio_vae.decode(latents / scaling_factor) -> audio (B * N, 1, S), clamped to [-1, 1].

Returns AVGenOutput(frames = the input frames, audio (B * N, 1, S), fps, sample_rate, metadata); for a file, the
frames the model saw (its clock's, at the encoder's size s) and that fps: muxer.add_audio puts the sound on the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.schedulers import FlowMatchEulerDiscreteScheduler
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .. import __version__
from ..clock import AVClock
from ..flow_matching import interpolate
from ..long_form import multidiffusion_velocity, plan_windows
from ..models.autoencoder_audio import AudioAutoencoder
from ..models.text_encoder import DEFAULT_MAX_LENGTH
from ..models.text_encoder import encode_prompt as encode_text
from ..models.transformer_audio import AudioTransformer
from ..models.video_features import VideoFeatureEncoder
from ..outputs import AVGenOutput
from ..validation import check_generator, check_number, check_texts
from ..vocabulary import checks_vocabulary
from .loading import Float32ByDefault
from .sampling_state import VideoGuidanceState, combine_guidance, guidance_text, same_length
from .video_input import decode_on_clock, describe_video_on_clock, frames_to_tensor, load_video

# Frames are converted to float and resized this many at a time, so memory follows the chunk, not the
# clip's length or resolution (a 1080p frame is 25 MB in float32).
VIDEO_CHUNK_FRAMES = 32


def seconds_to_steps(seconds: float, latent_rate: Fraction) -> int:
    """Whole latent steps in `seconds` (floor; 0.06 s means 3/50 s, not the float just below it)."""
    return int(Fraction(seconds).limit_denominator(10_000) * latent_rate)


class VideoToAudioPipeline(Float32ByDefault, VideoGuidanceState, DiffusionPipeline):
    """Adds synchronized sound (ambience, effects, music; no speech) to any video; text steers it.

    Components: tokenizer + text_encoder (any transformers encoder; the shipped one a small T5 over a BPE of world captions),
    audio_vae (AudioAutoencoder), audio_transformer (AudioTransformer), video_encoder
    (VideoFeatureEncoder), scheduler (FlowMatchEulerDiscreteScheduler).
    """

    model_cpu_offload_seq = "text_encoder->video_encoder->audio_transformer->audio_vae"
    _callback_tensor_inputs = ["latents", "prompt_embeds"]

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: PreTrainedModel,
        audio_vae: AudioAutoencoder,
        audio_transformer: AudioTransformer,
        video_encoder: VideoFeatureEncoder,
        scheduler: FlowMatchEulerDiscreteScheduler,
    ):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            audio_vae=audio_vae,
            audio_transformer=audio_transformer,
            video_encoder=video_encoder,
            scheduler=scheduler,
        )

    def clock(self, fps: int) -> AVClock:
        """The clip's clock: the latent rate is the audio VAE's (the transformer's must agree, see check_inputs)."""
        return AVClock(fps, self.audio_vae.config.sample_rate, audio_hop=self.audio_vae.config.hop_length)

    # --- inputs ------------------------------------------------------------------------------------
    def check_inputs(
        self,
        video,
        fps=None,
        prompt=None,
        negative_prompt=None,
        prompt_embeds=None,
        negative_prompt_embeds=None,
        prompt_attention_mask=None,
        negative_prompt_attention_mask=None,
        num_inference_steps=50,
        num_waveforms_per_prompt=1,
        generator=None,
        latents=None,
        audio=None,
        audio_mask=None,
        output_type="np",
        callback_on_step_end_tensor_inputs=None,
        window_seconds=None,
        overlap_seconds=None,
        guidance_scale=3.0,
        video_guidance_scale=1.0,
        use_video=True,
    ) -> tuple[int, int, int, int]:
        """Raise a precise ValueError on any bad input, before anything is computed.
        Returns (batch_size, num_frames, fps, num_samples) of the validated request."""
        vae, transformer = self.audio_vae.config, self.audio_transformer.config
        vae_clock = (vae.sample_rate, vae.hop_length, vae.latent_channels)
        if vae_clock != (transformer.sample_rate, transformer.hop_length, transformer.in_channels):
            raise ValueError(
                f"audio_vae (sample_rate {vae.sample_rate}, hop {vae.hop_length}, {vae.latent_channels} channels) and "
                f"audio_transformer ({transformer.sample_rate}, {transformer.hop_length}, {transformer.in_channels}) disagree"
            )
        if self.video_encoder.config.feature_dim != transformer.video_dim:
            raise ValueError(
                f"video_encoder.feature_dim {self.video_encoder.config.feature_dim} != audio_transformer.video_dim {transformer.video_dim}"
            )

        num_videos, num_frames, fps, num_samples = describe_video_on_clock(video, fps, vae.sample_rate)
        if prompt is not None and prompt_embeds is not None:
            raise ValueError("pass prompt or prompt_embeds, not both")
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise ValueError("pass negative_prompt or negative_prompt_embeds, not both")
        for name, value in (("prompt", prompt), ("negative_prompt", negative_prompt)):
            is_text = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
            if value is not None and not is_text:
                raise ValueError(f"{name} must be a string or a list of strings; got {type(value).__name__}")
            check_texts(name, value)  # valid Unicode; may be empty (no text: the pictures' sounds alone)
        if isinstance(prompt, list):
            num_prompts = len(prompt)
        elif prompt_embeds is not None:
            if prompt_embeds.ndim != 3 or prompt_embeds.shape[-1] != transformer.text_dim:
                raise ValueError(f"prompt_embeds must be (B, L, {transformer.text_dim}); got {tuple(prompt_embeds.shape)}")
            num_prompts = prompt_embeds.shape[0]
        else:
            num_prompts = 1
        batch_size = max(num_videos, num_prompts)
        if num_videos not in (1, batch_size) or num_prompts not in (1, batch_size):
            raise ValueError(f"{num_videos} videos and {num_prompts} prompts: give as many of each, or one of either")
        if isinstance(negative_prompt, list) and len(negative_prompt) != batch_size:
            raise ValueError(f"negative_prompt has {len(negative_prompt)} entries for a batch of {batch_size}")
        for name, embeds, mask in (
            ("prompt", prompt_embeds, prompt_attention_mask),
            ("negative_prompt", negative_prompt_embeds, negative_prompt_attention_mask),
        ):
            if embeds is None and mask is not None:
                raise ValueError(f"{name}_attention_mask was given without {name}_embeds")
            if embeds is not None and embeds.shape[::2] != (batch_size, transformer.text_dim):
                raise ValueError(f"{name}_embeds must be ({batch_size}, L, {transformer.text_dim}); got {tuple(embeds.shape)}")
            if mask is not None and mask.shape != embeds.shape[:2]:
                raise ValueError(f"{name}_attention_mask must be {tuple(embeds.shape[:2])}; got {tuple(mask.shape)}")

        if not isinstance(num_inference_steps, int) or num_inference_steps < 2:
            raise ValueError(f"num_inference_steps must be an integer >= 2 (the linear-quadratic schedule); got {num_inference_steps!r}")
        check_number("guidance_scale", guidance_scale, hint=" (<= 1 = off)")
        check_number("video_guidance_scale", video_guidance_scale, minimum=1, hint=" (1 = off)")
        if video_guidance_scale != 1 and not use_video:
            raise ValueError("video_guidance_scale guides toward the video: it needs use_video=True")
        if not isinstance(num_waveforms_per_prompt, int) or num_waveforms_per_prompt < 1:
            raise ValueError(f"num_waveforms_per_prompt must be a positive integer; got {num_waveforms_per_prompt!r}")
        total = batch_size * num_waveforms_per_prompt
        check_generator("generator", generator)
        if isinstance(generator, list) and len(generator) != total:
            raise ValueError(f"got {len(generator)} generators for {total} waveforms ({batch_size} x {num_waveforms_per_prompt})")
        clock = self.clock(fps)
        steps = clock.audio_latent_steps(num_samples)
        if latents is not None and tuple(latents.shape) != (total, transformer.in_channels, steps):
            raise ValueError(f"latents must be {(total, transformer.in_channels, steps)}; got {tuple(latents.shape)}")
        if output_type not in ("np", "pt", "latent"):
            raise ValueError(f"output_type must be 'np', 'pt' or 'latent'; got {output_type!r}")
        callback_inputs = callback_on_step_end_tensor_inputs or []
        if not set(callback_inputs) <= set(self._callback_tensor_inputs):
            raise ValueError(f"callback_on_step_end_tensor_inputs must be among {self._callback_tensor_inputs}; got {callback_inputs}")

        if audio is None and audio_mask is not None:
            raise ValueError("audio_mask was given without audio")
        if audio is not None:
            audio_shape = tuple(audio.shape)
            mono = len(audio_shape) in (1, 2, 3) and audio_shape[-2:-1] in ((), (1,))
            if not mono or (len(audio_shape) == 3 and audio_shape[0] not in (1, batch_size)):
                raise ValueError(f"audio must be mono (S,), (1, S) or ({batch_size} or 1, 1, S); got {audio_shape}")
            values = torch.as_tensor(audio)
            if not values.dtype.is_floating_point or not torch.isfinite(values).all() or values.abs().max() > 1:
                raise ValueError("audio must be a float waveform with finite samples in [-1, 1]")
            if not 0 < audio_shape[-1] <= num_samples:
                raise ValueError(f"audio must have 1..{num_samples} samples (the clip's length); got {audio_shape[-1]}")
            if audio_mask is not None and (audio_mask.shape[-1] != audio_shape[-1] or audio_mask.ndim > 3):
                raise ValueError(f"audio_mask must have the audio's {audio_shape[-1]} samples last; got {tuple(audio_mask.shape)}")

        latent_rate = clock.audio_latent_rate()
        if window_seconds is not None and not 1 <= seconds_to_steps(window_seconds, latent_rate) <= transformer.max_positions:
            raise ValueError(
                f"window_seconds must give 1..{transformer.max_positions} latent steps "
                f"(up to {float(transformer.max_positions / latent_rate):.4g} s); got {window_seconds!r}"
            )
        window = transformer.max_positions if window_seconds is None else seconds_to_steps(window_seconds, latent_rate)
        if overlap_seconds is not None and not 0 <= seconds_to_steps(overlap_seconds, latent_rate) < window:
            raise ValueError(
                f"overlap_seconds must be >= 0 and shorter than the window ({float(window / latent_rate):.4g} s); got {overlap_seconds!r}"
            )
        return batch_size, num_frames, fps, num_samples

    # --- stages ------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_video(self, frames, device=None, chunk_frames: int = VIDEO_CHUNK_FRAMES) -> torch.Tensor:
        """frames uint8 np (B, F, H, W, 3) or float tensor (B, F, 3, H, W) in [0, 1] -> features (B, F, D_video).

        Encoded chunk_frames at a time with two frames of context before and one after each chunk: the
        encoder's frame difference needs the previous frame and its 3-tap temporal conv both neighbours,
        so the features equal those of the whole clip at once, in memory bounded by the chunk.
        """
        device = device or self._execution_device
        size, dtype = self.video_encoder.config.frame_size, self.video_encoder.dtype
        num_frames = frames.shape[1]
        features = []
        for start in range(0, num_frames, chunk_frames):
            stop = min(start + chunk_frames, num_frames)
            first, last = max(0, start - 2), min(num_frames, stop + 1)
            chunk = frames_to_tensor(frames, first, last, device)  # (B, f, 3, H, W) in [0, 1]
            batch, count, channels, height, width = chunk.shape
            chunk = chunk.flatten(0, 1)  # (B * f, 3, H, W)
            if (height, width) != (size, size):  # the same resize the encoder would do, one chunk at a time
                chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            chunk = chunk.view(batch, count, channels, size, size).transpose(1, 2) * 2 - 1  # (B, 3, f, s, s) in [-1, 1]
            encoded = self.video_encoder(chunk.to(dtype))  # (B, f, D_video)
            features.append(encoded[:, start - first : stop - first])
        return torch.cat(features, dim=1)  # (B, F, D_video)

    @torch.no_grad()
    def encode_prompt(
        self,
        prompt: list[str] | None,
        negative_prompt: list[str] | None,
        do_classifier_free_guidance: bool,
        num_waveforms_per_prompt: int = 1,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        max_sequence_length: int = DEFAULT_MAX_LENGTH,
        device: torch.device | None = None,
    ):
        """Prompts (B strings) or given embeddings -> (embeds (B * N, L, D), mask (B * N, L)) for the text and,
        with guidance, for the negative prompt (else None, None). Row b * N + n belongs to prompt b."""
        device = device or self._execution_device
        dtype = self.audio_transformer.dtype

        def embed(texts, embeds, mask):
            if embeds is None:
                embeds, mask = encode_text(self.tokenizer, self.text_encoder, texts, max_sequence_length, device)
            elif mask is None:
                mask = torch.ones(embeds.shape[:2], dtype=torch.long)
            embeds = embeds.to(device, dtype).repeat_interleave(num_waveforms_per_prompt, dim=0)  # (B * N, L, D)
            return embeds, mask.to(device).repeat_interleave(num_waveforms_per_prompt, dim=0)

        prompt_embeds, prompt_attention_mask = embed(prompt, prompt_embeds, prompt_attention_mask)
        if not do_classifier_free_guidance:
            return prompt_embeds, prompt_attention_mask, None, None
        negative = embed(negative_prompt, negative_prompt_embeds, negative_prompt_attention_mask)
        return prompt_embeds, prompt_attention_mask, *negative

    @torch.no_grad()
    def prepare_known_audio(self, audio, audio_mask, batch_size: int, num_samples: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Given audio (S_a,), (1, S_a) or (B, 1, S_a) with S_a <= S, and a mask of it (1 = keep; default all)
        -> known latents (B, C, T) and a step mask (B, 1, T): a step is known only if all its samples are."""
        hop = self.audio_vae.config.hop_length
        steps = -(-num_samples // hop)
        audio = torch.as_tensor(audio, dtype=torch.float32, device=device).reshape(-1, 1, audio.shape[-1])  # (b, 1, S_a)
        mask = torch.ones_like(audio) if audio_mask is None else torch.as_tensor(audio_mask, device=device).float().expand_as(audio)
        given = audio.shape[-1]
        audio = F.pad(audio * mask, (0, num_samples - given))  # (b, 1, S): unknown samples silent
        # samples after S exist only as padding of the last step: they count as known
        mask = torch.cat([F.pad(mask, (0, num_samples - given)), mask.new_ones(mask.shape[0], 1, steps * hop - num_samples)], dim=-1)
        known_mask = mask.view(mask.shape[0], 1, steps, hop).amin(dim=-1)  # (b, 1, T)
        latents = self.audio_vae.encode(audio.to(self.audio_vae.dtype)).latent_dist.mode() * self.audio_vae.config.scaling_factor
        return latents.float().expand(batch_size, -1, -1), known_mask.expand(batch_size, -1, -1)

    # --- sampling ----------------------------------------------------------------------------------
    @checks_vocabulary(texts=("prompt",))
    @torch.no_grad()
    def __call__(
        self,
        video,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        fps: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 3.0,
        video_guidance_scale: float = 1.0,
        # diffusers' audio pipelines (StableAudio, AudioLDM2, MusicLDM) name it so: the video is given, what
        # varies per prompt is the waveform.
        num_waveforms_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        audio=None,
        audio_mask=None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (diffusers' signature)
        max_sequence_length: int = DEFAULT_MAX_LENGTH,
        window_seconds: float | None = None,
        overlap_seconds: float | None = None,
        use_video: bool = True,
    ) -> AVGenOutput | tuple:
        """Generate the sound of `video`.

        Args:
            video: a path to a video file (any fps, constant or variable, read from it), uint8 np (F, H, W, 3) or
                (B, F, H, W, 3), a float tensor (B, F, 3, H, W) in [0, 1], or a list of PIL images (one clip).
            prompt: what to hear besides the pictured sources, e.g. "with rain and calm piano music"; None = "".
            negative_prompt: the unconditional text of classifier-free guidance (default "").
            fps: frames per second of array/tensor/PIL video, one of clock.SUPPORTED_FPS.
            num_inference_steps: Euler steps of the linear-quadratic schedule (>= 2).
            guidance_scale: classifier-free guidance on the text; off at <= 1 (Movie Gen Audio uses 3).
            video_guidance_scale: guidance on the video, >= 1 (1 = off, the default): a third branch with the
                negative text and the learned null video, combined as in the module docstring.
            num_waveforms_per_prompt: sounds per video; output row b * N + n is sound n of video b.
            generator: a torch.Generator, or one per output waveform.
            latents: noise (B * N, C, T) to start from, instead of drawing it.
            audio, audio_mask: known audio to keep (extension / infilling): mono waveform (S_a,), (1, S_a) or
                (B, 1, S_a) in [-1, 1] at the VAE's sample rate, S_a <= the clip's S samples, read from the
                clip's start; samples after S_a are generated. audio_mask (same last axis, 1 = keep) marks
                gaps to fill. Known steps are re-synthesised through the VAE (not copied sample for sample).
            prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask:
                precomputed text (B, L, text_dim) and its (B, L) mask, instead of prompts.
            output_type: "np" (audio np (B * N, 1, S), frames uint8 np (B * N, F, H, W, 3)), "pt" (audio
                tensor, frames float tensor (B * N, F, 3, H, W) in [0, 1]) or "latent" (audio = the latents
                (B * N, C, T), sample_rate None, frames as "np").
            return_dict: False returns the tuple (audio,).
            callback_on_step_end: called as callback(pipeline, step, timestep, callback_kwargs) after each step;
                may return replacements for the tensors in callback_kwargs.
            callback_on_step_end_tensor_inputs: which of `_callback_tensor_inputs` it receives.
            max_sequence_length: text tokens kept per prompt.
            window_seconds: longest audio the transformer sees at once (default: its max_positions); longer
                clips are sampled in overlapping windows blended with triangle weights.
            overlap_seconds: overlap of neighbouring windows (default a quarter of the window).
            use_video: False ignores the video's pictures: the transformer gets its learned null video (the
                unconditional video branch it is trained with), so the sound follows the text alone; the video
                still sets the length and fps. The text-only baseline of the benchmark (benchmarks/bench_quality.py).
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs

        # 1. Check inputs (everything, before any compute)
        batch_size, num_frames, fps, num_samples = self.check_inputs(
            video, fps=fps, prompt=prompt, negative_prompt=negative_prompt, prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds, prompt_attention_mask=prompt_attention_mask,
            negative_prompt_attention_mask=negative_prompt_attention_mask, num_inference_steps=num_inference_steps,
            num_waveforms_per_prompt=num_waveforms_per_prompt, generator=generator, latents=latents, audio=audio,
            audio_mask=audio_mask, output_type=output_type,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs, window_seconds=window_seconds,
            overlap_seconds=overlap_seconds, guidance_scale=guidance_scale, video_guidance_scale=video_guidance_scale,
            use_video=use_video,
        )  # fmt: skip
        self._guidance_scale = guidance_scale
        self._video_guidance_scale = video_guidance_scale
        self._interrupt = False
        device = self._execution_device
        total = batch_size * num_waveforms_per_prompt
        clock = self.clock(fps)
        branches = self.num_guidance_branches

        # 2. Video features (B*N, F, D_video) at the clip's own fps (a file's: its model clock), one per frame; the
        #    transformer aligns them to latent steps. A file's own sound is not an input: it is replaced.
        if isinstance(video, (str, os.PathLike)):  # decoded and shrunk to the encoder's size frame by frame
            frames = decode_on_clock(video, self.video_encoder.config.frame_size)  # (1, F, 3, s, s)
        else:
            frames = load_video(video)[0]
        video_features = None  # None: the transformer's null video (use_video=False)
        if use_video:
            video_features = self.encode_video(frames, device)  # (B_video, F, D_video)
            video_features = video_features.expand(batch_size, -1, -1).repeat_interleave(num_waveforms_per_prompt, dim=0)

        # 3. Text of the guidance branches on the batch axis, [prompt], [negative; prompt] or [negative; negative;
        #    prompt] (branches * B*N, L, D) and its mask (branches * B*N, L), the negative padded to the prompt's length
        if prompt_embeds is None:
            prompt = [prompt or ""] * batch_size if not isinstance(prompt, list) else prompt
            prompt = prompt * batch_size if len(prompt) == 1 else prompt
        negative_prompt = [negative_prompt or ""] * batch_size if not isinstance(negative_prompt, list) else negative_prompt
        text = self.encode_prompt(
            prompt, negative_prompt, self.do_classifier_free_guidance, num_waveforms_per_prompt, prompt_embeds,
            negative_prompt_embeds, prompt_attention_mask, negative_prompt_attention_mask, max_sequence_length, device,
        )  # fmt: skip
        prompt_embeds, prompt_attention_mask = guidance_text(branches, *same_length(*text))

        # 4. Video of the branches: [video; video] or [null; video; video] (branches * B*N, F, D_video)
        if video_features is not None and branches > 1:
            null = self.audio_transformer.null_video_features.to(video_features.dtype).expand_as(video_features)
            video_features = torch.cat(([null] if branches == 3 else []) + [video_features] * 2)

        # 5. Latents (B*N, C, T), float32 for the scheduler, and the known audio, if any
        num_steps = clock.audio_latent_steps(num_samples)  # T
        num_channels = self.audio_transformer.config.in_channels
        latents = self.prepare_latents((total, num_channels, num_steps), torch.float32, device, generator, latents)
        noise = latents.clone()
        known_latents = known_mask = None
        if audio is not None:
            known_latents, known_mask = self.prepare_known_audio(audio, audio_mask, batch_size, num_samples, device)
            known_latents = known_latents.repeat_interleave(num_waveforms_per_prompt, dim=0)  # (B*N, C, T)
            known_mask = known_mask.repeat_interleave(num_waveforms_per_prompt, dim=0)  # (B*N, 1, T)

        # 6. Windows: one if the clip fits, else overlapping ones (memory bounded by the window, not the clip)
        latent_rate = clock.audio_latent_rate()
        window = self.audio_transformer.config.max_positions
        window = window if window_seconds is None else seconds_to_steps(window_seconds, latent_rate)
        overlap = window // 4 if overlap_seconds is None else seconds_to_steps(overlap_seconds, latent_rate)
        windows = plan_windows(num_steps, window, overlap)

        # 7. Denoise. The text and video of every forward are prepared once per call (each window's video at its
        #    first step), again only if a callback replaces the text
        def prepare(tensors: dict) -> dict:  # the forwards' text keywords
            embeds, mask = tensors["prompt_embeds"], prompt_attention_mask
            conditions = self.audio_transformer.prepare_conditions(embeds, mask, video_features, fps)
            return dict(encoder_hidden_states=embeds, encoder_attention_mask=mask, conditions=conditions)

        def velocity(latents: torch.Tensor, t: torch.Tensor, text: dict) -> torch.Tensor:  # (B*N, C, T)
            def window_velocity(x: torch.Tensor, window: slice) -> torch.Tensor:
                known = {}
                if known_latents is not None:  # the same known audio for every guidance branch
                    known = dict(known_latents=known_latents[..., window], known_mask=known_mask[..., window])
                    known = {name: value.repeat(branches, 1, 1) for name, value in known.items()}
                model_input = x.repeat(branches, 1, 1).to(self.audio_transformer.dtype)  # (branches * B*N, C, window)
                output = self.audio_transformer(
                    hidden_states=model_input, timestep=t.expand(model_input.shape[0]),
                    video_features=video_features,  # the whole clip's: the window gathers its frames by its offset
                    fps=fps, audio_step_offset=window.start, return_dict=False, **text, **known,
                )[0]  # fmt: skip
                return combine_guidance(output.float(), branches, self.guidance_scale, self.video_guidance_scale)

            if len(windows) == 1:
                return window_velocity(latents, windows[0])
            return multidiffusion_velocity(window_velocity, latents, windows)

        def keep_known(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:  # known steps on their path at time t
            return torch.where(known_mask.bool(), interpolate(noise, known_latents, t.expand(total)), latents)

        timesteps, _ = self.prepare_timesteps(num_inference_steps, device)
        latents = self.denoise(
            latents, timesteps, velocity, prepare, {"prompt_embeds": prompt_embeds}, callback_on_step_end,
            callback_on_step_end_tensor_inputs, before_step=keep_known if known_latents is not None else None,
        )  # fmt: skip
        if known_latents is not None:
            latents = torch.where(known_mask.bool(), known_latents, latents)

        # 8. Decode to exactly the clip's length; the decoder is unbounded, the output a waveform in [-1, 1]
        if output_type == "latent":
            sound, sample_rate = latents, None
        else:
            scaled = (latents / self.audio_vae.config.scaling_factor).to(self.audio_vae.dtype)
            sound = self.audio_vae.decode(scaled, num_samples=num_samples).sample.float().clamp(-1, 1)  # (B * N, 1, S)
            sample_rate = self.audio_vae.config.sample_rate
            sound = sound.cpu().numpy() if output_type == "np" else sound
        self.maybe_free_model_hooks()

        # 9. The input frames, one copy per output waveform, and provenance
        frames = self.output_frames(frames, batch_size, num_waveforms_per_prompt, output_type)
        metadata = self.provenance(
            prompt, generator, total, num_waveforms_per_prompt, num_inference_steps, guidance_scale, video_guidance_scale
        )
        if not return_dict:
            return (sound,)
        return AVGenOutput(frames=frames, audio=sound, fps=fps, sample_rate=sample_rate, metadata=metadata)

    @staticmethod
    def output_frames(frames, batch_size: int, repeats: int, output_type: str):
        """The input frames for B * N outputs: uint8 np (B * N, F, H, W, 3), or float (B * N, F, 3, H, W) for "pt"."""
        if output_type == "pt":
            frames = torch.from_numpy(frames).permute(0, 1, 4, 2, 3).float() / 255 if isinstance(frames, np.ndarray) else frames
            return frames.expand(batch_size, *frames.shape[1:]).repeat_interleave(repeats, dim=0)
        if torch.is_tensor(frames):
            frames = (frames.permute(0, 1, 3, 4, 2).float().cpu() * 255).round().to(torch.uint8).numpy()
        return np.repeat(np.broadcast_to(frames, (batch_size, *frames.shape[1:])), repeats, axis=0)

    def provenance(
        self, prompt, generator, total: int, repeats: int, steps: int, guidance_scale: float, video_guidance_scale: float
    ) -> list[dict]:
        """One metadata dict per output (stored in saved MP4s). The seed is the generator's initial seed."""
        if isinstance(generator, list):
            seeds = [str(g.initial_seed()) for g in generator]
        else:
            seeds = [str(generator.initial_seed()) if generator is not None else "random"] * total
        prompts = [p for p in prompt for _ in range(repeats)] if prompt is not None else ["(prompt_embeds)"] * total
        return [
            {
                "generator": "avgen",
                "avgen_version": __version__,
                "pipeline": type(self).__name__,
                "prompt": prompts[index],
                "seed": seeds[index],
                "steps": str(steps),
                "guidance": str(guidance_scale),
                "video_guidance": str(video_guidance_scale),
            }
            for index in range(total)
        ]
