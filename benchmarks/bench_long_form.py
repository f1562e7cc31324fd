"""Long-form audio: time, peak memory and seams of the video-to-audio stage as the clip grows.

    .venv/bin/python benchmarks/bench_long_form.py [--pipeline weights/tiny] [--durations 5 10 16 30 60]

The audio transformer sees one window (5 s for the tiny preset); longer sound is sampled by multi-diffusion
over windows overlapping by a quarter (`avgen.long_form`). For each duration, in a fresh process (so that
its peak resident memory is its own): world clips at 24 fps, 64 px (rendered and concatenated past the
world's 16 s), the sound generated for them (the pipeline's defaults, their captions as the prompt), and:

- seconds taken and peak memory: should grow linearly and stay flat, respectively;
- seams: positive spectral flux (10 ms frames, linear magnitude) within +-30 ms of each window edge
  inside the clip, against the flux at points halfway between edges, and against the whole clip's mean.
  A seam would show as a ratio above 1 at the edges; "between" is the reference for the natural spread.

Writes benchmarks/results/long_form_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FPS, RESOLUTION, PIECE_SECONDS = 24, 64, 12.0
FLUX_HOP_S, JOIN_RADIUS_S = 0.010, 0.030


def world_video(seconds: float, seed: int = 0) -> tuple[np.ndarray, str]:
    """(F, H, W, 3) uint8 frames of world clips back to back, and the first clip's caption."""
    from avgen.world import render_clip
    from avgen.world.captions import caption
    from avgen.world.spec import sample_spec

    rng, pieces, text, left = np.random.default_rng(seed), [], None, seconds
    while left > 1e-9:
        spec = sample_spec(rng, resolution=RESOLUTION, fps=FPS, duration=min(PIECE_SECONDS, left))
        pieces.append(render_clip(spec).frames)
        text = text or caption(spec, rng, "train")
        left -= spec.duration
    return np.concatenate(pieces), text


def spectral_flux(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Positive spectral flux per 10 ms frame: sum over bins of the rise in magnitude, (frames,). Linear
    magnitude, not log: in log units the many quiet bins' random ups and downs outweigh a join's change."""
    hop = round(FLUX_HOP_S * sample_rate)
    spectrum = torch.stft(torch.from_numpy(audio).float(), 4 * hop, hop, window=torch.hann_window(4 * hop), return_complex=True)
    magnitude = spectrum.abs()  # (bins, frames)
    return torch.relu(magnitude[:, 1:] - magnitude[:, :-1]).sum(0).numpy()


def seam_figures(audio: np.ndarray, sample_rate: int, edges_s: list[float], between_s: list[float]) -> dict:
    flux = spectral_flux(audio, sample_rate)
    radius = round(JOIN_RADIUS_S / FLUX_HOP_S)

    def around(points):
        frames = [round(p / FLUX_HOP_S) for p in points]
        values = [flux[max(0, f - radius) : f + radius + 1].mean() for f in frames if radius <= f < len(flux) - radius]
        return float(np.mean(values)) if values else None

    at_edges, between, mean = around(edges_s), around(between_s), float(flux.mean())
    return {"window_edges": len(edges_s), "flux_at_edges": at_edges, "flux_between_edges": between, "flux_mean": mean,
            "edges_vs_mean": None if at_edges is None else at_edges / mean,
            "between_vs_mean": None if between is None else between / mean}  # fmt: skip


def one(args) -> dict:
    """Child: the sound of one world video of args.one seconds."""
    from avgen import AVGenPipeline
    from avgen.clock import AVClock
    from avgen.long_form import plan_windows

    seconds = float(args.one)
    frames, text = world_video(seconds)
    pipe = AVGenPipeline.from_pretrained(args.pipeline).video_to_audio
    pipe.set_progress_bar_config(disable=True)
    start = time.perf_counter()
    output = pipe(frames, fps=FPS, prompt=text, num_inference_steps=args.steps, generator=torch.Generator().manual_seed(0))
    taken = time.perf_counter() - start
    audio, sample_rate = output.audio[0, 0], output.sample_rate  # (S,)
    clock = AVClock(FPS, sample_rate, audio_hop=pipe.audio_vae.config.hop_length)
    window = pipe.audio_transformer.config.max_positions
    windows = plan_windows(clock.audio_latent_steps(clock.num_samples(len(frames))), window, window // 4)  # as the pipeline plans them
    step_s = 1 / float(clock.audio_latent_rate())
    edges = sorted({w.start * step_s for w in windows[1:]} | {w.stop * step_s for w in windows[:-1]})
    between = [(a + b) / 2 for a, b in zip([0.0] + edges, edges + [len(audio) / sample_rate])][1:-1] if edges else []
    return {"seconds_of_audio": len(audio) / sample_rate, "seconds_taken": taken, "windows": len(windows),
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **seam_figures(audio, sample_rate, edges, between)}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", type=Path, default=ROOT / "weights" / "tiny", help="AVGenPipeline folder")
    parser.add_argument("--durations", nargs="+", type=float, default=[5, 10, 16, 30, 60])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args)))
        return 0
    if not (args.pipeline / "model_index.json").is_file():
        parser.error(f"--pipeline {str(args.pipeline)!r} holds no AVGenPipeline (no model_index.json)")
    rows = []
    for seconds in args.durations:
        command = [sys.executable, __file__, "--one", f"{seconds:g}", "--pipeline", str(args.pipeline), "--steps", str(args.steps)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    fmt = lambda value, spec: "–" if value is None else format(value, spec)  # noqa: E731
    lines = [f"Video-to-audio on world video at {FPS} fps, {args.steps} steps, threads {torch.get_num_threads()}.", "",
             "| seconds of audio | windows | seconds taken | s per generated s | peak memory MB | flux at window edges / mean | halfway between edges / mean |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['seconds_of_audio']:g} | {r['windows']} | {r['seconds_taken']:.1f} | {r['seconds_taken'] / r['seconds_of_audio']:.2f} | "
                     f"{r['peak_memory_mb']:.0f} | {fmt(r['edges_vs_mean'], '.2f')} | {fmt(r['between_vs_mean'], '.2f')} |")  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"long_form_{device}.json"
    out.write_text(json.dumps({"steps": args.steps, "fps": FPS, "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
