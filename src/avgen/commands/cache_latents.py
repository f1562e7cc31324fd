"""`avgen cache-latents VAE OUT_DIR --shards N`: encode world clips (or with --edits the world's edit pairs) once
into a latent cache for the video models' training (avgen/training/latent_cache.py); resumable."""

from __future__ import annotations

import argparse

import torch

from avgen.models.autoencoder_video import TemporalAutoencoder
from avgen.training.latent_cache import build_latent_cache


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vae", help="a trained TemporalAutoencoder folder (e.g. weights/tiny/vae)")
    parser.add_argument("out_dir", help="the cache folder (resumed if it exists)")
    parser.add_argument("--shards", type=int, required=True, help="number of shards to have in the end")
    parser.add_argument("--shard-size", type=int, default=32, help="clips per shard")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--edits", action="store_true", help="cache the world's edit pairs (source and target)")
    parser.add_argument("--workers", type=int, default=0, help="processes rendering clips beside the encoder")


def run(args: argparse.Namespace) -> int:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    vae = TemporalAutoencoder.from_pretrained(args.vae, torch_dtype=torch.float32).to(device)
    build_latent_cache(vae, args.out_dir, args.shards, args.shard_size, resolution=args.resolution, seed=args.seed,
                       edits=args.edits, workers=args.workers)
    return 0
