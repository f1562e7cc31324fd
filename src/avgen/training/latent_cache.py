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
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from avgen.clock import MOVIEGEN_DURATIONS


def build_latent_cache(
    vae,
    out_dir: str | Path,
    num_shards: int,
    shard_size: int = 32,
    formats: Sequence[tuple[float, int]] = MOVIEGEN_DURATIONS,
    resolution: int = 64,
    seed: int = 0,
    batch_size: int = 4,
    progress: bool = True,
) -> Path:
    """Render and encode clips into `num_shards` shards (skipping the shards already written)."""
    from avgen.world import render_clip
    from avgen.world.spec import sample_spec

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vae.eval()
    for index in range(num_shards):
        path = out_dir / f"shard-{index:05d}.safetensors"
        if path.exists():
            continue
        duration, fps = formats[index % len(formats)]
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
        specs = [sample_spec(rng, held_out=False, resolution=resolution, fps=fps, duration=float(duration)) for _ in range(shard_size)]
        latents = []
        for start in range(0, shard_size, batch_size):
            frames = np.stack([render_clip(spec).frames for spec in specs[start : start + batch_size]])  # (b, F, H, W, 3)
            x = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).to(vae.device).float() / 127.5 - 1  # (b, 3, F, H, W)
            with torch.no_grad(), torch.autocast(vae.device.type, dtype=torch.bfloat16):
                latents.append(vae.encode(x).latent_dist.mode().float().cpu())
        metadata = {"specs": json.dumps([spec.to_dict() for spec in specs]), "duration": str(duration), "fps": str(fps)}
        tmp = path.with_name(f".{path.name}.partial")
        save_file({"latents": torch.cat(latents).half().contiguous()}, tmp, metadata=metadata)
        os.replace(tmp, path)
        if progress:
            print(f"latent cache: {path.name} ({shard_size} clips, {duration:g} s at {fps} fps)", flush=True)
    return out_dir


def read_shard(path: str | Path) -> tuple[torch.Tensor, list[dict], int]:
    """latents (N, C, F', H', W') float16, the N spec dicts, fps."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        latents = f.get_tensor("latents")
    return latents, json.loads(metadata["specs"]), int(metadata["fps"])


class LatentCacheDataset(torch.utils.data.IterableDataset):
    """Cached clips forever, shard by shard in a seeded random order (so consecutive items share a format
    and batch together), clips of a shard shuffled. Ranks and workers read disjoint shards. Items:
    latents (C, F', H', W') float32, fps, spec (dict); `text` is a freshly drawn training caption."""

    def __init__(self, cache_dir: str | Path, seed: int, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.paths = sorted(Path(cache_dir).glob("shard-*.safetensors"))
        if not self.paths:
            raise FileNotFoundError(f"{cache_dir} holds no shard-*.safetensors (build it with `avgen train-cache`)")
        self.seed, self.rank, self.world_size = seed, rank, world_size

    def __iter__(self):
        from avgen.world.captions import caption
        from avgen.world.spec import ClipSpec

        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        reader, readers = self.rank * workers + worker, self.world_size * workers
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(reader,)))
        while True:
            order = rng.permutation(len(self.paths))
            for index in order[reader::readers] if len(order) >= readers else order:  # too few shards: share
                latents, specs, fps = read_shard(self.paths[index])
                for i in rng.permutation(len(specs)):
                    spec = specs[i]
                    yield {"latents": latents[i].float(), "fps": fps, "spec": spec,
                           "text": caption(ClipSpec.from_dict(spec), rng, "train")}
