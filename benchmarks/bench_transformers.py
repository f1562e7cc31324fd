"""Our video transformer against diffusers' own video transformers of the same size, and the machine's
matmul peak, in one run.

Peers are built from configs with random weights, at the width, depth, heads, FFN width and token count
of our `tiny` preset's transformer (960 video tokens = 10 s at 24 fps through the 4x8x8 TAE and 1x2x2
patches, plus a 120-token caption): diffusers' WanTransformer3DModel (same patchify and FFN width) and
LTXVideoTransformer3DModel (takes pre-patchified tokens; its GELU FFN is fixed at 4x width, so it does
more FFN work, reported as FLOPs beside the time). Same dtype, same threads, measurements interleaved
(round-robin) so that load from other processes hits every model alike; medians are reported, and
ratios to ours.

Also measures the machine's peak matmul rate (fp32 and bf16, large square matmuls) and reports our model
FLOPs utilisation (MFU) for inference and training steps.

    .venv/bin/python benchmarks/bench_transformers.py [--repeats 7] [--batch 2] [--device cpu|cuda]
Writes benchmarks/results/transformers_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from avgen.models.transformer_video import VideoTransformer, flops_per_token

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENS = 120  # a typical caption in bytes (median ~119, see models/text_encoder.py)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device, dtype, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` (size x size) @ (size x size) products."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def build(name: str, config: dict, device):
    """(model, step function taking `train: bool`) for one of the compared transformers."""
    dim, heads, layers, ffn = config["dim"], config["num_attention_heads"], config["num_layers"], config["ffn_dim"]
    frames, height, width = 60, 8, 8  # latent grid of 10 s at 24 fps, 64 px
    batch = config["batch"]
    text = torch.randn(batch, TEXT_TOKENS, config["text_dim"], device=device)
    timestep = torch.full((batch,), 0.5, device=device)
    latents = torch.randn(batch, 16, frames, height, width, device=device)
    if name == "avgen VideoTransformer":
        model = VideoTransformer(num_layers=layers, dim=dim, ffn_dim=ffn, num_attention_heads=heads, text_dim=config["text_dim"])
        mask = torch.ones(batch, TEXT_TOKENS, device=device)
        run = lambda: model(latents, text, timestep, 24, mask).sample  # noqa: E731
    elif name == "diffusers WanTransformer3DModel":
        from diffusers import WanTransformer3DModel

        model = WanTransformer3DModel(num_attention_heads=heads, attention_head_dim=dim // heads, in_channels=16, out_channels=16,
                                      text_dim=config["text_dim"], ffn_dim=ffn, num_layers=layers, freq_dim=256)
        run = lambda: model(latents, timestep * 1000, text).sample  # noqa: E731
    elif name == "diffusers LTXVideoTransformer3DModel":
        from diffusers import LTXVideoTransformer3DModel

        model = LTXVideoTransformer3DModel(in_channels=64, out_channels=64, patch_size=1, patch_size_t=1, num_attention_heads=heads,
                                           attention_head_dim=dim // heads, cross_attention_dim=dim, num_layers=layers,
                                           caption_channels=config["text_dim"])
        tokens = torch.randn(batch, frames * (height // 2) * (width // 2), 64, device=device)  # 1x2x2 patches, pre-patchified
        mask = torch.ones(batch, TEXT_TOKENS, device=device)
        run = lambda: model(tokens, text, timestep * 1000, mask, num_frames=frames, height=height // 2, width=width // 2).sample  # noqa: E731
    else:
        raise ValueError(name)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(train: bool, dtype):
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            if not train:
                with torch.no_grad():
                    run()
                return
            loss = run().float().pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return model, step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    preset = json.loads((ROOT / "pipelines/tiny/transformer/config.json").read_text())
    config = {**preset, "batch": args.batch}
    names = ("avgen VideoTransformer", "diffusers WanTransformer3DModel", "diffusers LTXVideoTransformer3DModel")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {key: matmul_peak(device, dtype) for key, dtype in dtypes.items()}
    models = {name: build(name, config, device) for name in names}
    tokens = 60 * 4 * 4
    ours_flops = flops_per_token(preset, tokens, TEXT_TOKENS) * tokens * args.batch  # forward FLOPs of one call
    results = []
    for dtype_name, dtype in dtypes.items():
        for train in (False, True):
            for name, (_, step) in models.items():  # warm-up
                step(train, dtype)
            times = {name: [] for name in names}
            for _ in range(args.repeats):  # round-robin: the same background load for every model
                for name, (_, step) in models.items():
                    sync(device)
                    start = time.perf_counter()
                    step(train, dtype)
                    sync(device)
                    times[name].append(time.perf_counter() - start)
            ours = float(np.median(times[names[0]]))
            for name in names:
                median = float(np.median(times[name]))
                row = {"model": name, "dtype": dtype_name, "mode": "train step" if train else "forward",
                       "median_s": median, "min_s": float(np.min(times[name])), "time_vs_ours": median / ours,
                       "params_M": sum(p.numel() for p in models[name][0].parameters()) / 1e6}
                if name == names[0]:
                    flops = ours_flops * (3 if train else 1)
                    row["model_tflops"] = flops / 1e12
                    row["mfu"] = flops / median / peaks[dtype_name]
                results.append(row)
    print(f"device {device}, batch {args.batch} x {tokens} video tokens + {TEXT_TOKENS} text tokens, "
          f"threads {torch.get_num_threads()}; matmul peak fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    print(f"{'model':38s} {'dtype':5s} {'mode':10s} {'median s':>9s} {'x ours':>7s} {'params M':>8s} {'MFU':>6s}")
    for r in results:
        mfu = f"{100 * r['mfu']:5.1f}%" if "mfu" in r else ""
        print(f"{r['model']:38s} {r['dtype']:5s} {r['mode']:10s} {r['median_s']:9.3f} {r['time_vs_ours']:7.2f} {r['params_M']:8.2f} {mfu:>6s}")
    out = ROOT / "benchmarks" / "results" / f"transformers_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine()),
            "threads": torch.get_num_threads(), "batch": args.batch, "video_tokens": tokens, "text_tokens": TEXT_TOKENS,
            "repeats": args.repeats, "torch": torch.__version__, "matmul_peak_flops": peaks, "config": preset}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
