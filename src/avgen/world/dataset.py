"""Torch datasets: the world's unbounded stream of training clips, and a folder of the user's own MP4s.

Items are dicts. Frames are torch.uint8 (F, 3, H, W): a quarter of the bytes of float32 between the
DataLoader workers and the trainer; convert with `frames.float() / 255` on the device. Audio is
float32 (1, S) in [-1, 1] and lasts exactly as long as the video.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from avgen.clock import MOVIEGEN_DURATIONS
from avgen.world.captions import caption
from avgen.world.edits import sample_edit_pair
from avgen.world.spec import DEFAULT_SAMPLE_RATE, ClipSpec, SubjectSpec, sample_spec

METADATA_NAME = "metadata.jsonl"


def _render(spec: ClipSpec):
    from avgen.world import render_clip  # imported late: the renderer is only needed when clips are drawn

    return render_clip(spec)


def render_clip_frames(spec: ClipSpec, window: tuple[int, int] | None = None) -> np.ndarray:
    """The frames (F, H, W, 3) uint8 of `spec` alone, or of its frames window[0]..window[1]-1: the synthesizer
    costs about as much as the renderer, and video-only work (the autoencoder, the latent cache) never reads the sound."""
    from avgen.world import render_frames, simulate

    sim = simulate(spec)
    return render_frames(sim.window(*window) if window else sim)


def _frames(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()  # (F, H, W, 3) -> (F, 3, H, W)


class SampledStream(torch.utils.data.IterableDataset):
    """An unbounded, reproducible stream of `self.sample(rng)` items. Every (rank, DataLoader worker) draws its own
    stream from SeedSequence(seed, spawn_key=(rank, worker)), so the streams are disjoint and the same for the same
    seed, whatever the number of workers. Subclasses set `seed` and `rank` and define `sample`."""

    seed: int
    rank: int

    def rng(self, worker: int = 0) -> np.random.Generator:
        """The generator of one (rank, worker) stream."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(self.rank, worker)))

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = self.rng(info.id if info is not None else 0)
        while True:
            yield self.sample(rng)

    def sample(self, rng: np.random.Generator) -> dict:
        raise NotImplementedError


class WorldDataset(SampledStream):
    """An unbounded, reproducible stream of rendered training clips (never a held-out pair, train captions),
    one stream per (rank, DataLoader worker) as every SampledStream.

    formats: (duration in seconds, fps) options, one drawn uniformly per clip (default: Movie Gen's two).
    edits: yield edit pairs instead of clips: "frames"/"audio" are the target, "source_frames"/
        "source_audio" the source, "text" the instruction, "kind" the edit kind, "source_spec" the source.
    window_frames: yield a random window of this many frames of each clip (video only, include_audio=False),
        rendered alone: what the autoencoder trains on, at a fraction of the whole clip's cost.
    rank/world_size: the distributed process; by default read from torch.distributed when initialised.
    """

    def __init__(
        self,
        seed: int = 0,
        resolution: int = 64,
        formats: Sequence[tuple[float, int]] = MOVIEGEN_DURATIONS,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        include_audio: bool = True,
        edits: bool = False,
        fps_tag: bool = False,
        second_subject_prob: float = 0.15,
        window_frames: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        super().__init__()
        if not formats:
            raise ValueError("formats must list at least one (duration, fps) option")
        for duration, fps in formats:  # a ClipSpec validates resolution, fps, duration and sample_rate
            ClipSpec(SubjectSpec("ball", "red", "bouncing", "left"), resolution=resolution, fps=fps, duration=float(duration), sample_rate=sample_rate)
        if window_frames is not None:
            shortest = min(int(round(d * f)) for d, f in formats)
            if include_audio or edits or not 1 <= window_frames <= shortest:
                raise ValueError(f"window_frames is for video-only clips of at least that many frames (here {shortest}); "
                                 f"got {window_frames} with include_audio={include_audio}, edits={edits}")
        if not 0.0 <= second_subject_prob <= 1.0:
            raise ValueError(f"second_subject_prob must be in [0, 1]; got {second_subject_prob!r}")
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = rank if rank is not None else (torch.distributed.get_rank() if distributed else 0)
        world_size = world_size if world_size is not None else (torch.distributed.get_world_size() if distributed else 1)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}); got {rank}")
        self.seed, self.resolution, self.formats = seed, resolution, [(float(d), int(f)) for d, f in formats]
        self.sample_rate, self.include_audio, self.edits, self.fps_tag = sample_rate, include_audio, edits, fps_tag
        self.second_subject_prob, self.rank, self.world_size = second_subject_prob, rank, world_size
        self.window_frames = window_frames

    def sample(self, rng: np.random.Generator) -> dict:
        """One item drawn with `rng`."""
        duration, fps = self.formats[rng.integers(len(self.formats))]
        options = dict(resolution=self.resolution, fps=fps, duration=duration, sample_rate=self.sample_rate,
                       second_subject_prob=self.second_subject_prob)
        if not self.edits:
            spec = sample_spec(rng, held_out=False, **options)
            return {**self._clip(spec, rng), "text": caption(spec, rng, "train", self.fps_tag), "spec": spec.to_json()}
        pair = sample_edit_pair(rng, split="train", **options)
        source = {f"source_{key}": value for key, value in self._clip(pair.source).items() if key in ("frames", "audio")}
        return {**self._clip(pair.target), **source, "text": pair.instruction, "kind": pair.kind,
                "spec": pair.target.to_json(), "source_spec": pair.source.to_json()}

    def _clip(self, spec: ClipSpec, rng: np.random.Generator | None = None) -> dict:
        if not self.include_audio:
            window = None
            if self.window_frames is not None:
                start = int(rng.integers(0, spec.num_frames - self.window_frames + 1))
                window = (start, start + self.window_frames)
            return {"frames": _frames(render_clip_frames(spec, window)), "fps": spec.fps, "sample_rate": spec.sample_rate}
        clip = _render(spec)
        audio = torch.from_numpy(np.asarray(clip.audio, dtype=np.float32)).reshape(1, -1)
        return {"frames": _frames(clip.frames), "fps": clip.fps, "sample_rate": clip.sample_rate, "audio": audio}


class VideoFolderDataset(torch.utils.data.Dataset):
    """A folder of MP4s with a `metadata.jsonl` (the Hugging Face folder convention): one JSON object per
    line with `file_name` (relative to the folder) and `text`; other keys are kept in "metadata".

    resolution: centre-crop every frame to a square and resize it to resolution x resolution.
    num_frames: keep the first num_frames frames (a clip with fewer is an error, not padded).
    sample_rate: the audio is mixed to mono and resampled to it; a video without sound gets silence and
        "has_audio" False, so that items of a folder always batch together.
    Items: frames uint8 (F, 3, H, W), audio float32 (1, S) with S = round(F * sample_rate / fps), text,
    fps (float, as decoded), sample_rate, has_audio, file_name, metadata (JSON string).
    """

    def __init__(self, root: str | Path, resolution: int | None = None, num_frames: int | None = None,
                 sample_rate: int = DEFAULT_SAMPLE_RATE):
        self.root = Path(root)
        for name, value in (("resolution", resolution), ("num_frames", num_frames)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int or None; got {value!r}")
        if not isinstance(sample_rate, int) or sample_rate < 1:
            raise ValueError(f"sample_rate must be a positive int; got {sample_rate!r}")
        self.resolution, self.num_frames, self.sample_rate = resolution, num_frames, sample_rate
        self.records = read_metadata(self.root)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        from avgen.muxer import read_video

        record = self.records[index]
        video = read_video(self.root / record["file_name"])
        frames = video.frames
        if self.num_frames is not None:
            if len(frames) < self.num_frames:
                raise ValueError(f"{record['file_name']} has {len(frames)} frames, fewer than num_frames={self.num_frames}")
            frames = frames[: self.num_frames]
        frames = _frames(frames)
        if self.resolution is not None:
            frames = _square(frames, self.resolution)
        num_samples = round(len(frames) * self.sample_rate / video.fps)
        if video.audio is None:
            audio = torch.zeros(1, num_samples)
        else:
            audio = torch.from_numpy(video.audio).float().mean(0, keepdim=True)  # (C, S) -> mono (1, S)
            if video.sample_rate != self.sample_rate:
                import torchaudio

                audio = torchaudio.functional.resample(audio, video.sample_rate, self.sample_rate)
            audio = torch.nn.functional.pad(audio[:, :num_samples], (0, max(0, num_samples - audio.shape[1])))
        extra = {key: value for key, value in record.items() if key not in ("file_name", "text")}
        return {"frames": frames, "audio": audio, "text": record["text"], "fps": float(video.fps),
                "sample_rate": self.sample_rate, "has_audio": video.audio is not None,
                "file_name": record["file_name"], "metadata": json.dumps(extra, sort_keys=True)}


def _square(frames: torch.Tensor, resolution: int) -> torch.Tensor:
    """Centre-crop (F, 3, H, W) uint8 frames to a square and resize them to resolution x resolution."""
    height, width = frames.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    frames = frames[..., top : top + side, left : left + side]
    if side == resolution:
        return frames.contiguous()
    resized = torch.nn.functional.interpolate(frames.float(), size=(resolution, resolution), mode="bilinear",
                                              antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


def read_metadata(root: str | Path) -> list[dict]:
    """The records of `root/metadata.jsonl`, checked: every line a JSON object with a string `file_name`
    naming an existing file and a string `text`. Blank lines are skipped."""
    root = Path(root)
    path = root / METADATA_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{root} has no {METADATA_NAME} (one JSON object per line with 'file_name' and 'text')")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} line {number}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path} line {number}: expected a JSON object, got {type(record).__name__}")
        for key in ("file_name", "text"):
            if not isinstance(record.get(key), str):
                raise ValueError(f"{path} line {number}: needs a string {key!r}")
        if not (root / record["file_name"]).is_file():
            raise FileNotFoundError(f"{path} line {number}: {record['file_name']!r} does not exist in {root}")
        records.append(record)
    if not records:
        raise ValueError(f"{path} lists no video")
    return records
