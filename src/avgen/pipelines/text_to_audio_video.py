"""Text -> video with synchronized sound: Movie Gen's cast (video model, spatial upsampler, audio model) as one
diffusers pipeline, AVGenPipeline, the package's main job.

It composes the stage pipelines, built from its own components (the same module objects, no copies), so each
stage's logic exists once: `text_to_video` (TextToVideoPipeline), `upsample` (UpsamplePipeline),
`video_to_audio` (VideoToAudioPipeline). For B prompts, n = num_videos_per_prompt, F frames of H x W at fps:

1. check: every stage's check_inputs, before any model runs (a bad audio argument fails before the video is
   generated); the frames do not exist yet, so the later stages check a (B*n, F, 3, 1, 1) stand-in.
2. video: prompts -> text_to_video -> frames (B*n, F, 3, H, W) in [0, 1] (H x W = 64 x 64 for the tiny preset).
3. upsample (optional): frames -> upsampler in time windows -> (B*n, F, 3, 2H, 2W).
4. audio (optional): the native H x W frames -> video_encoder features (B*n, F, D) -- the resolution the audio
   model was trained on (its frame_size is the video model's size; other sizes are resized to it) -- and
   audio_prompt (default: the prompt) -> audio (B*n, 1, S), S = AVClock(fps, sample_rate).num_samples(F)
   exactly.
5. AVGenOutput(frames, audio, fps, sample_rate, metadata); `.save("out.mp4")` writes H.264 + AAC with the
   provenance (generator "avgen", model version, prompt, seed; when upsampled, the upsampler's precision,
   "bf16" or "fp32") as MP4 tags.

Randomness: one generator (or one per clip) draws the video noise and then, continuing, the audio noise, so
a seed fixes the whole clip and a generator list gives each clip what generating it alone would.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.schedulers import FlowMatchEulerDiscreteScheduler
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..clock import check_fps
from ..models.autoencoder_audio import AudioAutoencoder
from ..models.autoencoder_video import TemporalAutoencoder
from ..models.text_encoder import DEFAULT_MAX_LENGTH
from ..models.transformer_audio import AudioTransformer
from ..models.transformer_video import VideoTransformer
from ..models.upsampler import SpatialUpsampler
from ..models.video_features import VideoFeatureEncoder
from ..outputs import AVGenOutput
from ..validation import check_number, check_texts
from ..vocabulary import checks_vocabulary
from .loading import Float32ByDefault, check_folder
from .text_to_video import TextToVideoPipeline, TextToVideoStage
from .upsample import UpsamplePipeline
from .video_input import FRAME_OUTPUT_TYPES, postprocess_frames
from .video_to_audio import VideoToAudioPipeline

# The shipped default model: a folder written by AVGenPipeline.save_pretrained, beside the package's source
# (src/avgen/pipelines/ -> the repository root), filled by `make weights`.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[3] / "weights" / "tiny"


def resolve_weights(path: str | os.PathLike | None = None, skip=()) -> str | os.PathLike:
    """What AVGenPipeline.from_pretrained loads: `path` (a pipeline folder or a hub id "owner/name"), or with None
    the shipped DEFAULT_WEIGHTS. Raises FileNotFoundError, saying how to get weights, when a folder holds none, and
    naming the missing folder or file when a component or its safetensors weights are missing (loading.check_folder;
    `skip`: components the caller passes in, not read from the folder)."""
    if path is None:
        if not (DEFAULT_WEIGHTS / "model_index.json").is_file():
            raise FileNotFoundError(
                f"the shipped weights are not in {str(DEFAULT_WEIGHTS)!r}: they are not trained yet (or this installed "
                "copy has no weights/ folder); train them with `make weights` in the repository, or pass a folder "
                "written by AVGenPipeline.save_pretrained"
            )
        return DEFAULT_WEIGHTS
    is_hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) and not str(path).startswith(".")
    if (Path(path).exists() or not is_hub_id) and not (Path(path) / "model_index.json").is_file():
        raise FileNotFoundError(f"no pipeline at {str(path)!r}: pass a folder written by AVGenPipeline.save_pretrained (or a hub id)")
    if Path(path).exists():
        check_folder(path, skip)
    return path


def _is_text(value, count: int) -> bool:
    """A string, or a list of `count` strings."""
    return isinstance(value, str) or (isinstance(value, list) and len(value) == count and all(isinstance(v, str) for v in value))


def _audio_texts(prompt, audio_prompt, audio_negative_prompt, repeats: int) -> tuple:
    """The audio stage's (prompt, negative_prompt), one entry per video when given per prompt (the `repeats`
    videos of a prompt next to each other); the audio prompt defaults to the prompt."""
    per_video = lambda texts: [t for t in texts for _ in range(repeats)] if isinstance(texts, list) else texts  # noqa: E731
    return per_video(prompt if audio_prompt is None else audio_prompt), per_video(audio_negative_prompt)


class AVGenPipeline(Float32ByDefault, TextToVideoStage, DiffusionPipeline):
    """Text -> video with synchronized sound (ambience, effects, music), optionally upsampled 2x.

    Components: tokenizer (shared by both text encoders), text_encoder, vae (TemporalAutoencoder),
    transformer (VideoTransformer), scheduler (FlowMatchEulerDiscreteScheduler, shared by both samplers: each
    stage sets its timesteps), audio_text_encoder, audio_vae (AudioAutoencoder), audio_transformer
    (AudioTransformer), video_encoder (VideoFeatureEncoder), upsampler (SpatialUpsampler, optional).
    vae_tile_latent_frames, vae_tile_overlap: the video decode's temporal tiles (TextToVideoPipeline).
    """

    model_cpu_offload_seq = (
        "text_encoder->transformer->vae->upsampler->video_encoder->audio_text_encoder->audio_transformer->audio_vae"
    )
    _optional_components = ["upsampler"]
    _callback_tensor_inputs = TextToVideoPipeline._callback_tensor_inputs  # callbacks run in the video stage

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: PreTrainedModel,
        vae: TemporalAutoencoder,
        transformer: VideoTransformer,
        scheduler: FlowMatchEulerDiscreteScheduler,
        audio_text_encoder: PreTrainedModel,
        audio_vae: AudioAutoencoder,
        audio_transformer: AudioTransformer,
        video_encoder: VideoFeatureEncoder,
        upsampler: SpatialUpsampler | None = None,
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
            upsampler=upsampler,
        )
        self.register_to_config(vae_tile_latent_frames=vae_tile_latent_frames, vae_tile_overlap=vae_tile_overlap)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None = None, **kwargs) -> AVGenPipeline:
        """diffusers' from_pretrained (a folder or a hub id); with no argument, the shipped weights (DEFAULT_WEIGHTS)."""
        return super().from_pretrained(resolve_weights(pretrained_model_name_or_path, skip=kwargs), **kwargs)

    # --- the stages: pipelines over this pipeline's own modules (text_to_video: TextToVideoStage) -------------
    @property
    def upsample(self) -> UpsamplePipeline:
        if self.upsampler is None:
            raise ValueError("this pipeline has no upsampler; pass upsample=False, or load one that has it")
        return self._stage(UpsamplePipeline(self.upsampler))

    @property
    def video_to_audio(self) -> VideoToAudioPipeline:
        return self._stage(
            VideoToAudioPipeline(
                self.tokenizer, self.audio_text_encoder, self.audio_vae, self.audio_transformer, self.video_encoder,
                self.scheduler,
            )
        )  # fmt: skip

    # --- inputs ----------------------------------------------------------------------------------------
    def check_inputs(
        self,
        prompt,
        negative_prompt,
        audio_prompt,
        audio_negative_prompt,
        height,
        width,
        num_frames,
        duration,
        fps,
        num_inference_steps,
        audio_num_inference_steps,
        num_videos_per_prompt,
        generator,
        upsample,
        generate_audio,
        output_type,
        callback_on_step_end_tensor_inputs,
        max_sequence_length,
        audio_guidance_scale=3.0,
        audio_video_guidance_scale=1.0,
        guidance_scale=5.0,
    ) -> tuple[int, int]:
        """Every stage's checks, before any compute; a precise ValueError on a bad input, each argument checked once:
        the video stage checks the prompts, this pipeline the audio texts, the audio stage the rest of its
        arguments. Returns (F, fps)."""
        if prompt is None:
            raise ValueError("pass prompt: a string or a list of strings")
        if output_type not in FRAME_OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {FRAME_OUTPUT_TYPES}; got {output_type!r}")
        text_to_video = self.text_to_video
        text_to_video.check_inputs(
            prompt=prompt, negative_prompt=negative_prompt, height=height, width=width, num_frames=num_frames,
            duration=duration, fps=fps, num_inference_steps=num_inference_steps,
            num_videos_per_prompt=num_videos_per_prompt, generator=generator, output_type="pt",
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length, guidance_scale=guidance_scale,
        )  # fmt: skip
        fps = check_fps(fps)
        num_frames = text_to_video.resolve_num_frames(num_frames, duration, fps)
        batch_size = 1 if isinstance(prompt, str) else len(prompt)
        stand_in = torch.zeros(batch_size * num_videos_per_prompt, num_frames, 3, 1, 1)  # later stages read (B*n, F)
        if upsample:
            self.upsample.check_inputs(stand_in, fps=fps, window=None, output_type=output_type)
        if generate_audio:
            for name, value in (("audio_prompt", audio_prompt), ("audio_negative_prompt", audio_negative_prompt)):
                if value is not None and not _is_text(value, batch_size):
                    raise ValueError(f"{name} must be a string or a list of {batch_size} strings (one per prompt); got {value!r}")
                check_texts(name, value)  # valid Unicode; may be empty
            check_number("audio_guidance_scale", audio_guidance_scale, hint=" (<= 1 = off)")  # named as here, not as
            check_number("audio_video_guidance_scale", audio_video_guidance_scale, minimum=1, hint=" (1 = off)")  # the stage names them
            self.video_to_audio.check_inputs(
                stand_in, fps=fps, num_inference_steps=audio_num_inference_steps or num_inference_steps,
                generator=generator, guidance_scale=audio_guidance_scale, video_guidance_scale=audio_video_guidance_scale,
            )  # fmt: skip
        return num_frames, fps

    # --- sampling --------------------------------------------------------------------------------------
    @checks_vocabulary(texts=("prompt", "audio_prompt"))
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        audio_prompt: str | list[str] | None = None,
        audio_negative_prompt: str | list[str] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_frames: int | None = None,
        duration: float | None = None,
        fps: int = 24,
        num_inference_steps: int = 50,
        audio_num_inference_steps: int | None = None,
        guidance_scale: float = 5.0,
        audio_guidance_scale: float = 3.0,
        audio_video_guidance_scale: float = 1.0,
        num_videos_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        upsample: bool | None = None,
        generate_audio: bool = True,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (diffusers' signature)
        max_sequence_length: int = DEFAULT_MAX_LENGTH,
    ) -> AVGenOutput | tuple:
        """Generate videos with sound from text.

        Args:
            prompt: what to see (and, unless audio_prompt is given, to hear); a string or a list.
            negative_prompt: what the video's guidance steers away from ("" by default).
            audio_prompt: the text of the audio model, e.g. "rain and calm piano music"; default: the prompt.
            audio_negative_prompt: what the audio's guidance steers away from ("" by default).
            height, width: frame size of the video model (default and maximum: what its positions cover, 64 x 64
                for the tiny preset); the output is twice that when upsampled.
            num_frames: frames per clip; or give `duration`. Default: Movie Gen's 10 s at 24 fps, 16 s at 16 fps.
            duration: seconds per clip (frames = round(duration * fps)); not together with num_frames.
            fps: frames per second, one of avgen.clock.SUPPORTED_FPS.
            num_inference_steps, audio_num_inference_steps: sampling steps of the video and the audio model
                (the audio's default: the video's).
            guidance_scale, audio_guidance_scale: classifier-free guidance of each model (<= 1: off).
            audio_video_guidance_scale: the audio model's guidance on the generated video (>= 1, 1 = off, the
                default; VideoToAudioPipeline's video_guidance_scale).
            num_videos_per_prompt: clips per prompt.
            generator: a torch.Generator, or one per clip; it draws the video's noise, then the audio's.
            upsample: 2x spatial upsampling of the frames; True needs an upsampler; None (default): when the
                pipeline has one.
            generate_audio: False returns silent clips (audio None) without running the audio models.
            output_type: "np" frames (B*n, F, H, W, 3) floats in [0, 1] and audio np (B*n, 1, S); "pt" frames
                (B*n, F, 3, H, W) and audio tensors; "pil" B*n lists of F images and audio np.
            return_dict: return an AVGenOutput, else the tuple (frames, audio).
            callback_on_step_end, callback_on_step_end_tensor_inputs: as in TextToVideoPipeline; called at the
                video model's steps, with the video stage's pipeline as its first argument.
            max_sequence_length: prompts are truncated to this many tokens.

        Returns:
            AVGenOutput with frames, audio (None without sound), fps, sample_rate and one metadata dict per clip.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs

        # 1. Check the inputs of every stage before any of them runs
        if upsample is None:
            upsample = self.upsampler is not None
        num_frames, fps = self.check_inputs(
            prompt=prompt, negative_prompt=negative_prompt, audio_prompt=audio_prompt,
            audio_negative_prompt=audio_negative_prompt, height=height, width=width, num_frames=num_frames,
            duration=duration, fps=fps, num_inference_steps=num_inference_steps,
            audio_num_inference_steps=audio_num_inference_steps, num_videos_per_prompt=num_videos_per_prompt,
            generator=generator, upsample=upsample, generate_audio=generate_audio, output_type=output_type,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length, audio_guidance_scale=audio_guidance_scale,
            audio_video_guidance_scale=audio_video_guidance_scale, guidance_scale=guidance_scale,
        )  # fmt: skip
        audio_num_inference_steps = audio_num_inference_steps or num_inference_steps
        stages = ["video"] + ["upsample"] * bool(upsample) + ["audio"] * bool(generate_audio)

        def stage(pipeline: DiffusionPipeline, name: str) -> DiffusionPipeline:  # "2/3 upsample" on its bar
            config = getattr(self, "_progress_bar_config", {})
            pipeline.set_progress_bar_config(**{**config, "desc": f"{stages.index(name) + 1}/{len(stages)} {name}"})
            return pipeline

        # 2. Video at the video model's resolution
        video = stage(self.text_to_video, "video")(
            prompt=prompt, negative_prompt=negative_prompt, height=height, width=width, num_frames=num_frames, fps=fps,
            num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
            num_videos_per_prompt=num_videos_per_prompt, generator=generator, output_type="pt",
            callback_on_step_end=callback_on_step_end, callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            max_sequence_length=max_sequence_length,
        )  # fmt: skip
        native = video.frames  # (B*n, F, 3, H, W) in [0, 1]

        # 3. Spatial upsampling, in time windows
        precision: dict[str, str] = {}  # the upsampler's bf16/fp32 choice, the one stage whose precision follows the machine
        if upsample:
            upsampled = stage(self.upsample, "upsample")(native, fps=fps, output_type=output_type)
            frames, precision = upsampled.frames, {"precision": upsampled.metadata[0]["precision"]}  # (B*n, F, 3, 2H, 2W)
        else:
            frames = postprocess_frames(native, output_type)

        # 4. Sound, from the native frames (the video features' training resolution); the generator continues
        audio = sample_rate = None
        metadata = [{**entry, "pipeline": type(self).__name__, "upsampled": bool(upsample), **precision} for entry in video.metadata]
        if generate_audio:
            texts, negative_texts = _audio_texts(prompt, audio_prompt, audio_negative_prompt, num_videos_per_prompt)
            sound = stage(self.video_to_audio, "audio")(
                native, prompt=texts, negative_prompt=negative_texts, fps=fps,
                num_inference_steps=audio_num_inference_steps, guidance_scale=audio_guidance_scale,
                video_guidance_scale=audio_video_guidance_scale, generator=generator, output_type="pt" if output_type == "pt" else "np",
                max_sequence_length=max_sequence_length,
            )  # fmt: skip
            audio, sample_rate = sound.audio, sound.sample_rate  # (B*n, 1, S)
            for entry, audio_entry in zip(metadata, sound.metadata):
                entry.update(
                    audio_prompt=audio_entry["prompt"],
                    audio_num_inference_steps=audio_num_inference_steps,
                    audio_guidance_scale=audio_guidance_scale,
                    audio_video_guidance_scale=audio_video_guidance_scale,
                )
        self.maybe_free_model_hooks()

        if not return_dict:
            return (frames, audio)
        return AVGenOutput(frames=frames, audio=audio, fps=fps, sample_rate=sample_rate, metadata=metadata)
