"""The one output class of every avgen pipeline, with `.save(path)`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from diffusers.utils import BaseOutput

from avgen import muxer


@dataclass
class AVGenOutput(BaseOutput):
    """Frames and sound of one or more generated clips.

    frames: the videos, in the layout of the pipeline's `output_type`:
        "np"  -> np.ndarray (B, F, H, W, 3) float in [0, 1], or uint8 where a pipeline passes its input video through
        "pt"  -> torch.Tensor (B, F, 3, H, W) float in [0, 1]
        "pil" -> list (B) of lists (F) of PIL images
        An unbatched clip ((F, H, W, 3) array or a list of PIL images) is accepted as B = 1.
    audio: np.ndarray or torch.Tensor (B, C, S) float in [-1, 1] with C in {1, 2}, or None (no sound).
    fps: frames per second of every clip.
    sample_rate: audio samples per second (None when there is no audio).
    metadata: one dict per clip (provenance: generator, model version, prompt, seed), stored in MP4s.
    """

    frames: Any
    audio: Any = None
    fps: int = 24
    sample_rate: int | None = None
    metadata: list[dict] | None = None

    @property
    def num_videos(self) -> int:
        return len(self._batched_frames())

    def _batched_frames(self) -> list:
        frames = self.frames
        if isinstance(frames, list):
            # a list of PIL lists (batched) or a single list of PIL images (one clip)
            return frames if frames and isinstance(frames[0], (list, tuple)) else [frames]
        ndim = frames.ndim
        if ndim == 4:
            return [frames]
        if ndim != 5:
            raise ValueError(f"frames must be (B, F, H, W, 3), (B, F, 3, H, W) or (F, H, W, 3); got shape {tuple(frames.shape)}")
        return list(frames)

    def video(self, index: int = 0) -> np.ndarray:
        """Clip `index` as (F, H, W, 3) uint8."""
        clips = self._batched_frames()
        if not -len(clips) <= index < len(clips):
            raise ValueError(f"index {index} is out of range: this output holds {len(clips)} clip(s)")
        clip = clips[index]
        if hasattr(clip, "permute") and clip.ndim == 4 and clip.shape[1] == 3 and clip.shape[-1] != 3:
            clip = clip.permute(0, 2, 3, 1)  # "pt" layout (F, 3, H, W) -> (F, H, W, 3)
        return muxer.as_uint8_frames(clip)

    def sound(self, index: int = 0) -> np.ndarray | None:
        """Audio of clip `index` as (C, S) float32, or None."""
        if self.audio is None:
            return None
        audio = self.audio
        if audio.ndim == 3:
            audio = audio[index]
        elif audio.ndim > 3:
            raise ValueError(f"audio must be (B, C, S), (C, S) or (S,); got shape {tuple(audio.shape)}")
        return muxer.as_audio(audio, self.sample_rate)[0]

    def save(
        self,
        path: str | os.PathLike,
        index: int | None = None,
        frame: int = 0,
        *,
        credentials="auto",
        include_prompt: bool = False,
        source: str | os.PathLike | None = None,
    ) -> Path:
        """Write clip `index` (may be omitted when the output holds one clip) to `path`:

        .mp4        -> H.264 + AAC video with sound (audio made exactly as long as the video), with the metadata
                       as MP4 tags and a signed C2PA manifest (content credentials, avgen.provenance);
        .wav/.flac  -> the audio alone;
        .png        -> the still frame number `frame`.
        credentials: what signs the manifest: "auto" (AVGEN_C2PA_CERT/AVGEN_C2PA_KEY, else a local development
            certificate), a provenance.Credentials, or None for no manifest.
        include_prompt: put the prompt in the manifest too (it is in the MP4 tags either way).
        source: the user's video an edit or Foley output started from: the manifest's parent ingredient.
        Writes are atomic; bad input (or credentials) raises ValueError before anything is written.
        """
        path = Path(path)
        if index is None:
            if self.num_videos != 1:
                raise ValueError(f"this output holds {self.num_videos} clips; pass index=0..{self.num_videos - 1}")
            index = 0
        elif not -self.num_videos <= index < self.num_videos:
            raise ValueError(f"index {index} is out of range: this output holds {self.num_videos} clip(s)")
        suffix = path.suffix.lower()
        if suffix in muxer.VIDEO_SUFFIXES:
            from avgen.provenance import signing_step

            metadata = self.metadata[index] if self.metadata else None
            sign = signing_step(metadata, credentials, include_prompt, source)
            return muxer.write_video(path, self.video(index), self.fps, self.sound(index), self.sample_rate, metadata, sign=sign)
        if suffix in muxer.AUDIO_SUFFIXES:
            if self.audio is None:
                raise ValueError(f"cannot write {str(path)!r}: this output has no audio")
            return muxer.write_audio(path, self.sound(index), self.sample_rate)
        if suffix in muxer.IMAGE_SUFFIXES:
            clip = self.video(index)
            if not -len(clip) <= frame < len(clip):
                raise ValueError(f"frame {frame} is out of range: the clip has {len(clip)} frames")
            return muxer.write_image(path, clip[frame])
        known = muxer.VIDEO_SUFFIXES + muxer.AUDIO_SUFFIXES + muxer.IMAGE_SUFFIXES
        raise ValueError(f"cannot write {str(path)!r}: unknown extension {path.suffix!r}; expected one of {known}")
