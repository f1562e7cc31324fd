"""Movie Gen Edit as a diffusers pipeline: (video, instruction) -> the edited video, its sound kept or regenerated.

Stages, for B clips (B = the number of videos or of instructions; one of either is broadcast), n =
num_videos_per_prompt, F frames at `fps`; the VAE compresses t x s x s into C latent channels; H x W is the
model's native size, the largest its positions cover (transformer pos_embed_size x patch x s: 64 x 64 for the
tiny preset):

1. video: a path (decoded; fps and sound from the file), uint8 (F, H0, W0, 3) / (B, F, H0, W0, 3), float
   (B, F, 3, H0, W0) in [0, 1] or a list of PIL images (video_input.py) -> centre-cropped to the native aspect
   ratio and resized to H x W, a chunk of frames at a time -> (B, F, 3, H, W) in [0, 1].
2. text: instructions -> the text-to-video pipeline's encode_prompt (the edit model reads text like the
   text-to-video model it was initialised from) -> (B*n, L, text_dim); with guidance the negative prompt
   ("" by default) as well.
3. source: vae.encode(frames in [-1, 1]).latent_dist.mode() * scaling_factor -> (B*n, C, F', H', W'),
   F' = ceil(F / t), H' = H / s, W' = W / s.
4. denoise: noise x_0 (B*n, C, F', H', W'); each Euler step (avgen.flow_matching) is one transformer forward on
   up to three branches, stacked on the batch axis, each the channel concatenation [x_t, source] (., 2C, F', H', W'):
       uncond = (negative text, zeros)    source = (negative text, source)    full = (instruction, source)
       v = v_uncond + video_guidance_scale * (v_source - v_uncond) + guidance_scale * (v_full - v_source)
   (InstructPix2Pix's guidance; training drops the source to zeros and the caption to "" so the model knows
   both unconditional branches). video_guidance_scale == 1 leaves two branches, both scales 1 only `full`.
5. decode: latents / scaling_factor -> vae.decode in temporal tiles -> (B*n, F, 3, H, W) in [0, 1].
6. sound: the input file's own track, fitted to exactly AVClock(fps, sample_rate).num_samples(F) samples; or,
   when the instruction changes what is heard (rain, storm, ...; see `changes_sound`), VideoToAudioPipeline
   over this pipeline's audio components on the edited frames -> (B*n, 1, S).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.schedulers import FlowMatchEulerDiscreteScheduler
from transformers import PreTrainedModel, PreTrainedTokenizerBase

import avgen
from avgen.clock import AVClock
from avgen.flow_matching import interpolate
from avgen.models.autoencoder_audio import AudioAutoencoder
from avgen.models.autoencoder_video import TemporalAutoencoder
from avgen.models.text_encoder import DEFAULT_MAX_LENGTH
from avgen.models.transformer_audio import AudioTransformer
from avgen.models.transformer_video import VideoTransformer
from avgen.models.video_features import VideoFeatureEncoder
from avgen.outputs import AVGenOutput
from avgen.validation import check_number, check_texts
from avgen.vocabulary import checks_vocabulary

from .loading import Float32ByDefault
from .sampling_state import VideoGuidanceState, combine_guidance, guided_text_conditions, same_length
from .text_to_video import TextToVideoPipeline, TextToVideoStage
from .video_input import describe_video, frames_to_tensor, load_video, postprocess_frames
from .video_to_audio import VIDEO_CHUNK_FRAMES, VideoToAudioPipeline

AUDIO_COMPONENTS = ("audio_text_encoder", "audio_vae", "audio_transformer", "video_encoder")

# Instructions that change what is heard (docs/world.md: adding rain adds its hiss, nothing else in the sound
# changes; night is silent, so "make it night" keeps the audio): a weather word stem from this short list, as
# a whole word or with a common suffix ("rainy", "thunderstorm", "downpour"). "dark" is not one: "make the car
# dark blue" is a colour edit.
SOUND_WORD_STEMS = ("rain", "pour", "shower", "storm", "thunder", "lightning", "snow", "wind")
_SOUND_WORDS = re.compile(
    rf"\b(?:down)?(?:{'|'.join(SOUND_WORD_STEMS)})(?:s|y|ing|time|fall|storms?)?\b", flags=re.IGNORECASE
)


def changes_sound(instruction: str) -> bool:
    """Whether an edit instruction changes the sound (weather edits): regenerate_audio=None's rule."""
    return bool(_SOUND_WORDS.search(instruction))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def centre_crop_box(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width): the largest centred box of a height x width frame with the target's
    aspect ratio."""
    if height * target_width > width * target_height:  # taller than the target: crop rows
        crop_height, crop_width = max(1, round(width * target_height / target_width)), width
    else:
        crop_height, crop_width = height, max(1, round(height * target_width / target_height))
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


class VideoEditPipeline(Float32ByDefault, TextToVideoStage, VideoGuidanceState, DiffusionPipeline):
    """Edits a video from a text instruction ("change the background to a busy intersection", "add rain").

    Components: tokenizer (shared with the audio text encoder), text_encoder, vae (TemporalAutoencoder),
    transformer (the edit VideoTransformer: in_channels = 2 x the vae's latent channels, the source video's latents
    concatenated to the noisy ones; avgen.training.tasks.edit_transformer_from builds it from a text-to-video one),
    scheduler (FlowMatchEulerDiscreteScheduler, shift 1.0). Optional, all four or none, to regenerate the sound:
    audio_text_encoder, audio_vae (AudioAutoencoder), audio_transformer (AudioTransformer), video_encoder
    (VideoFeatureEncoder).
    vae_tile_latent_frames, vae_tile_overlap: the decode's temporal tiles (TextToVideoPipeline).
    """

    model_cpu_offload_seq = (
        "text_encoder->vae->transformer->video_encoder->audio_text_encoder->audio_transformer->audio_vae"
    )
    _optional_components = list(AUDIO_COMPONENTS)
    _callback_tensor_inputs = TextToVideoPipeline._callback_tensor_inputs  # latents, (negative_)prompt_embeds

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: PreTrainedModel,
        vae: TemporalAutoencoder,
        transformer: VideoTransformer,
        scheduler: FlowMatchEulerDiscreteScheduler,
        audio_text_encoder: PreTrainedModel | None = None,
        audio_vae: AudioAutoencoder | None = None,
        audio_transformer: AudioTransformer | None = None,
        video_encoder: VideoFeatureEncoder | None = None,
        vae_tile_latent_frames: int = 16,
        vae_tile_overlap: int = 4,
    ):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            vae=vae,
            transformer=transformer,
            scheduler=scheduler,
            audio_text_encoder=audio_text_encoder,
            audio_vae=audio_vae,
            audio_transformer=audio_transformer,
            video_encoder=video_encoder,
        )
        self.register_to_config(vae_tile_latent_frames=vae_tile_latent_frames, vae_tile_overlap=vae_tile_overlap)
        self.check_components()

    def check_components(self) -> None:
        """A plain text-to-video transformer or half a set of audio components is refused with a precise error."""
        latent_channels = self.vae.config.latent_channels
        config = self.transformer.config
        if config.in_channels != 2 * latent_channels or config.out_channels != latent_channels:
            hint = " (a text-to-video transformer: it sees no source video)" if config.in_channels == latent_channels else ""
            raise ValueError(
                f"the edit transformer must take in_channels = {2 * latent_channels} (the noisy latents and the source "
                f"video's, each the vae's {latent_channels} latent channels) and predict out_channels = "
                f"{latent_channels}; got in_channels={config.in_channels}, out_channels={config.out_channels}{hint}. "
                "avgen.training.tasks.edit_transformer_from(transformer) builds one from a text-to-video transformer"
            )
        present = [name for name in AUDIO_COMPONENTS if getattr(self, name, None) is not None]
        if present and len(present) != len(AUDIO_COMPONENTS):
            missing = [name for name in AUDIO_COMPONENTS if name not in present]
            raise ValueError(f"the audio components come all together or not at all: got {present}, missing {missing}")

    @property
    def has_audio_components(self) -> bool:
        return all(getattr(self, name, None) is not None for name in AUDIO_COMPONENTS)

    # --- the pipelines this one reuses, over its own modules (the same objects, no copies) -------------------
    # text_to_video (TextToVideoStage): its text side (prompt checks, encode_prompt, native size) and decode: the edit
    # model reads text exactly as the text-to-video model it started from. Not for sampling: this transformer also
    # needs the source video's latents.
    @property
    def video_to_audio(self) -> VideoToAudioPipeline:
        """Sound for the edited frames, from the optional audio components."""
        if not self.has_audio_components:
            raise ValueError(
                f"this pipeline has no audio components ({', '.join(AUDIO_COMPONENTS)}), so it cannot regenerate "
                "sound: pass regenerate_audio=False (keep the input's sound), or load a pipeline saved with them"
            )
        return self._stage(
            VideoToAudioPipeline(
                self.tokenizer, self.audio_text_encoder, self.audio_vae, self.audio_transformer, self.video_encoder,
                self.scheduler,
            )
        )  # fmt: skip

    # --- sizes -----------------------------------------------------------------------------------------
    @property
    def default_height(self) -> int:
        """The native height every input is resized to: the largest the transformer's positions cover."""
        return self.text_to_video.default_height

    @property
    def default_width(self) -> int:
        return self.text_to_video.default_width

    def latent_shape(self, batch_size: int, num_frames: int) -> tuple[int, ...]:
        """(B, C, F', H', W') of the noise: the vae's latent channels, at the native size."""
        spatial = self.vae.spatial_compression_ratio
        latent_frames = -(-num_frames // self.vae.temporal_compression_ratio)  # ceil(F / t)
        channels = self.vae.config.latent_channels
        return (batch_size, channels, latent_frames, self.default_height // spatial, self.default_width // spatial)

    # --- inputs ----------------------------------------------------------------------------------------
    @staticmethod
    def _broadcast_text(batch_size, prompt, prompt_embeds, prompt_attention_mask):
        """One instruction for B videos -> B copies (expand: views, no copies of the embeddings)."""
        if isinstance(prompt, str):
            prompt = [prompt] * batch_size
        elif isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt * batch_size
        if torch.is_tensor(prompt_embeds) and prompt_embeds.ndim == 3 and prompt_embeds.shape[0] == 1:
            prompt_embeds = prompt_embeds.expand(batch_size, -1, -1)
            if torch.is_tensor(prompt_attention_mask) and prompt_attention_mask.ndim == 2:
                prompt_attention_mask = prompt_attention_mask.expand(batch_size, -1)
        return prompt, prompt_embeds, prompt_attention_mask

    def resolve_regenerate_audio(self, regenerate_audio: bool | None, prompts: list[str] | None, output_type: str) -> bool:
        """regenerate_audio as asked; None = True when an instruction changes the sound (`changes_sound`) and the
        pipeline has audio components. With output_type="latent" there are no frames to hear: never."""
        if regenerate_audio is not None and not isinstance(regenerate_audio, bool):
            raise ValueError(f"regenerate_audio must be True, False or None (automatic); got {regenerate_audio!r}")
        if regenerate_audio:
            if not self.has_audio_components:
                raise ValueError(
                    f"regenerate_audio=True needs the audio components ({', '.join(AUDIO_COMPONENTS)}) and this pipeline "
                    "has none: pass regenerate_audio=False (keep the input's sound), or load a pipeline saved with them"
                )
            if output_type == "latent":
                raise ValueError('regenerate_audio=True needs decoded frames; output_type="latent" has none')
            return True
        if regenerate_audio is None:
            wanted = prompts is not None and any(changes_sound(prompt) for prompt in prompts)
            return wanted and self.has_audio_components and output_type != "latent"
        return False

    def check_inputs(
        self,
        video,
        prompt,
        negative_prompt,
        fps,
        num_inference_steps,
        guidance_scale,
        video_guidance_scale,
        num_videos_per_prompt,
        generator,
        latents,
        prompt_embeds,
        prompt_attention_mask,
        negative_prompt_embeds,
        negative_prompt_attention_mask,
        output_type,
        callback_on_step_end_tensor_inputs,
        max_sequence_length,
        regenerate_audio,
        audio_prompt,
        audio_guidance_scale,
        audio_num_inference_steps,
        strength=1.0,
    ) -> tuple[int, int, int, bool]:
        """Raise a precise ValueError for any input the pipeline cannot run, before any compute (a path is probed,
        not decoded). Returns (B, F, fps, regenerate_audio) of the validated request."""
        self.check_components()
        num_videos, num_frames, fps = describe_video(video, fps)

        # the frame count: the transformer's positions bound it, as they bound text-to-video's clips
        config = self.transformer.config
        temporal = self.vae.temporal_compression_ratio
        latent_frames = -(-num_frames // temporal)
        max_latent_frames = config.pos_embed_size[0] * config.patch_size[0]
        max_frames = max_latent_frames * temporal
        if latent_frames > max_latent_frames:
            raise ValueError(
                f"the video has {num_frames} frames ({num_frames / fps:g} s at {fps} fps); the transformer's positions "
                f"cover at most {max_frames} frames ({max_frames / fps:g} s at {fps} fps): trim the video"
            )

        # instructions and videos: as many of each, or one of either
        if isinstance(prompt, list):
            num_prompts = len(prompt)
        elif prompt is None and torch.is_tensor(prompt_embeds) and prompt_embeds.ndim == 3:
            num_prompts = prompt_embeds.shape[0]
        else:
            num_prompts = 1
        check_texts("prompt", prompt, required=True)  # the instruction: valid Unicode, not blank
        batch_size = max(num_videos, num_prompts)
        if num_prompts > 0 and (num_videos not in (1, batch_size) or num_prompts not in (1, batch_size)):
            raise ValueError(
                f"{num_videos} videos and {num_prompts} instructions: give as many of each, or one of either"
            )
        prompt, prompt_embeds, prompt_attention_mask = self._broadcast_text(
            batch_size, prompt, prompt_embeds, prompt_attention_mask
        )
        # text, steps, frame count, batch, generators, output type, callbacks: the text-to-video checks
        self.text_to_video.check_inputs(
            prompt=prompt, negative_prompt=negative_prompt, num_frames=num_frames, fps=fps,
            num_inference_steps=num_inference_steps, num_videos_per_prompt=num_videos_per_prompt, generator=generator,
            prompt_embeds=prompt_embeds, prompt_attention_mask=prompt_attention_mask,
            negative_prompt_embeds=negative_prompt_embeds,
            negative_prompt_attention_mask=negative_prompt_attention_mask,
            output_type=output_type, callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length,
        )  # fmt: skip
        check_number("guidance_scale", guidance_scale, minimum=1, hint=" (1 = that guidance off)")
        check_number("video_guidance_scale", video_guidance_scale, minimum=1, hint=" (1 = that guidance off)")
        if not _is_number(strength) or not 0 < strength <= 1:
            raise ValueError(f"strength must be a number in (0, 1] (1 = start from pure noise); got {strength!r}")
        total = batch_size * num_videos_per_prompt
        if latents is not None:
            expected = self.latent_shape(total, num_frames)
            if not torch.is_tensor(latents) or tuple(latents.shape) != expected:
                shape = tuple(latents.shape) if torch.is_tensor(latents) else type(latents).__name__
                raise ValueError(f"latents must have shape {expected} (B, C, F', H', W'); got {shape}")

        # the sound: regeneration's own checks now, on a stand-in for the frames that do not exist yet
        regenerate = self.resolve_regenerate_audio(regenerate_audio, prompt, output_type)
        if regenerate:
            is_list = isinstance(audio_prompt, list) and all(isinstance(text, str) for text in audio_prompt)
            if audio_prompt is not None and not (isinstance(audio_prompt, str) or (is_list and len(audio_prompt) in (1, batch_size))):
                raise ValueError(f"audio_prompt must be a string or a list of {batch_size} strings; got {audio_prompt!r}")
            check_texts("audio_prompt", audio_prompt)
            if audio_guidance_scale is not None:
                check_number("audio_guidance_scale", audio_guidance_scale, hint=" (<= 1 = off)")
            stand_in = torch.zeros(total, num_frames, 3, 1, 1)  # its checks read (B*n, F); texts checked above
            self.video_to_audio.check_inputs(
                stand_in, fps=fps, num_inference_steps=audio_num_inference_steps or num_inference_steps, generator=generator
            )
        return batch_size, num_frames, fps, regenerate

    @staticmethod
    def _audio_prompts(audio_prompt, prompts, batch_size: int, repeats: int) -> list[str]:
        """One audio prompt per output clip: audio_prompt, else the instruction ("" for prompt_embeds)."""
        texts = prompts if audio_prompt is None else audio_prompt
        texts = [texts] * batch_size if isinstance(texts, str) else texts if texts is not None else [""] * batch_size
        texts = texts * batch_size if len(texts) == 1 else texts
        return [text for text in texts for _ in range(repeats)]

    # --- stages ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare_frames(self, frames, device=None, chunk_frames: int = VIDEO_CHUNK_FRAMES) -> torch.Tensor:
        """uint8 np (B, F, H0, W0, 3) or float (B, F, 3, H0, W0) in [0, 1] -> float32 (B, F, 3, H, W) in [0, 1] at
        the native size: centre-cropped to its aspect ratio, then resized (bilinear, antialiased), chunk_frames at
        a time, so memory follows the chunk and the native size, not the input's resolution."""
        device = device or self._execution_device
        height, width = self.default_height, self.default_width
        num_frames = frames.shape[1]
        source_height, source_width = (frames.shape[2], frames.shape[3]) if isinstance(frames, np.ndarray) else frames.shape[3:]
        top, left, crop_height, crop_width = centre_crop_box(source_height, source_width, height, width)
        chunks = []
        for start in range(0, num_frames, chunk_frames):
            chunk = frames_to_tensor(frames, start, min(start + chunk_frames, num_frames), device)  # (B, f, 3, H0, W0)
            batch, count = chunk.shape[:2]
            chunk = chunk[..., top : top + crop_height, left : left + crop_width].flatten(0, 1)  # (B * f, 3, h, w)
            if (crop_height, crop_width) != (height, width):
                chunk = F.interpolate(chunk, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
            chunks.append(chunk.clamp(0, 1).view(batch, count, 3, height, width))
        return torch.cat(chunks, dim=1)  # (B, F, 3, H, W)

    @torch.no_grad()
    def encode_source(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, F, 3, H, W) in [0, 1] -> source latents (B, C, F', H', W'), scaled like the training latents.
        One clip at a time: the encoder's memory grows with the clip's length."""
        latents = []
        for clip in frames:
            sample = clip.transpose(0, 1)[None].mul(2).sub(1).to(self.vae.dtype)  # (1, 3, F, H, W) in [-1, 1]
            latents.append(self.vae.encode(sample).latent_dist.mode())
        return torch.cat(latents).float() * self.vae.config.scaling_factor

    def decode_latents(self, latents: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(B, C, F', H', W') latents scaled like encode_source's -> (B, F, 3, H, W) float in [0, 1], decoded in
        temporal tiles (TextToVideoPipeline.decode_latents), so memory follows the tile and not the clip length."""
        return self.text_to_video.decode_latents(latents, num_frames, output_type="pt")

    def encode_prompt(self, *args, **kwargs):
        """TextToVideoPipeline.encode_prompt (same arguments and results): (B*n, L, text_dim) embeddings and
        (B*n, L) masks of the instructions and, with guidance, of the negative prompt."""
        return self.text_to_video.encode_prompt(*args, **kwargs)

    # --- sampling --------------------------------------------------------------------------------------
    @checks_vocabulary(texts=("audio_prompt",), instructions=("prompt",))  # the prompt is the instruction
    @torch.no_grad()
    def __call__(
        self,
        video,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        fps: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 2.0,  # these two measured best for weights/tiny-edit (its MODEL_CARD.md)
        video_guidance_scale: float = 3.0,
        strength: float = 1.0,
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
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (diffusers' signature)
        max_sequence_length: int = DEFAULT_MAX_LENGTH,
        regenerate_audio: bool | None = None,
        audio_prompt: str | list[str] | None = None,
        audio_guidance_scale: float | None = None,
        audio_num_inference_steps: int | None = None,
    ) -> AVGenOutput | tuple:
        """Edit `video` as the instruction says.

        Args:
            video: a path to a video file (fps and sound read from it), uint8 np (F, H0, W0, 3) or (B, F, H0, W0, 3),
                a float tensor (B, F, 3, H0, W0) in [0, 1], or a list of PIL images (one clip). Any size: frames are
                centre-cropped to the model's aspect ratio and resized to its native size (the largest its
                positions cover, 64 x 64 for the tiny preset), which is also the output's size. At most as many
                frames as the positions cover (10 s at 24 fps, 16 s at 16 fps for the tiny preset).
            prompt: the instruction, e.g. "change the background to a busy intersection"; one, or one per video.
            negative_prompt: the text of the branches without the instruction ("" by default, as in training).
            fps: frames per second of array/tensor/PIL video, one of clock.SUPPORTED_FPS (the transformer is
                conditioned on it); read from the file for paths.
            num_inference_steps: Euler steps on Movie Gen's linear-quadratic schedule (at least 2).
            guidance_scale: guidance on the instruction, >= 1 (1 = off).
            video_guidance_scale: guidance on the source video, >= 1 (1 = off). With v_uncond (negative text, no
                source), v_source (negative text, source) and v_full (instruction, source):
                v = v_uncond + video_guidance_scale * (v_source - v_uncond) + guidance_scale * (v_full - v_source).
                Higher keeps more of the source; both 1 is one forward of v_full a step.
            strength: noise level in (0, 1] the edit starts from. 1 (default, Movie Gen Edit): pure noise, the source
                reaches the model only through its channels. Below 1 (SDEdit-style, diffusers' img2img `strength`
                on the noise axis): sampling starts from the source latents noised to the first step whose sigma is
                <= strength (`flow_matching.start_step`) and runs only the remaining steps (20 steps, 0.6: 3 steps).
            num_videos_per_prompt: edited videos per instruction (different noise).
            generator: a torch.Generator, or one per output video; it draws the video noise, then the audio's.
            latents: noise (B*n, C, F', H', W') to start from, used as given (strength < 1: mixed with the source).
            prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask:
                precomputed text (B, L, text_dim) and (B, L) masks, instead of the prompts.
            output_type: "np" frames (B*n, F, H, W, 3) floats in [0, 1], "pt" (B*n, F, 3, H, W), "pil" (lists of
                images) or "latent" (B*n, C, F', H', W', before scaling_factor is undone; the sound is kept).
            return_dict: return an AVGenOutput, else the tuple (frames, audio).
            callback_on_step_end: called as callback_on_step_end(pipeline, step, timestep, callback_kwargs) after
                each step; may return new values of the tensors in `callback_on_step_end_tensor_inputs`.
            callback_on_step_end_tensor_inputs: names from `_callback_tensor_inputs` handed to the callback.
            max_sequence_length: prompts are truncated to this many tokens.
            regenerate_audio: True: new sound for the edited frames (needs the audio components); False: the input
                file's sound, fitted to exactly the clip's length (frames given as arrays have none: audio None);
                None (default): True when the pipeline has audio components and an instruction changes the sound
                (`changes_sound`: rain, storm, thunder, snow, wind, ...; never for prompt_embeds, which have
                no words to read), else False. One decision for the whole batch.
            audio_prompt: the audio model's text when regenerating (default: the instruction).
            audio_guidance_scale: its classifier-free guidance (default: VideoToAudioPipeline's).
            audio_num_inference_steps: its sampling steps (default: num_inference_steps).

        Returns:
            AVGenOutput with frames, audio (B*n, C, S) or None, fps, sample_rate and one metadata dict per video.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs

        # 1. Check inputs (everything, before any compute)
        batch_size, num_frames, fps, regenerate_audio = self.check_inputs(
            video, prompt=prompt, negative_prompt=negative_prompt, fps=fps, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, video_guidance_scale=video_guidance_scale,
            num_videos_per_prompt=num_videos_per_prompt, generator=generator, latents=latents,
            prompt_embeds=prompt_embeds, prompt_attention_mask=prompt_attention_mask,
            negative_prompt_embeds=negative_prompt_embeds,
            negative_prompt_attention_mask=negative_prompt_attention_mask,
            output_type=output_type, callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length, regenerate_audio=regenerate_audio, audio_prompt=audio_prompt,
            audio_guidance_scale=audio_guidance_scale, audio_num_inference_steps=audio_num_inference_steps,
            strength=strength,
        )  # fmt: skip
        self._guidance_scale = guidance_scale
        self._video_guidance_scale = video_guidance_scale
        self._interrupt = False
        device = self._execution_device
        total = batch_size * num_videos_per_prompt
        branches = self.num_guidance_branches
        prompts, prompt_embeds, prompt_attention_mask = self._broadcast_text(
            batch_size, prompt, prompt_embeds, prompt_attention_mask
        )

        # 2. The source frames at the native size (B_video, F, 3, H, W) in [0, 1]; a file's own sound kept aside
        frames, source_audio, source_sample_rate = load_video(video)
        frames = self.prepare_frames(frames, device)

        # 3. Encode the instructions (B*n, L, text_dim); negative and positive padded to one length for one forward
        transformer_dtype = self.transformer.dtype
        prompt_embeds, prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask = same_length(
            *self.encode_prompt(
                prompts, negative_prompt, self.do_classifier_free_guidance, num_videos_per_prompt, prompt_embeds,
                prompt_attention_mask, negative_prompt_embeds, negative_prompt_attention_mask, max_sequence_length,
                device=device, dtype=transformer_dtype,
            )
        )  # fmt: skip

        # 4. Source latents (B*n, C, F', H', W'), and each branch's on the batch axis (branches * B*n, C, F', H', W'):
        #    [zeros; source; source] with both guidances (the first branch has no source), else the source each
        source_latents = self.encode_source(frames)  # (B_video, C, F', H', W')
        source_latents = source_latents.expand(batch_size, *source_latents.shape[1:])
        source_latents = source_latents.repeat_interleave(num_videos_per_prompt, dim=0)
        source_input = source_latents.repeat(branches, 1, 1, 1, 1)
        if branches == 3:
            source_input[:total] = 0
        source_input = source_input.to(transformer_dtype)

        # 5. Timesteps and the noise, float32 for the Euler updates; strength < 1 starts at the first step whose sigma
        #    is <= strength, from the source noised to that sigma
        timesteps, start_sigma = self.prepare_timesteps(num_inference_steps, device, strength)
        seeded = latents is None  # the seed tells how to reproduce a clip only if the noise came from it
        latents = self.prepare_latents(self.latent_shape(total, num_frames), torch.float32, device, generator, latents)
        if start_sigma < 1:
            latents = interpolate(latents, source_latents, torch.full((total,), 1 - start_sigma, device=device))

        # 6. Denoise: each step one forward on the branches' [x_t, source] (branches * B*n, 2C, F', H', W'); the text
        #    of the forwards is prepared once per call (again only if a callback replaces it)
        def velocity(latents: torch.Tensor, t: torch.Tensor, text: dict) -> torch.Tensor:  # (B*n, C, F', H', W')
            model_input = torch.cat([latents.to(transformer_dtype).repeat(branches, 1, 1, 1, 1), source_input], dim=1)
            output = self.transformer(
                hidden_states=model_input, timestep=t.expand(len(model_input)), fps=fps, return_dict=False, **text
            )[0]
            return combine_guidance(output.float(), branches, guidance_scale, video_guidance_scale)

        masks = prompt_attention_mask, negative_prompt_attention_mask
        prepare = guided_text_conditions(self.transformer, branches, *masks)
        text = {"prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_prompt_embeds}
        latents = self.denoise(
            latents, timesteps, velocity, prepare, text, callback_on_step_end, callback_on_step_end_tensor_inputs
        )

        # 7. Decode in temporal tiles
        if output_type == "latent":
            edited = video_frames = latents
        else:
            edited = self.decode_latents(latents, num_frames)  # (B*n, F, 3, H, W) in [0, 1]
            video_frames = postprocess_frames(edited, output_type)

        # 8. Sound: regenerated for the edited frames (the generator continues), or the input's own, fitted to exactly
        #    AVClock(fps, sample_rate).num_samples(F) samples; AAC decoding may overshoot full scale a little, which no
        #    writer accepts, so the kept track is clipped to [-1, 1]
        audio, sample_rate, audio_entries = None, None, [{}] * total
        if regenerate_audio:
            audio_prompts = self._audio_prompts(audio_prompt, prompts, batch_size, num_videos_per_prompt)
            audio_options = {} if audio_guidance_scale is None else {"guidance_scale": audio_guidance_scale}
            audio_num_inference_steps = audio_num_inference_steps or num_inference_steps
            sound = self.video_to_audio(
                edited, prompt=audio_prompts, fps=fps, num_inference_steps=audio_num_inference_steps,
                generator=generator, output_type="pt" if output_type == "pt" else "np",
                max_sequence_length=max_sequence_length, **audio_options,
            )  # fmt: skip
            audio, sample_rate = sound.audio, sound.sample_rate  # (B*n, 1, S)
            audio_entries = [
                {"audio_prompt": entry["prompt"], "audio_num_inference_steps": audio_num_inference_steps,
                 "audio_guidance_scale": float(entry["guidance"])}
                for entry in sound.metadata
            ]  # fmt: skip
        elif source_audio is not None:
            kept = AVClock(fps, source_sample_rate).fit_audio(np.clip(source_audio, -1, 1), num_frames)  # (C, S)
            audio, sample_rate = np.repeat(kept[None], total, axis=0), source_sample_rate  # (B*n, C, S)
            audio = torch.from_numpy(audio) if output_type == "pt" else audio
        self.maybe_free_model_hooks()

        # 9. Output, with the provenance of each video
        if not return_dict:
            return (video_frames, audio)
        instructions = [p for p in prompts for _ in range(num_videos_per_prompt)] if prompts is not None else None
        metadata = self._metadata(
            instructions, total, generator if seeded else None, num_inference_steps, regenerate_audio, strength
        )
        for entry, audio_entry in zip(metadata, audio_entries):
            entry.update(audio_entry)
        return AVGenOutput(frames=video_frames, audio=audio, fps=fps, sample_rate=sample_rate, metadata=metadata)

    def _metadata(
        self, instructions, total: int, generator, num_inference_steps: int, regenerate_audio: bool, strength: float
    ) -> list[dict]:
        """Provenance of each of the `total` output videos (stored as MP4 tags by AVGenOutput.save); `instructions`
        has one entry per output, or is None (prompt_embeds)."""
        if isinstance(generator, list):
            seeds = [g.initial_seed() for g in generator]
        else:  # one generator drew the whole batch: its seed and the video's index reproduce it
            seeds = [None if generator is None else generator.initial_seed()] * total
        metadata = []
        for index in range(total):
            entry = {
                "generator": "avgen",
                "model_version": avgen.__version__,
                "pipeline": type(self).__name__,
                "num_inference_steps": num_inference_steps,
                "guidance_scale": self.guidance_scale,
                "video_guidance_scale": self.video_guidance_scale,
                "strength": float(strength),
                "regenerate_audio": regenerate_audio,
            }
            if instructions is not None:
                entry["instruction"] = instructions[index]
            if seeds[index] is not None:
                entry["seed"] = seeds[index]
            metadata.append(entry)
        return metadata
