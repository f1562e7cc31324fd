"""Data streams the tasks share beside the world's own (avgen.world.dataset): a user's folder read forever,
two streams mixed, and world clips rendered at two resolutions."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from avgen.world import render_frames, simulate
from avgen.world.dataset import SampledStream
from avgen.world.spec import WORLD_FPS, sample_spec


class LoopedFolder(torch.utils.data.IterableDataset):
    """A VideoFolderDataset read forever in a seeded shuffled order; every rank and worker takes its share."""

    def __init__(self, folder, seed: int, rank: int, world_size: int):
        super().__init__()
        self.folder, self.seed, self.rank, self.world_size = folder, seed, rank, world_size

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        shard, shards = self.rank * workers + worker, self.world_size * workers
        rng = np.random.default_rng(self.seed)
        while True:
            for index in rng.permutation(len(self.folder))[shard::shards]:
                yield self.folder[int(index)]


class MixedStreams(torch.utils.data.IterableDataset):
    """Items of `first`, replaced by the next item of `second` with probability `second_prob`."""

    def __init__(self, first, second, second_prob: float, seed: int):
        super().__init__()
        self.first, self.second, self.second_prob, self.seed = first, second, second_prob, seed

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        first, second = iter(self.first), iter(self.second)
        while True:
            yield next(second) if rng.random() < self.second_prob else next(first)


class PairedResolutions(SampledStream):
    """World clips rendered at `resolution` and at twice it (same spec otherwise): items "low" (F, 3, R, R)
    and "high" (F, 3, 2R, 2R) uint8. Formats: `seconds` at every world fps."""

    def __init__(self, seed: int, rank: int, world_size: int, resolution: int, seconds: float):
        super().__init__()
        self.seed, self.rank, self.resolution, self.seconds = seed, rank, resolution, seconds

    def sample(self, rng: np.random.Generator) -> dict:
        fps = WORLD_FPS[rng.integers(len(WORLD_FPS))]
        spec = sample_spec(rng, held_out=False, resolution=self.resolution, fps=fps, duration=self.seconds)
        low = render_frames(simulate(spec))
        high = render_frames(simulate(dataclasses.replace(spec, resolution=2 * self.resolution)))
        return {"low": _to_tensor(low), "high": _to_tensor(high)}


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (F, H, W, 3) -> (F, 3, H, W)
