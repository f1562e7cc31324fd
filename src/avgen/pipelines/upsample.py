"""Spatial upsampling (Movie Gen's 768 px -> 1080p stage, ours 64 -> 128 px) as a diffusers pipeline.

Stages, for B clips of F frames of H x W:

1. video: a path (decoded with its fps and its sound), uint8 (F, H, W, 3) / (B, F, H, W, 3), float
   (B, F, 3, H, W) in [0, 1] or a list of PIL images (video_input.py).
2. time windows of `window` output frames; each reads `upsampler.temporal_margin` more frames on either
   side, so the stitched result equals the whole clip's at once while memory follows the window:
   frames (B, w + 2m, 3, H, W) in [0, 1] -> (B, 3, w + 2m, H, W) in [-1, 1] -> upsampler ->
   (B, 3, w + 2m, 2H, 2W) -> the window's w frames, clamped to [-1, 1].
3. frames (B, F, 3, 2H, 2W) in [0, 1] -> as `output_type` asks; a file's sound track is passed through.

Precision: bf16 autocast where it is fast (`avgen.precision.bf16_is_fast`: CUDA, CPUs with bf16 units, or as
AVGEN_PRECISION says), decided from the machine, not a timing, so one command gives one file; the choice is in
each clip's metadata ("precision": "bf16" or "fp32"), which `.save()` writes as an MP4 tag.
Measured on a 2-core CPU with AMX for the tiny preset (64x64 frames, 32-frame windows, the former Conv3d
layout of the model): 22-26 ms a frame against 57 ms in fp32; the output moves by at most 0.007 on [-1, 1],
under one uint8 level (0.0078). On a CPU without bf16 units (AVX2 only) bf16 is emulated and ~40x slower, so
fp32 is used there: on one AMD EPYC core, 27 ms a frame with the model's frames-in-the-batch layout, against
68 ms with the Conv3d one (50 frames at 64 px, both in one run).
"""

from __future__ import annotations

import torch
from diffusers.pipelines.pipeline_utils import DiffusionPipeline

from .. import __version__
from ..models.upsampler import SpatialUpsampler
from ..outputs import AVGenOutput
from ..precision import inference_precision
from .loading import Float32ByDefault
from .video_input import FRAME_OUTPUT_TYPES, describe_video, frames_to_tensor, load_video, postprocess_frames

# Output frames per time window. A tiny-preset window reads 32 + 2 x 9 frames: at 64 -> 128 px that is about
# 0.3 GB of activations in float32; the whole clip at once would grow with its length.
DEFAULT_WINDOW = 32


class UpsamplePipeline(Float32ByDefault, DiffusionPipeline):
    """Any video -> the same video at twice the width and height (SpatialUpsampler), sound kept.

    Components: upsampler (SpatialUpsampler).
    """

    model_cpu_offload_seq = "upsampler"

    def __init__(self, upsampler: SpatialUpsampler):
        super().__init__()
        self.register_modules(upsampler=upsampler)

    def check_inputs(self, video, fps, window, output_type) -> tuple[int, int, int]:
        """Raise a precise ValueError on any bad input, before anything is computed. Returns (B, F, fps)."""
        batch_size, num_frames, fps = describe_video(video, fps)
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be a positive number of frames or None (the whole clip); got {window!r}")
        if output_type not in FRAME_OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {FRAME_OUTPUT_TYPES}; got {output_type!r}")
        return batch_size, num_frames, fps

    @torch.no_grad()
    def __call__(
        self,
        video,
        fps: int | None = None,
        window: int | None = DEFAULT_WINDOW,
        output_type: str = "np",
        return_dict: bool = True,
    ) -> AVGenOutput | tuple:
        """Upsample `video` 2x in space.

        Args:
            video: a path to a video file (fps and sound read from it), uint8 np (F, H, W, 3) or (B, F, H, W, 3),
                a float tensor (B, F, 3, H, W) in [0, 1], or a list of PIL images (one clip).
            fps: frames per second of array/tensor/PIL video, one of clock.SUPPORTED_FPS (only stored in the
                output, for `.save()`); read from the file for paths.
            window: output frames per time window (memory follows it); None upsamples the whole clip at once.
                The result does not depend on it (to bf16 rounding).
            output_type: "np" (B, F, 2H, 2W, 3) floats in [0, 1], "pt" (B, F, 3, 2H, 2W) or "pil" (lists of images).
            return_dict: return an AVGenOutput, else the tuple (frames,).

        Returns:
            AVGenOutput with the frames, the file's sound (B, C, S) and sample rate (None for frames), fps, metadata.
        """
        # 1. Check inputs, then decode (uint8 stays uint8 until its window is converted)
        batch_size, num_frames, fps = self.check_inputs(video, fps, window, output_type)
        frames, audio, sample_rate = load_video(video)
        device = self._execution_device
        window = window or num_frames
        margin = self.upsampler.temporal_margin

        # 2. Windows with `margin` frames of context on each side (SpatialUpsampler.forward's exact tiling)
        upsampled = None  # (B, F, 3, 2H, 2W), filled window by window: no list of windows to concatenate (2x the frames)
        precision = inference_precision(device)  # "bf16" or "fp32", recorded in the metadata below
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        with self.progress_bar(total=-(-num_frames // window)) as progress_bar, autocast:
            for start in range(0, num_frames, window):
                stop = min(start + window, num_frames)
                first, last = max(0, start - margin), min(num_frames, stop + margin)
                chunk = frames_to_tensor(frames, first, last, device)  # (B, f, 3, H, W) in [0, 1]
                chunk = chunk.transpose(1, 2).mul(2).sub(1).to(self.upsampler.dtype)  # (B, 3, f, H, W) in [-1, 1]
                output = self.upsampler(chunk)[:, :, start - first : stop - first]  # (B, 3, w, 2H, 2W)
                output = output.float().clamp(-1, 1).add(1).div(2).transpose(1, 2)  # (B, w, 3, 2H, 2W) in [0, 1]
                if upsampled is None:
                    upsampled = torch.empty((batch_size, num_frames, *output.shape[2:]), device=output.device)
                upsampled[:, start:stop] = output
                progress_bar.update()
        self.maybe_free_model_hooks()

        # 3. Output frames and the file's own sound, which lasts as long as the frames (same fps, same count)
        video = postprocess_frames(upsampled, output_type)  # (B, F, ...)
        if audio is not None:
            audio = torch.from_numpy(audio[None]) if output_type == "pt" else audio[None]  # (1, C, S)
        if not return_dict:
            return (video,)
        provenance = {"generator": "avgen", "model_version": __version__, "pipeline": type(self).__name__, "precision": precision}
        metadata = [dict(provenance) for _ in range(batch_size)]
        return AVGenOutput(frames=video, audio=audio, fps=fps, sample_rate=sample_rate, metadata=metadata)
