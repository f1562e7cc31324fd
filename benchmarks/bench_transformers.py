"""Our video transformer against diffusers' own video transformers of the same size, and the machine's
matmul peak, in one run.

Peers are built from configs with random weights, at the width, depth, heads, FFN width and token count
of our `tiny` preset's transformer (960 video tokens = 10 s at 24 fps through the 4x8x8 TAE and 1x2x2
patches, plus a 120-token caption): diffusers' WanTransformer3DModel (same patchify and FFN width) and
LTXVideoTransformer3DModel (takes pre-patchified tokens; its GELU FFN is fixed at 4x width, so it does
more FFN work, reported as FLOPs beside the time). Same dtype, same threads, measurements interleaved
(round-robin) so that load from other processes hits every model alike; medians are reported, and
ratios to ours.

Also measures the machine's peak matmul rate (fp32 and bf16, large square matmuls), and counts every model's
FLOPs per forward and per training step (torch's FlopCounterMode, attention included): equal width, depth and
tokens is not equal work (our SwiGLU FFN has three matrices where Wan's GELU FFN has two), so each model's
achieved GFLOP/s and model FLOPs utilisation (MFU) are reported beside its time.

Pipeline overhead: the seconds a text-to-video pipeline spends outside its model calls (timesteps, latent
set-up, guidance arithmetic, scheduler steps, post-processing), ours (TextToVideoPipeline with the shipped
weights, `--pipeline`) against diffusers' WanPipeline built from configs with random weights: a
WanTransformer3DModel of our transformer's size and a small AutoencoderKLWan, prompt embeddings passed in (no
tokenizer or text encoder can be downloaded here). The same clip (10 s at 24 fps, 64 px: 60 x 8 x 8 latents,
960 tokens), steps and guidance on both, fp32; the time inside the transformer, the autoencoder's decode and the
text encoder is measured by hooks and subtracted from the call's wall time.

    .venv/bin/python benchmarks/bench_transformers.py [--repeats 7] [--batch 2] [--device cpu|cuda] [--overhead-steps 10]
Writes benchmarks/results/transformers_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from avgen.models.transformer_video import VideoTransformer
from avgen.precision import bf16_is_fast, device_name
from avgen.profiling import StageTimer, sync

ROOT = Path(__file__).resolve().parents[1]
TEXT_TOKENS = 120  # a typical caption in bytes (median ~119, see models/text_encoder.py)
PROMPT = "A red ball bounces to the right across a grassy field during a thunderstorm. Tracking shot. Calm piano music."


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
    channels = config["in_channels"]  # latent channels of the preset's video autoencoder
    latents = torch.randn(batch, channels, frames, height, width, device=device)
    if name == "avgen VideoTransformer":
        model = VideoTransformer(num_layers=layers, dim=dim, ffn_dim=ffn, num_attention_heads=heads, text_dim=config["text_dim"],
                                 in_channels=channels, out_channels=channels)
        mask = torch.ones(batch, TEXT_TOKENS, device=device)
        run = lambda: model(latents, text, timestep, 24, mask).sample  # noqa: E731
    elif name == "diffusers WanTransformer3DModel":
        from diffusers import WanTransformer3DModel

        model = WanTransformer3DModel(num_attention_heads=heads, attention_head_dim=dim // heads, in_channels=channels, out_channels=channels,
                                      text_dim=config["text_dim"], ffn_dim=ffn, num_layers=layers, freq_dim=256)
        run = lambda: model(latents, timestep * 1000, text).sample  # noqa: E731
    elif name == "diffusers LTXVideoTransformer3DModel":
        from diffusers import LTXVideoTransformer3DModel

        model = LTXVideoTransformer3DModel(in_channels=4 * channels, out_channels=4 * channels, patch_size=1, patch_size_t=1, num_attention_heads=heads,
                                           attention_head_dim=dim // heads, cross_attention_dim=dim, num_layers=layers,
                                           caption_channels=config["text_dim"])
        tokens = torch.randn(batch, frames * (height // 2) * (width // 2), 4 * channels, device=device)  # 1x2x2 patches, pre-patchified
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


def overhead_pipelines(config: dict, folder: Path, device) -> dict:
    """name -> (pipeline, call) for the overhead comparison: ours with the shipped weights, diffusers' Wan random."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    from avgen import AVGenPipeline

    ours = AVGenPipeline.from_pretrained(folder).text_to_video.to(device)
    heads, dim = config["num_attention_heads"], config["dim"]
    transformer = WanTransformer3DModel(num_attention_heads=heads, attention_head_dim=dim // heads, in_channels=16, out_channels=16,
                                        text_dim=config["text_dim"], ffn_dim=config["ffn_dim"], num_layers=config["num_layers"], freq_dim=256)
    # 8x space and 4x time like ours (3 down levels, 2 of them temporal); narrow, since its time is not what is measured
    vae = AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
    wan = WanPipeline(tokenizer=None, text_encoder=None, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0),
                      transformer=transformer).to(device)
    embeds = torch.randn(1, TEXT_TOKENS, config["text_dim"], device=device)
    calls = {
        "avgen TextToVideoPipeline": (ours, lambda steps: ours(PROMPT, duration=10, fps=24, num_inference_steps=steps, guidance_scale=5.0,
                                                                 generator=torch.Generator().manual_seed(0), output_type="np")),
        # 237 frames = 4 x 59 + 1: Wan's causal autoencoder gives the same 60 latent frames as our 240
        "diffusers WanPipeline": (wan, lambda steps: wan(prompt_embeds=embeds, negative_prompt_embeds=embeds, height=64, width=64,
                                                         num_frames=237, num_inference_steps=steps, guidance_scale=5.0,
                                                         generator=torch.Generator().manual_seed(0), output_type="np")),
    }  # fmt: skip
    for pipe, _ in calls.values():
        pipe.set_progress_bar_config(disable=True)
    return calls


def pipeline_overhead(config: dict, folder: Path, device, steps: int, repeats: int) -> list[dict]:
    calls = overhead_pipelines(config, folder, device)
    timers = {name: StageTimer(pipe, device, {"transformer": "models", "text_encoder": "models"},
                               {"vae.decode": "models", "transformer.prepare_conditions": "models"})
              for name, (pipe, _) in calls.items()}  # fmt: skip
    for _, call in calls.values():  # warm-up (our schedule needs 2 steps at least)
        call(2)
    walls, models = {name: [] for name in calls}, {name: [] for name in calls}
    for _ in range(repeats):  # interleaved, like the transformer timings
        for name, (_, call) in calls.items():
            timers[name].seconds["models"] = 0.0
            sync(device)
            start = time.perf_counter()
            call(steps)
            sync(device)
            walls[name].append(time.perf_counter() - start)
            models[name].append(timers[name].seconds["models"])
    rows = []
    for name in calls:
        overhead = [wall - model for wall, model in zip(walls[name], models[name])]
        rows.append({"pipeline": name, "steps": steps, "median_wall_s": float(np.median(walls[name])),
                     "median_model_s": float(np.median(models[name])), "median_overhead_s": float(np.median(overhead)),
                     "overhead_ms_per_step": 1e3 * float(np.median(overhead)) / steps})  # fmt: skip
    for row in rows:
        row["overhead_vs_ours"] = row["median_overhead_s"] / rows[0]["median_overhead_s"]
    return rows


def counted_flops(step, train: bool) -> float:
    """FLOPs of one forward (or training step: forward + backward) as torch's FlopCounterMode counts them, with
    attention on the math backend so that its matmuls are counted too (the fused CPU kernel is not)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        step(train, torch.float32)
    return float(counter.get_total_flops())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtypes", nargs="+", choices=("fp32", "bf16"), default=None,
                        help="default: fp32, and bf16 where it is fast (avgen.precision.bf16_is_fast; a CPU without bf16 "
                             "units emulates it ~40x slower than fp32, which would time the emulation, not the models)")
    parser.add_argument("--pipeline", type=Path, default=ROOT / "weights" / "tiny", help="AVGenPipeline folder (overhead)")
    parser.add_argument("--overhead-steps", type=int, default=10, help="sampling steps of each overhead call (0: skip it)")
    args = parser.parse_args()
    device = torch.device(args.device)
    preset = json.loads((ROOT / "pipelines/tiny/transformer/config.json").read_text())
    config = {**preset, "batch": args.batch}
    names = ("avgen VideoTransformer", "diffusers WanTransformer3DModel", "diffusers LTXVideoTransformer3DModel")
    peaks = {"fp32": matmul_peak(device, torch.float32), "bf16": matmul_peak(device, torch.bfloat16)}
    chosen = args.dtypes or ["fp32"] + (["bf16"] if bf16_is_fast(device) else [])
    dtypes = {key: {"fp32": torch.float32, "bf16": torch.bfloat16}[key] for key in chosen}
    models = {name: build(name, config, device) for name in names}
    tokens = 60 * 4 * 4
    counted = {(name, train): counted_flops(step, train) for name, (_, step) in models.items() for train in (False, True)}
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
                flops = counted[name, train]  # the same count for every model: what each really computes
                row |= {"model_tflops": flops / 1e12, "flops_vs_ours": flops / counted[names[0], train],
                        "achieved_gflop_per_s": flops / median / 1e9, "mfu": flops / median / peaks[dtype_name]}
                results.append(row)
    print(f"device {device}, batch {args.batch} x {tokens} video tokens + {TEXT_TOKENS} text tokens, "
          f"threads {torch.get_num_threads()}; matmul peak fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
    print(f"{'model':38s} {'dtype':5s} {'mode':10s} {'median s':>9s} {'x ours':>7s} {'params M':>8s} {'GFLOP':>7s} {'x ours':>7s} {'GFLOP/s':>8s} {'MFU':>6s}")
    for r in results:
        print(f"{r['model']:38s} {r['dtype']:5s} {r['mode']:10s} {r['median_s']:9.3f} {r['time_vs_ours']:7.2f} {r['params_M']:8.2f} "
              f"{1e3 * r['model_tflops']:7.2f} {r['flops_vs_ours']:7.2f} {r['achieved_gflop_per_s']:8.1f} {100 * r['mfu']:5.1f}%")
    overhead = pipeline_overhead(preset, args.pipeline, device, args.overhead_steps, args.repeats) if args.overhead_steps else []
    print(f"{'pipeline':38s} {'wall s':>7s} {'models s':>8s} {'overhead s':>10s} {'ms/step':>8s} {'x ours':>7s}")
    for r in overhead:
        print(f"{r['pipeline']:38s} {r['median_wall_s']:7.2f} {r['median_model_s']:8.2f} {r['median_overhead_s']:10.3f} "
              f"{r['overhead_ms_per_step']:8.1f} {r['overhead_vs_ours']:7.2f}")
    out = ROOT / "benchmarks" / "results" / f"transformers_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": device_name(device),
            "threads": torch.get_num_threads(), "batch": args.batch, "video_tokens": tokens, "text_tokens": TEXT_TOKENS,
            "repeats": args.repeats, "torch": torch.__version__, "matmul_peak_flops": peaks, "config": preset}
    out.write_text(json.dumps({"meta": meta, "results": results, "pipeline_overhead": overhead}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
