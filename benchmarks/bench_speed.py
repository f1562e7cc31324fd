"""End-to-end speed of AVGenPipeline, split by stage, and how time and memory grow with duration.

    .venv/bin/python benchmarks/bench_speed.py [--pipeline weights/tiny] [--repeats 3] [--steps 50] [--compare-conditions]

1. Formats (Movie Gen's two: 10 s at 24 fps, the default, and 16 s at 16 fps): the whole clip with sound at
   the pipeline's defaults (50 steps each model, guidance on, 2x upsampler), written to an MP4. Each
   stage is timed by hooks on the pipeline's modules (no change to the pipeline): text encoders, video
   transformer (all its steps), video decode (TAE, tiled), upsampler, video features, audio transformer,
   audio decode, mux (AVGenOutput.save); "other" is the rest (scheduler, guidance arithmetic, tensor
   conversions). Seconds per generated second = seconds / clip duration (real time is 1.0). Each format is
   timed with the weights in fp32 and in bf16 (`from_pretrained(..., dtype=torch.bfloat16)`, what a
   user picks for speed where the CPU has bf16 matrix units, ~4x its fp32 rate there; a CPU without them
   (AVX2 only) emulates bf16 at ~1/40 of its fp32 rate, and the matmul peaks below show which it is).
2. Scaling: the text-to-video stage alone at 2, 4, 8, 16 s (16 fps: its positions cover 16 s), and the
   long-form paths at 2 ... 64 s on a given video (tiled decode is inside the first; the upsampler's time
   windows and the audio model's multi-diffusion windows in the second): time and peak memory, which
   should stay flat where the paths are windowed. With resolution: the text-to-video stage at 32 and 64 px
   (the tiny transformer's positions end at 64 px) and the upsampler at 32 ... 256 px input.

3. With --compare-conditions, each format is also run with the transformers' text and video conditions prepared at
   every step (avgen.profiling.conditions_per_step: what the pipelines did before issue 47) instead of once per
   call, interleaved with the per-call runs on the same machine: the ratios per-step / per-call of the total and
   of both transformer stages, and whether both wrote the same frames and audio (a hash of the arrays).

Every measurement runs in a fresh subprocess, so its peak resident memory (ru_maxrss; on CUDA the peak
allocated) is its own; repeats are interleaved across formats and the median is reported. The machine's
matmul peak is measured in the same run, giving the video transformer's model FLOPs utilisation.
Writes benchmarks/results/speed_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_transformers import PROMPT, matmul_peak  # noqa: E402  (benchmarks/ is not a package)

from avgen.precision import device_name  # noqa: E402
from avgen.profiling import PIPELINE_METHODS, PIPELINE_MODULES, PIPELINE_STAGES, StageTimer, conditions_per_step, sync  # noqa: E402

FORMATS = ("10@24", "16@16")
T2V_DURATIONS = (2, 4, 8, 16)  # at 16 fps: the tiny transformer's positions hold 64 latent frames = 16 s
LONG_FORM_DURATIONS = (2, 4, 8, 16, 32, 64)
# resolution (frame side in px): the text-to-video stage (the tiny transformer's positions hold 4 x 4 patches of
# 8 x 8 px latents: 64 px at most) at 16 fps, and the upsampler (any size) on 24 fps frames; --size-seconds long
T2V_SIZES = (32, 64)
UPSAMPLER_SIZES = (32, 64, 128, 256)
STAGES = PIPELINE_STAGES
CONDITIONS = ("per-call", "per-step")  # --compare-conditions: the transformers' conditions prepared once per call, or each step


class PipelineTimer(StageTimer):
    """AVGenPipeline's stages (STAGES) and the FLOPs of every video transformer call."""

    def __init__(self, pipe, device: torch.device):
        super().__init__(pipe, device, PIPELINE_MODULES, PIPELINE_METHODS, stages=STAGES)
        self.transformer_flops = 0.0  # forward FLOPs of every video transformer call (attention included)
        self.transformer_calls = 0  # its forwards (the stage's calls also count its once-per-call prepare_conditions)
        pipe.transformer.register_forward_pre_hook(self.count_flops, with_kwargs=True)

    def count_flops(self, module, args, kwargs) -> None:
        from avgen.models.transformer_video import flops_per_token

        batch, _, *grid = kwargs["hidden_states"].shape  # (B, C, F', H', W'): B = 2 clips per call under guidance
        tokens = int(np.prod(grid)) // int(np.prod(module.config.patch_size))
        text_tokens = kwargs["encoder_hidden_states"].shape[1]
        self.transformer_calls += 1
        prepared = kwargs.get("conditions") is not None  # the text's projection, keys and values: once per call, not counted
        self.transformer_flops += flops_per_token(module.config, tokens, text_tokens, prepared_text=prepared) * tokens * batch


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def parse_format(text: str) -> tuple[float, int]:
    seconds, fps = text.split("@")
    return float(seconds), int(fps)


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load(folder: Path, device: torch.device, dtype: str):
    from avgen import AVGenPipeline

    pipe = AVGenPipeline.from_pretrained(folder, dtype=DTYPES[dtype]).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def one_clip(args, device: torch.device) -> dict:
    """Child: one whole clip with sound at the defaults, timed by stage (conditions per call, or per step)."""
    duration, fps = parse_format(args.one)
    pipe = load(args.pipeline, device, args.dtype)
    per_step = conditions_per_step(pipe.transformer, pipe.audio_transformer) if args.conditions == "per-step" else contextlib.nullcontext()
    with per_step:
        timer = PipelineTimer(pipe, device)
        sync(device)
        start = time.perf_counter()
        output = pipe(PROMPT, duration=duration, fps=fps, num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0))
        sync(device)
    generated = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        timer.begin(("save", "mux"))
        output.save(Path(tmp) / "clip.mp4")
        timer.end(("save", "mux"))
    total = time.perf_counter() - start
    stages = dict(timer.seconds)
    stages["other"] = total - sum(stages.values())
    digest = hashlib.sha256(np.ascontiguousarray(output.frames).tobytes() + np.ascontiguousarray(output.audio).tobytes()).hexdigest()
    return {"format": args.one, "dtype": args.dtype, "conditions": args.conditions, "seconds": total, "generate_seconds": generated - start,
            "stages": stages, "transformer_calls": timer.transformer_calls, "transformer_flops": timer.transformer_flops,
            "peak_memory_mb": peak_memory_mb(device), "output_sha256": digest}  # fmt: skip


def one_scaling(args, device: torch.device) -> dict:
    """Child: one stage at one duration (`--scale t2v:SECONDS` or `long-form:SECONDS`), time and peak memory."""
    kind, value = args.scale.split(":")
    seconds = size = float(value)
    pipe = load(args.pipeline, device, args.dtype)
    generator = torch.Generator().manual_seed(0)
    sync(device)
    start = time.perf_counter()
    if kind == "t2v":
        pipe.text_to_video(PROMPT, duration=seconds, fps=16, num_inference_steps=args.steps, generator=generator)
    elif kind == "t2v size":
        seconds, size = args.size_seconds, int(size)
        pipe.text_to_video(PROMPT, duration=seconds, fps=16, height=size, width=size, num_inference_steps=args.steps, generator=generator)
    elif kind == "upsampler size":
        seconds, size = args.size_seconds, int(size)
        frames = torch.rand(1, round(seconds * 24), 3, size, size, generator=generator)  # (B, F, 3, H, W) in [0, 1]
        pipe.upsample(frames, fps=24, output_type="pt")
    else:  # the windowed paths on a given 64 px video at 24 fps: upsampler windows, then the audio's multi-diffusion
        frames = torch.rand(1, round(seconds * 24), 3, 64, 64, generator=generator)  # (B, F, 3, H, W) in [0, 1]
        if pipe.upsampler is not None:  # a pipeline without one (e.g. weights/tiny today) times the audio alone
            pipe.upsample(frames, fps=24, output_type="pt")
        pipe.video_to_audio(frames, fps=24, prompt="rain and calm piano music", num_inference_steps=args.steps, generator=generator)
    sync(device)
    row = {"kind": kind, "duration": seconds, "seconds": time.perf_counter() - start, "peak_memory_mb": peak_memory_mb(device)}
    return row | ({"size": size} if kind.endswith("size") else {})


def child(args, flag: str, value: str) -> dict:
    command = [sys.executable, __file__, flag, value, "--pipeline", str(args.pipeline), "--steps", str(args.steps), "--device", args.device,
               "--dtype", args.dtype, "--size-seconds", str(args.size_seconds), "--conditions", args.conditions]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare_conditions(runs: dict) -> list[dict]:
    """Per format and dtype: medians of the per-call and per-step runs (interleaved, same machine) and their ratios."""
    def seconds(rows: list[dict], stage: str) -> float:
        return float(np.median([row["seconds"] if stage == "total" else row["stages"][stage] for row in rows]))

    report = []
    for (text, dtype, conditions), per_call in runs.items():
        if conditions != "per-call":
            continue
        per_step = runs[text, dtype, "per-step"]
        row = {"format": text, "dtype": dtype, "identical_outputs": len({r["output_sha256"] for r in per_call + per_step}) == 1}
        for stage in ("total", "video transformer", "audio transformer"):
            call, step = seconds(per_call, stage), seconds(per_step, stage)
            row[stage] = {"per-call": call, "per-step": step, "ratio": step / call}
        report.append(row)
    return report


def markdown(report: dict) -> str:
    meta = report["meta"]
    lines = [f"Device: {meta['device']}, {meta['threads']} threads, torch {meta['torch']}; {meta['steps']} steps per model; "
             f"median of {meta['repeats']} runs. Matmul peak: fp32 {meta['matmul_peak_gflops']['fp32']:.0f}, "
             f"bf16 {meta['matmul_peak_gflops']['bf16']:.0f} GFLOP/s.", "",
             "| format | weights | seconds | s per generated s | " + " | ".join(STAGES) + " | other | peak memory MB | transformer MFU (fp32 peak) |",
             "|---" * (len(STAGES) + 7) + "|"]  # fmt: skip
    for row in report["formats"]:
        stages = " | ".join(f"{row['stages'][stage]:.1f}" for stage in STAGES)
        lines.append(f"| {row['format']} | {row['dtype']} | {row['seconds']:.1f} | {row['seconds_per_generated_second']:.2f} | {stages} | "
                     f"{row['stages']['other']:.1f} | {row['peak_memory_mb']:.0f} | {100 * row['transformer_mfu_fp32']:.1f} % |")  # fmt: skip
    for kind, title in (("t2v", "text-to-video alone, 16 fps"), ("long-form", "upsampler + audio on a given 24 fps video")):
        rows = [row for row in report["scaling"] if row["kind"] == kind]
        if rows:
            lines += ["", f"Scaling, {title}, {meta['scaling_dtype']} weights:", "", "| seconds of video | seconds taken | s per generated s | peak memory MB |", "|---|---|---|---|"]
            lines += [f"| {r['duration']:g} | {r['seconds']:.1f} | {r['seconds'] / r['duration']:.2f} | {r['peak_memory_mb']:.0f} |" for r in rows]
    if report.get("conditions"):
        lines += ["", "The transformers' text and video conditions prepared per step (as before issue 47) against once per call, "
                  "interleaved on this machine, medians; ratio = per-step / per-call:", "",
                  "| format | weights | total s per call / per step (ratio) | video transformer | audio transformer | same output |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for row in report["conditions"]:
            cells = [f"{row[stage]['per-call']:.2f} / {row[stage]['per-step']:.2f} ({row[stage]['ratio']:.3f})"
                     for stage in ("total", "video transformer", "audio transformer")]  # fmt: skip
            lines.append(f"| {row['format']} | {row['dtype']} | {' | '.join(cells)} | {'yes' if row['identical_outputs'] else 'NO'} |")
    for kind, title in (("t2v size", "text-to-video alone, 16 fps"), ("upsampler size", "upsampler alone, 24 fps")):
        rows = [row for row in report["scaling"] if row["kind"] == kind]
        if rows:
            lines += ["", f"Scaling with resolution, {title}, {rows[0]['duration']:g} s, {meta['scaling_dtype']} weights:", "",
                      "| frame side (px, input) | seconds taken | s per generated s | peak memory MB |", "|---|---|---|---|"]  # fmt: skip
            lines += [f"| {r['size']:g} | {r['seconds']:.1f} | {r['seconds'] / r['duration']:.2f} | {r['peak_memory_mb']:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", type=Path, default=ROOT / "weights" / "tiny", help="AVGenPipeline folder")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), help="SECONDS@FPS clips timed end to end")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES),
                        help="weights' dtype (from_pretrained dtype); each format is timed in each; scaling uses the first")
    parser.add_argument("--dtype", default="fp32", choices=list(DTYPES), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--steps", type=int, default=50, help="sampling steps of each model (the pipeline's default)")
    parser.add_argument("--t2v-durations", nargs="*", type=float, default=list(T2V_DURATIONS), help="scaling: text-to-video seconds (16 fps)")
    parser.add_argument("--long-form-durations", nargs="*", type=float, default=list(LONG_FORM_DURATIONS), help="scaling: upsampler + audio seconds (24 fps)")
    parser.add_argument("--size-seconds", type=float, default=4.0, help="scaling with resolution: seconds of video")
    parser.add_argument("--t2v-sizes", nargs="*", type=int, default=list(T2V_SIZES), help="scaling: text-to-video frame sides (px)")
    parser.add_argument("--upsampler-sizes", nargs="*", type=int, default=list(UPSAMPLER_SIZES), help="scaling: upsampler input frame sides (px)")
    parser.add_argument("--compare-conditions", action="store_true",
                        help="also run each format with the transformers' conditions prepared per step (before issue 47): ratios")
    parser.add_argument("--conditions", default="per-call", choices=CONDITIONS, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-size", type=int, default=2048, help="matrix size of the matmul peak measurement")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: one clip
    parser.add_argument("--scale", help=argparse.SUPPRESS)  # child process: one scaling point
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.one or args.scale:
        print(json.dumps(one_clip(args, device) if args.one else one_scaling(args, device)))
        return 0
    if not (args.pipeline / "model_index.json").is_file():
        parser.error(f"--pipeline {str(args.pipeline)!r} holds no AVGenPipeline (no model_index.json)")
    for text in args.formats:
        parse_format(text)

    peaks = {name: matmul_peak(device, dtype, size=args.peak_size) for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    variants = CONDITIONS if args.compare_conditions else CONDITIONS[:1]
    runs = {(text, dtype, conditions): [] for text in args.formats for dtype in args.dtypes for conditions in variants}
    for repeat in range(args.repeats):  # interleaved: background load hits every format alike
        for text, dtype, conditions in runs:
            args.dtype, args.conditions = dtype, conditions
            runs[text, dtype, conditions].append(child(args, "--one", text))
            print(f"run {repeat + 1}/{args.repeats} {text} {dtype} {conditions}: {runs[text, dtype, conditions][-1]['seconds']:.1f} s", flush=True)
    args.conditions = CONDITIONS[0]
    formats = []
    for (text, _, conditions), rows in runs.items():
        if conditions != CONDITIONS[0]:
            continue
        duration, _ = parse_format(text)
        median = sorted(rows, key=lambda row: row["seconds"])[len(rows) // 2]
        seconds = median["stages"]["video transformer"]
        formats.append(median | {"seconds_per_generated_second": median["seconds"] / duration,
                                 "all_seconds": [row["seconds"] for row in rows],
                                 "transformer_mfu_fp32": median["transformer_flops"] / seconds / peaks["fp32"]})  # fmt: skip
    scaling, args.dtype = [], args.dtypes[0]
    points = (("t2v", args.t2v_durations), ("long-form", args.long_form_durations), ("t2v size", args.t2v_sizes),
              ("upsampler size", args.upsampler_sizes))  # fmt: skip
    for kind, values in points:
        for value in values:
            scaling.append(child(args, "--scale", f"{kind}:{value:g}"))
            print(f"{kind} {value:g}: {scaling[-1]['seconds']:.1f} s, {scaling[-1]['peak_memory_mb']:.0f} MB", flush=True)
    meta = {"device": device_name(device), "threads": torch.get_num_threads(), "torch": torch.__version__, "steps": args.steps,
            "repeats": args.repeats, "pipeline": str(args.pipeline), "prompt": PROMPT, "scaling_dtype": args.dtypes[0],
            "matmul_peak_gflops": {key: value / 1e9 for key, value in peaks.items()}}  # fmt: skip
    report = {"meta": meta, "formats": formats, "scaling": scaling}
    if args.compare_conditions:
        report["conditions"] = compare_conditions(runs)
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"speed_{device.type}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
