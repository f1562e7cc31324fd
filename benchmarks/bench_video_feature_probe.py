"""Do the audio model's video features say *when* things happen? A linear probe on frozen features.

Foley sync (events with a generated onset within +-1 frame) is far below its target. Before changing the
sound models, this asks which part limits it: if a linear read-out of the per-frame video features
(VideoFeatureEncoder, frozen) already finds the world's visual events within a frame, the timing is in
the features and the bottleneck is downstream (the audio transformer or its sampling).

Method: training-stream world clips (5 s at 24 fps, never held-out pairs) -> shipped video encoder ->
features (F, D). Each frame's probe input is the features of frames t-2..t+2 (5 D), standardised; the
labels are the world's ground-truth contact / footstep / flash frames (the same targets as the v2a task's
auxiliary event loss). One logistic regression per kind (full batch, Adam) on `--train` clips; on
`--test` other clips a frame is detected where the probability is a local maximum above 0.5. Reported per
kind: events with a detection within +-1 frame, detections with no event within +-1 frame. The same probe
on a randomly initialised encoder of the same shape is the baseline (what the architecture gives for free).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video_feature_probe.py [--train 300 --test 100]
Writes benchmarks/results/video_feature_probe.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avgen.models import VideoFeatureEncoder
from avgen.training.tasks import VideoToAudioTask
from avgen.world.dataset import WorldDataset

ROOT = Path(__file__).resolve().parents[1]
KINDS = VideoToAudioTask.EVENT_KINDS
CONTEXT = 2  # frames either side in the probe input


@torch.no_grad()
def clip_features(encoders: dict, item: dict) -> dict:
    """{name: (F, (2 CONTEXT + 1) D) features of frames t-CONTEXT..t+CONTEXT} for one clip."""
    video = item["frames"].permute(1, 0, 2, 3)[None].float() / 127.5 - 1  # (1, 3, F, H, W)
    out = {}
    for name, encoder in encoders.items():
        features = encoder(video)[0]  # (F, D)
        padded = torch.cat([features[:1].expand(CONTEXT, -1), features, features[-1:].expand(CONTEXT, -1)])
        out[name] = torch.cat([padded[i : i + features.shape[0]] for i in range(2 * CONTEXT + 1)], dim=1)
    return out


def fit_probe(x: torch.Tensor, y: torch.Tensor, steps: int = 600) -> torch.nn.Linear:
    """Logistic regression (x (N, D) standardised, y (N, K) 0/1), positives weighted 10x as in the v2a task's
    event loss (events are ~2-5 % of frames; unweighted, few probabilities would pass 0.5)."""
    torch.manual_seed(0)
    probe = torch.nn.Linear(x.shape[1], y.shape[1])
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
    pos_weight = torch.full((y.shape[1],), 10.0)
    for _ in range(steps):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(probe(x), y, pos_weight=pos_weight).backward()
        optimizer.step()
    return probe


def detections(probability: np.ndarray) -> np.ndarray:
    """Frames where a (F,) probability is above 0.5 and a local maximum (ties: the first)."""
    left = np.concatenate([[-1.0], probability[:-1]])
    right = np.concatenate([probability[1:], [-1.0]])
    return np.flatnonzero((probability > 0.5) & (probability > left) & (probability >= right))


def score(probability: np.ndarray, labels: np.ndarray, clip_lengths: list[int]) -> dict:
    """Per kind: events, events with a detection within +-1 frame, detections with no event within +-1 frame."""
    out, start = {kind: {"events": 0, "hit": 0, "false_detections": 0} for kind in KINDS}, 0
    for length in clip_lengths:
        for k, kind in enumerate(KINDS):
            events = np.flatnonzero(labels[start : start + length, k])
            found = detections(probability[start : start + length, k])
            out[kind]["events"] += len(events)
            out[kind]["hit"] += int(sum(np.any(np.abs(found - e) <= 1) for e in events))
            out[kind]["false_detections"] += int(sum(not np.any(np.abs(events - d) <= 1) for d in found))
        start += length
    for figures in out.values():
        figures["within_one_frame"] = figures["hit"] / figures["events"] if figures["events"] else None
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=Path, default=ROOT / "weights" / "tiny")
    parser.add_argument("--train", type=int, default=300, help="clips the probe is fitted on")
    parser.add_argument("--test", type=int, default=100, help="other clips it is judged on")
    parser.add_argument("--seed", type=int, default=4321)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    start = time.time()
    trained = VideoFeatureEncoder.from_pretrained(args.weights / "video_encoder").eval()
    torch.manual_seed(0)
    encoders = {"shipped": trained, "random_init": VideoFeatureEncoder.from_config(trained.config).eval()}
    stream = WorldDataset(seed=args.seed, resolution=trained.config.frame_size, formats=[(5, 24)], include_audio=False)
    rng = stream.rng()
    splits = {}
    for split, count in (("train", args.train), ("test", args.test)):
        features, labels, lengths = {name: [] for name in encoders}, [], []
        for _ in range(count):
            item = stream.sample(rng)
            for name, value in clip_features(encoders, item).items():
                features[name].append(value)
            labels.append(VideoToAudioTask.event_targets(item))
            lengths.append(item["frames"].shape[0])
        splits[split] = ({name: torch.cat(value) for name, value in features.items()}, torch.cat(labels), lengths)
    results = {}
    for name in encoders:
        x_train, y_train, _ = splits["train"][0][name], splits["train"][1], splits["train"][2]
        mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
        probe = fit_probe((x_train - mean) / std, y_train)
        results[name] = {}
        for split, (features, labels, lengths) in splits.items():
            with torch.no_grad():
                probability = torch.sigmoid(probe((features[name] - mean) / std)).numpy()
            results[name][split] = score(probability, labels.numpy(), lengths)
        print(name, json.dumps(results[name]["test"]))
    report = {
        "what": "a linear probe (logistic regression on the features of frames t-2..t+2) on the frozen video features of the "
                "audio model: events of the world's ground truth with a probe detection within +-1 frame, and detections "
                "with no event within +-1 frame, on training-stream clips (5 s at 24 fps); random_init is the same "
                "encoder shape with random weights",
        "command": f"OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_video_feature_probe.py --train {args.train} "
                   f"--test {args.test} --seed {args.seed}",
        "weights": str(args.weights.relative_to(ROOT) if args.weights.is_relative_to(ROOT) else args.weights),
        "seconds": round(time.time() - start, 1),
        "results": results,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "video_feature_probe.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.results / 'video_feature_probe.json'} in {report['seconds']} s")


if __name__ == "__main__":
    main()
