"""Text to video: Movie Gen Video's sampler as a diffusers pipeline.

Stages (B prompts, n = num_videos_per_prompt, F frames of H x W at `fps`; the VAE compresses t x s x s):

1. Text: prompts -> tokenizer -> text_encoder -> prompt_embeds (B*n, L, text_dim) and a
   (B*n, L) mask. With guidance (guidance_scale > 1) the negative prompt ("" by default) is encoded too.
2. Noise: latents x_0 ~ N(0, I) of shape (B*n, C, F', H', W'), F' = ceil(F / t), H' = H / s, W' = W / s,
   drawn with the caller's `generator` (one per clip when it is a list).
3. Denoise: Euler steps of flow matching (avgen.flow_matching) on Movie Gen's linear-quadratic schedule.
   Each step is one transformer forward on the batch [negative; positive] (2*B*n, C, F', H', W') giving
   velocities v_neg, v_pos; v = v_neg + guidance_scale * (v_pos - v_neg); the scheduler steps with -v
   (it runs in sigma = 1 - t, see flow_matching.py). The text of that batch is the same at every step: the
   transformer prepares it (projection, cross-attention keys and values) once per call (prepare_conditions).
4. Decode: latents / vae.config.scaling_factor -> vae.decode in temporal tiles (memory bounded by the tile,
   not the clip) -> (B*n, 3, F, H, W) in [-1, 1] -> frames as `output_type` asks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.schedulers import FlowMatchEulerDiscreteScheduler
from diffusers.video_processor import VideoProcessor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

import avgen
from avgen.clock import MOVIEGEN_DURATIONS, AVClock, check_fps
from avgen.models.autoencoder_video import TemporalAutoencoder
from avgen.models.text_encoder import DEFAULT_MAX_LENGTH, encode_prompt
from avgen.models.transformer_video import VideoTransformer
from avgen.outputs import AVGenOutput
from avgen.pipelines.loading import Float32ByDefault
from avgen.pipelines.sampling_state import SamplingState, combine_guidance, guided_text_conditions, same_length
from avgen.validation import check_generator, check_number, check_texts
from avgen.vocabulary import checks_vocabulary

OUTPUT_TYPES = ("np", "pt", "pil", "latent")


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _describe(value) -> object:
    """What an error message shows of a wrong argument: a tensor's shape, else the type's name."""
    return tuple(value.shape) if torch.is_tensor(value) else type(value).__name__


class TextToVideoPipeline(Float32ByDefault, SamplingState, DiffusionPipeline):
    """Text -> video with the temporal autoencoder and the flow-matching video transformer.

    Args:
        tokenizer: a transformers tokenizer (the shipped models: a byte-level BPE of the world's captions).
        text_encoder: a transformers encoder (T5EncoderModel); its width is the transformer's `text_dim`.
        vae: the TemporalAutoencoder; its latents, divided by `scaling_factor`, are what it decodes.
        transformer: the VideoTransformer predicting the flow velocity.
        scheduler: FlowMatchEulerDiscreteScheduler (shift 1.0: the sigmas are used as given).
        vae_tile_latent_frames, vae_tile_overlap: temporal tiles of the decode, in latent frames. A tiny-preset
            frame depends on about +-12 latent frames, so 16 with an overlap of 4 blends tiles smoothly while
            a 10-second clip (60 latent frames) decodes in 5 tiles of bounded memory.
    """

    model_cpu_offload_seq = "text_encoder->transformer->vae"
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: PreTrainedModel,
        vae: TemporalAutoencoder,
        transformer: VideoTransformer,
        scheduler: FlowMatchEulerDiscreteScheduler,
        vae_tile_latent_frames: int = 16,
        vae_tile_overlap: int = 4,
    ):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
        )
        self.register_to_config(vae_tile_latent_frames=vae_tile_latent_frames, vae_tile_overlap=vae_tile_overlap)
        self.video_processor = VideoProcessor(vae_scale_factor=self.vae.spatial_compression_ratio)

    # --- sizes the components allow ---------------------------------------------------------------
    @property
    def _pixels_per_token(self) -> tuple[int, int]:
        """(height, width) pixels of one transformer token: VAE compression times the patch."""
        spatial = self.vae.spatial_compression_ratio
        return spatial * self.transformer.config.patch_size[1], spatial * self.transformer.config.patch_size[2]

    @property
    def default_height(self) -> int:
        """The largest height the transformer's positions cover (64 for the tiny preset)."""
        return self._pixels_per_token[0] * self.transformer.config.pos_embed_size[1]

    @property
    def default_width(self) -> int:
        return self._pixels_per_token[1] * self.transformer.config.pos_embed_size[2]

    def clock(self, fps: int) -> AVClock:
        # video only: the audio rate plays no part in frame and latent-frame counts
        return AVClock(fps=fps, sample_rate=1, video_time_compression=self.vae.temporal_compression_ratio)

    def resolve_num_frames(self, num_frames: int | None, duration: float | None, fps: int) -> int:
        """Frame count from `num_frames` or `duration` (seconds); by default Movie Gen's duration for this fps
        (10 s at 24 fps, 16 s at 16 fps; 10 s at any other rate)."""
        if num_frames is not None and duration is not None:
            raise ValueError(f"pass num_frames or duration, not both; got {num_frames} frames and {duration} s")
        if num_frames is not None:
            if not _is_positive_int(num_frames):
                raise ValueError(f"num_frames must be a positive integer; got {num_frames!r}")
            return num_frames
        if duration is None:
            default = MOVIEGEN_DURATIONS[0][0]
            duration = next((seconds for seconds, rate in MOVIEGEN_DURATIONS if rate == fps), default)
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
            raise ValueError(f"duration must be a positive number of seconds; got {duration!r}")
        return self.clock(fps).frames_for_duration(duration)

    def latent_shape(self, batch_size: int, num_frames: int, height: int, width: int, fps: int) -> tuple[int, ...]:
        """(B, C, F', H', W') of the latents of `num_frames` frames of height x width."""
        spatial = self.vae.spatial_compression_ratio
        latent_frames = self.clock(fps).video_latent_frames(num_frames)
        return (batch_size, self.transformer.config.in_channels, latent_frames, height // spatial, width // spatial)

    # --- inputs ------------------------------------------------------------------------------------
    def check_inputs(
        self,
        prompt=None,
        negative_prompt=None,
        height=None,
        width=None,
        num_frames=None,
        duration=None,
        fps=24,
        num_inference_steps=50,
        num_videos_per_prompt=1,
        generator=None,
        latents=None,
        prompt_embeds=None,
        prompt_attention_mask=None,
        negative_prompt_embeds=None,
        negative_prompt_attention_mask=None,
        output_type="np",
        callback_on_step_end_tensor_inputs=None,
        max_sequence_length=DEFAULT_MAX_LENGTH,
        guidance_scale=5.0,
    ):
        """Raise a precise ValueError for any input the pipeline cannot run, before any compute."""
        fps = check_fps(fps)
        num_frames = self.resolve_num_frames(num_frames, duration, fps)

        config = self.transformer.config
        temporal = self.vae.temporal_compression_ratio
        latent_frames = self.clock(fps).video_latent_frames(num_frames)
        max_frames = config.pos_embed_size[0] * config.patch_size[0] * temporal
        if latent_frames % config.patch_size[0]:
            raise ValueError(
                f"num_frames={num_frames} gives {latent_frames} latent frames (ceil(F / {temporal})), which must be "
                f"divisible by the transformer's temporal patch size {config.patch_size[0]}"
            )
        if latent_frames > config.pos_embed_size[0] * config.patch_size[0]:
            raise ValueError(
                f"num_frames={num_frames} ({num_frames / fps:g} s at {fps} fps) is too long: the transformer's "
                f"positions cover at most {max_frames} frames ({max_frames / fps:g} s at {fps} fps); "
                "pass a shorter duration or num_frames"
            )
        for name, size, unit, positions in (
            ("height", height, self._pixels_per_token[0], config.pos_embed_size[1]),
            ("width", width, self._pixels_per_token[1], config.pos_embed_size[2]),
        ):
            if size is None:
                continue
            if not _is_positive_int(size) or size % unit:
                raise ValueError(
                    f"{name} must be a positive multiple of {unit} (VAE compression x patch size); got {size!r}"
                )
            if size > unit * positions:
                raise ValueError(
                    f"{name}={size} exceeds {unit * positions}, the largest the transformer's positions cover"
                )

        if not _is_positive_int(num_inference_steps) or num_inference_steps < 2:
            raise ValueError(
                f"num_inference_steps must be an integer >= 2 (the schedule has a linear and a quadratic part); "
                f"got {num_inference_steps!r}"
            )
        for name, value in (
            ("num_videos_per_prompt", num_videos_per_prompt),
            ("max_sequence_length", max_sequence_length),
        ):
            if not _is_positive_int(value):
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        check_number("guidance_scale", guidance_scale, hint=" (<= 1 = off)")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}; got {output_type!r}")
        if callback_on_step_end_tensor_inputs is not None:
            unknown = [k for k in callback_on_step_end_tensor_inputs if k not in self._callback_tensor_inputs]
            if unknown:
                raise ValueError(
                    f"callback_on_step_end_tensor_inputs must be in {self._callback_tensor_inputs}; got {unknown}"
                )

        # the text: exactly one of prompt and prompt_embeds, at most one of each negative pair
        if prompt is not None and prompt_embeds is not None:
            raise ValueError("pass prompt or prompt_embeds, not both")
        if prompt is None and prompt_embeds is None:
            raise ValueError("pass prompt or prompt_embeds")
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise ValueError("pass negative_prompt or negative_prompt_embeds, not both")
        if prompt_attention_mask is not None and prompt_embeds is None:
            raise ValueError("prompt_attention_mask goes with prompt_embeds; pass prompt_embeds too")
        if negative_prompt_attention_mask is not None and negative_prompt_embeds is None:
            raise ValueError("negative_prompt_attention_mask goes with negative_prompt_embeds; pass them too")
        if prompt is not None:
            if not isinstance(prompt, (str, list)) or not all(isinstance(p, str) for p in prompt):
                raise ValueError(f"prompt must be a string or a list of strings; got {prompt!r}")
            if isinstance(prompt, list) and not prompt:
                raise ValueError("prompt is an empty list")
            check_texts("prompt", prompt, required=True)  # valid Unicode, not blank
        batch_size = 1 if isinstance(prompt, str) else len(prompt) if prompt is not None else None
        text_dim = config.text_dim
        for name, embeds, mask in (
            ("prompt_embeds", prompt_embeds, prompt_attention_mask),
            ("negative_prompt_embeds", negative_prompt_embeds, negative_prompt_attention_mask),
        ):
            if embeds is None:
                continue
            if not torch.is_tensor(embeds) or embeds.ndim != 3 or embeds.shape[2] != text_dim:
                raise ValueError(
                    f"{name} must be a (B, L, {text_dim}) tensor (the transformer's text_dim); got {_describe(embeds)}"
                )
            if mask is not None and (not torch.is_tensor(mask) or mask.shape != embeds.shape[:2]):
                mask_name = name.replace("embeds", "attention_mask")
                raise ValueError(f"{mask_name} must be {tuple(embeds.shape[:2])} (B, L); got {_describe(mask)}")
            batch_size = embeds.shape[0] if batch_size is None else batch_size
            if embeds.shape[0] != batch_size:
                raise ValueError(f"{name} has batch size {embeds.shape[0]}, but there are {batch_size} prompts")
        if negative_prompt is not None:
            if isinstance(negative_prompt, list):
                if len(negative_prompt) != batch_size or not all(isinstance(p, str) for p in negative_prompt):
                    raise ValueError(
                        f"negative_prompt must be a string or a list of {batch_size} strings (one per prompt); "
                        f"got {negative_prompt!r}"
                    )
            elif not isinstance(negative_prompt, str):
                raise ValueError(f"negative_prompt must be a string or a list of strings; got {negative_prompt!r}")
            check_texts("negative_prompt", negative_prompt)  # may be empty: the unconditional branch

        # noise: the caller's generators or latents must match the batch
        check_generator("generator", generator)
        total = batch_size * num_videos_per_prompt
        if isinstance(generator, list) and len(generator) != total:
            raise ValueError(
                f"got {len(generator)} generators for {total} videos ({batch_size} prompts x "
                f"{num_videos_per_prompt}); pass one generator or one per video"
            )
        if latents is not None:
            height, width = height or self.default_height, width or self.default_width
            expected = self.latent_shape(total, num_frames, height, width, fps)
            if not torch.is_tensor(latents) or tuple(latents.shape) != expected:
                raise ValueError(f"latents must have shape {expected} (B, C, F', H', W'); got {_describe(latents)}")

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        negative_prompt: str | list[str] | None = None,
        do_classifier_free_guidance: bool = True,
        num_videos_per_prompt: int = 1,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        max_sequence_length: int = DEFAULT_MAX_LENGTH,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Prompts -> (B*n, L, text_dim) embeddings and (B*n, L) masks, positive and (with guidance) negative.

        Given embeddings are used as they are (a missing mask means every token counts). The negative
        prompt defaults to "" (the unconditional branch the model is trained with).
        """
        device = device or self._execution_device
        if prompt_embeds is None:
            prompt = [prompt] if isinstance(prompt, str) else prompt
            prompt_embeds, prompt_attention_mask = encode_prompt(
                self.tokenizer, self.text_encoder, prompt, max_sequence_length, device=device, dtype=dtype
            )
        elif prompt_attention_mask is None:
            prompt_attention_mask = torch.ones(prompt_embeds.shape[:2], dtype=torch.long, device=device)
        batch_size = prompt_embeds.shape[0]

        if do_classifier_free_guidance and negative_prompt_embeds is None:
            negative_prompt = "" if negative_prompt is None else negative_prompt
            negative_prompt = [negative_prompt] * batch_size if isinstance(negative_prompt, str) else negative_prompt
            negative_prompt_embeds, negative_prompt_attention_mask = encode_prompt(
                self.tokenizer, self.text_encoder, negative_prompt, max_sequence_length, device=device, dtype=dtype
            )
        elif do_classifier_free_guidance and negative_prompt_attention_mask is None:
            negative_prompt_attention_mask = torch.ones(
                negative_prompt_embeds.shape[:2], dtype=torch.long, device=device
            )
        if not do_classifier_free_guidance:
            negative_prompt_embeds = negative_prompt_attention_mask = None

        def per_video(tensor, dtype=None):  # (B, ...) -> (B*n, ...), the n videos of a prompt next to each other
            if tensor is None:
                return None
            return tensor.to(device=device, dtype=dtype).repeat_interleave(num_videos_per_prompt, dim=0)

        return (
            per_video(prompt_embeds, dtype),
            per_video(prompt_attention_mask),
            per_video(negative_prompt_embeds, dtype),
            per_video(negative_prompt_attention_mask),
        )

    @checks_vocabulary(texts=("prompt",))
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        duration: float | None = None,
        fps: int = 24,
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        negative_prompt_attention_mask: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[[DiffusionPipeline, int, torch.Tensor, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],
        max_sequence_length: int = DEFAULT_MAX_LENGTH,
    ) -> AVGenOutput | tuple:
        """Generate videos from text.

        Args:
            prompt: one prompt or a list; or pass `prompt_embeds` instead.
            negative_prompt: what guidance steers away from; "" by default. Ignored when guidance_scale <= 1.
            height, width: frame size in pixels, multiples of the VAE's spatial compression times the patch
                size; default (and maximum) what the transformer's positions cover (64 x 64 for the tiny preset).
            num_frames: frames per video; or give `duration`. Default: 10 s at 24 fps, 16 s at 16 fps (Movie Gen's
                two options), 10 s at other rates.
            duration: seconds per video (frames = round(duration * fps)); not together with num_frames.
            fps: frames per second, one of avgen.clock.SUPPORTED_FPS; the transformer is conditioned on it.
            num_inference_steps: Euler steps on Movie Gen's linear-quadratic schedule (at least 2).
            guidance_scale: classifier-free guidance weight; <= 1 turns guidance off (one forward per step).
            num_videos_per_prompt: videos per prompt.
            generator: a torch.Generator, or one per video, for reproducible noise.
            latents: noise (B*n, C, F', H', W') to start from, used as given.
            prompt_embeds, prompt_attention_mask: (B, L, text_dim) text hidden states and their (B, L) 1/0 mask
                (all ones when omitted).
            negative_prompt_embeds, negative_prompt_attention_mask: the same for the negative prompt.
            output_type: "np" (B, F, H, W, 3) floats in [0, 1], "pt" (B, F, 3, H, W), "pil" (lists of images) or
                "latent" (B, C, F', H', W', the transformer's latents before `scaling_factor` is undone).
            return_dict: return an AVGenOutput, else the tuple (frames,).
            callback_on_step_end: called as callback_on_step_end(pipeline, step, timestep, callback_kwargs) after
                each step; may return new values of the tensors in `callback_on_step_end_tensor_inputs`.
            callback_on_step_end_tensor_inputs: names from `_callback_tensor_inputs` handed to the callback.
            max_sequence_length: prompts are truncated to this many tokens.

        Returns:
            AVGenOutput with frames, audio None, fps and one metadata dict per video.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs

        # 1. Check inputs, then fill in the defaults that depend on the components
        self.check_inputs(
            prompt=prompt, negative_prompt=negative_prompt, height=height, width=width, num_frames=num_frames,
            duration=duration, fps=fps, num_inference_steps=num_inference_steps,
            num_videos_per_prompt=num_videos_per_prompt, generator=generator, latents=latents,
            prompt_embeds=prompt_embeds, prompt_attention_mask=prompt_attention_mask,
            negative_prompt_embeds=negative_prompt_embeds,
            negative_prompt_attention_mask=negative_prompt_attention_mask,
            output_type=output_type, callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length, guidance_scale=guidance_scale,
        )  # fmt: skip
        fps = check_fps(fps)
        num_frames = self.resolve_num_frames(num_frames, duration, fps)
        height, width = height or self.default_height, width or self.default_width
        self._guidance_scale = guidance_scale
        self._interrupt = False
        device = self._execution_device
        prompts = [prompt] if isinstance(prompt, str) else prompt
        total = (len(prompts) if prompts is not None else prompt_embeds.shape[0]) * num_videos_per_prompt

        # 2. Encode the prompts (B*n, L, text_dim); negative and positive padded to one length for one forward
        transformer_dtype = self.transformer.dtype
        prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask = same_length(
            *self.encode_prompt(
                prompts, negative_prompt, self.do_classifier_free_guidance, num_videos_per_prompt, prompt_embeds,
                prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask, max_sequence_length,
                device=device, dtype=transformer_dtype,
            )
        )  # fmt: skip

        # 3. Timesteps, and the noise (B*n, C, F', H', W'), kept in float32 for the Euler updates
        timesteps, _ = self.prepare_timesteps(num_inference_steps, device)
        seeded = latents is None  # the seed tells how to reproduce a clip only if the noise came from it
        shape = self.latent_shape(total, num_frames, height, width, fps)
        latents = self.prepare_latents(shape, torch.float32, device, generator, latents)

        # 4. Denoise: each step one forward on [negative; positive] (2*B*n, C, F', H', W') with guidance; the text of
        #    the forwards is prepared once per call (again only if a callback replaces it)
        branches = self.num_guidance_branches

        def velocity(latents: torch.Tensor, t: torch.Tensor, text: dict) -> torch.Tensor:  # (B*n, C, F', H', W')
            model_input = latents.repeat(branches, 1, 1, 1, 1).to(transformer_dtype)  # (branches * B*n, C, F', H', W')
            output = self.transformer(
                hidden_states=model_input, timestep=t.expand(len(model_input)), fps=fps, return_dict=False, **text
            )[0]
            return combine_guidance(output.float(), branches, guidance_scale)

        masks = prompt_attention_mask, negative_prompt_attention_mask
        prepare = guided_text_conditions(self.transformer, branches, *masks)
        text = {"prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_prompt_embeds}
        latents = self.denoise(
            latents, timesteps, velocity, prepare, text, callback_on_step_end, callback_on_step_end_tensor_inputs
        )

        # 5. Decode in temporal tiles, so memory follows the tile and not the clip length
        video = latents if output_type == "latent" else self.decode_latents(latents, num_frames, output_type)
        self.maybe_free_model_hooks()

        # 6. Output, with the provenance of each video
        if not return_dict:
            return (video,)
        video_prompts = [p for p in prompts for _ in range(num_videos_per_prompt)] if prompts else [None] * total
        metadata = self._metadata(video_prompts, generator if seeded else None, num_inference_steps)
        return AVGenOutput(frames=video, audio=None, fps=fps, metadata=metadata)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, num_frames: int, output_type: str = "np"):
        """(B, C, F', H', W') latents -> vae.decode in temporal tiles -> (B, 3, F, H, W) in [-1, 1] -> frames as
        `output_type` asks ("np" (B, F, H, W, 3) in [0, 1], "pt" (B, F, 3, H, W), "pil")."""
        latents = latents.to(self.vae.dtype) / self.vae.config.scaling_factor
        video = self.vae.decode(
            latents,
            num_frames=num_frames,
            tile_latent_frames=self.config.vae_tile_latent_frames,
            tile_overlap=self.config.vae_tile_overlap,
            return_dict=False,
        )[0]  # (B, 3, F, H, W) in [-1, 1]
        return self.video_processor.postprocess_video(video.float(), output_type=output_type)

    def _metadata(self, prompts: list[str | None], generator, num_inference_steps: int) -> list[dict]:
        """Provenance of each video (stored as MP4 tags by AVGenOutput.save); `prompts` has one entry per video."""
        if isinstance(generator, list):
            seeds = [g.initial_seed() for g in generator]
        else:  # one generator drew the whole batch: its seed and the video's index reproduce it
            seeds = [None if generator is None else generator.initial_seed()] * len(prompts)
        metadata = []
        for prompt, seed in zip(prompts, seeds):
            entry = {
                "generator": "avgen",
                "model_version": avgen.__version__,
                "pipeline": type(self).__name__,
                "num_inference_steps": num_inference_steps,
                "guidance_scale": self.guidance_scale,
            }
            if prompt is not None:
                entry["prompt"] = prompt
            if seed is not None:
                entry["seed"] = seed
            metadata.append(entry)
        return metadata


class TextToVideoStage:
    """Mixin of the pipelines composed of stage pipelines over their own modules (the same objects, no copies):
    AVGenPipeline and VideoEditPipeline. `text_to_video` is TextToVideoPipeline over tokenizer, text_encoder, vae,
    transformer and scheduler; `_stage` gives a stage the composed pipeline's progress-bar settings."""

    def _stage(self, pipeline: DiffusionPipeline) -> DiffusionPipeline:
        pipeline.set_progress_bar_config(**getattr(self, "_progress_bar_config", {}))
        return pipeline

    @property
    def text_to_video(self) -> TextToVideoPipeline:
        return self._stage(
            TextToVideoPipeline(
                self.tokenizer, self.text_encoder, self.vae, self.transformer, self.scheduler,
                self.config.vae_tile_latent_frames, self.config.vae_tile_overlap,
            )
        )  # fmt: skip
