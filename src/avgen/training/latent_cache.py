"""A cache of TAE latents of world clips, so the video transformer's training does not re-encode video.

Encoding a 10 s 64x64 clip with the tiny TAE costs ~1 s on 2 CPU cores, as much as a whole transformer
step on a batch of 8; encoded once, a clip serves many steps, each with a freshly drawn caption of its
spec (the captions are paraphrases drawn at training time, not stored).

Layout: <cache>/shard-00000.safetensors ... each holding `shard_size` clips of one format (duration, fps):
    latents  (N, C, F', H', W') float16, the posterior mean (unscaled: the task multiplies by scaling_factor)
    metadata {"specs": JSON list of ClipSpec dicts, "duration", "fps", "vae": the autoencoder's path}
Shards are written atomically and skipped when present, so an interrupted build resumes where it stopped.
Shard i uses format i % len(formats) and the seed stream SeedSequence(seed, spawn_key=(i,)).
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from avgen import atomic
from avgen.clock import MOVIEGEN_DURATIONS
from avgen.precision import bf16_is_fast
from avgen.world.captions import caption
from avgen.world.dataset import render_clip_frames
from avgen.world.edits import sample_edit_pair
from avgen.world.spec import ClipSpec, sample_spec


def _encode(vae, specs: list, batch_size: int, pool=None) -> torch.Tensor:
    """Posterior means (N, C, F', H', W') of the clips of `specs`, rendered (in `pool` when given) and
    encoded `batch_size` at a time."""
    frames_all = pool.map(render_clip_frames, specs) if pool is not None else [render_clip_frames(spec) for spec in specs]
    latents = []
    for start in range(0, len(specs), batch_size):
        frames = np.stack(frames_all[start : start + batch_size])  # (b, F, H, W, 3)
        x = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).to(vae.device).float() / 127.5 - 1  # (b, 3, F, H, W)
        with torch.no_grad(), torch.autocast(vae.device.type, dtype=torch.bfloat16, enabled=bf16_is_fast(vae.device)):
            latents.append(vae.encode(x).latent_dist.mode().float().cpu())
    return torch.cat(latents)


def build_latent_cache(
    vae,
    out_dir: str | Path,
    num_shards: int,
    shard_size: int = 32,
    formats: Sequence[tuple[float, int]] = MOVIEGEN_DURATIONS,
    resolution: int = 64,
    seed: int = 0,
    batch_size: int = 4,
    edits: bool = False,
    progress: bool = True,
    workers: int = 0,
) -> Path:
    """Render and encode clips into `num_shards` shards (skipping the shards already written).

    edits: cache the world's edit pairs (train split) instead of clips: `latents` are the targets, and
    the shard also holds `source_latents` and, in its metadata, "source_specs", "instructions", "kinds".
    workers: processes rendering clips beside the encoder (0: render in this process).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vae.eval()
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 0 else None
    try:
        _build_shards(vae, out_dir, num_shards, shard_size, formats, resolution, seed, batch_size, edits, progress, pool)
    finally:
        if pool is not None:
            pool.close()
    return out_dir


def _build_shards(vae, out_dir, num_shards, shard_size, formats, resolution, seed, batch_size, edits, progress, pool):
    for index in range(num_shards):
        path = out_dir / f"shard-{index:05d}.safetensors"
        if path.exists():
            continue
        duration, fps = formats[index % len(formats)]
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        options = dict(resolution=resolution, fps=fps, duration=float(duration))
        metadata = {"duration": str(duration), "fps": str(fps)}
        if edits:
            pairs = [sample_edit_pair(rng, split="train", **options) for _ in range(shard_size)]
            specs = [pair.target for pair in pairs]
            tensors = {"source_latents": _encode(vae, [pair.source for pair in pairs], batch_size, pool).half().contiguous()}
            metadata.update(source_specs=json.dumps([pair.source.to_dict() for pair in pairs]),
                            instructions=json.dumps([pair.instruction for pair in pairs]),
                            kinds=json.dumps([pair.kind for pair in pairs]))
        else:
            specs = [sample_spec(rng, held_out=False, **options) for _ in range(shard_size)]
            tensors = {}
        tensors["latents"] = _encode(vae, specs, batch_size, pool).half().contiguous()
        metadata["specs"] = json.dumps([spec.to_dict() for spec in specs])
        tmp = path.with_name(f".{path.name}.partial")
        save_file(tensors, tmp, metadata=metadata)
        atomic.replace(tmp, path)
        if progress:
            print(f"latent cache: {path.name} ({shard_size} {'edit pairs' if edits else 'clips'}, {duration:g} s at {fps} fps)", flush=True)


def read_shard(path: str | Path) -> dict:
    """A shard's tensors (latents (N, C, F', H', W') float16, and source_latents for edit pairs) and its
    metadata with the JSON fields decoded: specs, fps, and for edit pairs source_specs, instructions, kinds."""
    with safe_open(str(path), framework="pt") as f:
        shard = {key: f.get_tensor(key) for key in f.keys()}
        metadata = f.metadata()
    for key in ("specs", "source_specs", "instructions", "kinds"):
        if key in metadata:
            shard[key] = json.loads(metadata[key])
    shard["fps"] = int(metadata["fps"])
    return shard


class LatentCacheDataset(torch.utils.data.IterableDataset):
    """Cached clips forever, shard by shard in a seeded random order (so consecutive items share a format
    and batch together), clips of a shard shuffled. Ranks and workers read disjoint shards. Items:
    latents (C, F', H', W') float32, fps, spec (dict), text: a freshly drawn training caption, or for an
    edit-pair cache the instruction, with source (C, F', H', W') and kind."""

    def __init__(self, cache_dir: str | Path, seed: int, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.paths = sorted(Path(cache_dir).glob("shard-*.safetensors"))
        if not self.paths:
            raise FileNotFoundError(f"{cache_dir} holds no shard-*.safetensors (build it with `avgen cache-latents`)")
        self.seed, self.rank, self.world_size = seed, rank, world_size

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        reader, readers = self.rank * workers + worker, self.world_size * workers
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(reader,)))
        while True:
            order = rng.permutation(len(self.paths))
            for index in order[reader::readers] if len(order) >= readers else order:  # too few shards: share
                shard = read_shard(self.paths[index])
                for i in rng.permutation(len(shard["specs"])):
                    item = {"latents": shard["latents"][i].float(), "fps": shard["fps"], "spec": shard["specs"][i]}
                    if "source_latents" in shard:
                        item.update(source=shard["source_latents"][i].float(), text=shard["instructions"][i], kind=shard["kinds"][i])
                    else:
                        item["text"] = caption(ClipSpec.from_dict(shard["specs"][i]), rng, "train")
                    yield item
