"""Sync on generated video: give the MP4s of an end-to-end run (bench_quality.py --only t2v) new sound from
the audio stage with other settings, and judge them again.

    .venv/bin/python benchmarks/bench_foley_generated.py OUT/t2v/10s@24fps [more folders] --out FOLDER
        [--video-guidance-scale 2] [--guidance-scale 3] [--steps 20] [--pipeline weights/tiny]

End to end, the judge finds the visual events (ball contacts, footsteps, lightning) in the generated video
itself, and the sync figures ask whether the generated sound has an onset within a frame of each. This
script keeps each generated video stream byte for byte (muxer.add_audio, as `avgen foley` does) and
replaces only its sound, so two settings of the audio stage compare on exactly the same pictures
(pair the folders' report.json with compare_quality.py). The model-weights clips of the folders' plans
are re-sounded (the random-weights baseline rows are left out). Resumable: written clips are kept; a folder
made with other settings is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from avgen import muxer
from avgen.pipelines.text_to_audio_video import AVGenPipeline
from avgen.world import evaluate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_quality import _write_atomic, judged_sync_counts  # noqa: E402  (benchmarks/ is not a package)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="end-to-end folders (MP4s + metadata.jsonl)")
    parser.add_argument("--out", type=Path, required=True, help="where the re-sounded folders go (one per input, same order)")
    parser.add_argument("--pipeline", type=Path, default=ROOT / "weights" / "tiny", help="AVGenPipeline folder (its audio stage)")
    parser.add_argument("--steps", type=int, default=20, help="audio sampling steps")
    parser.add_argument("--guidance-scale", type=float, default=3.0, help="the audio model's guidance on the text")
    parser.add_argument("--video-guidance-scale", type=float, default=1.0, help="the audio model's guidance on the video")
    parser.add_argument("--workers", type=int, default=1, help="processes judging clips")
    return parser.parse_args(argv)


def resound(source: Path, target: Path, pipe, settings: dict, steps: int, guidance: float, video_guidance: float, workers: int) -> dict:
    """Every model clip of `source` with new sound in `target` (atomically, missing ones only); then the judge."""
    target.mkdir(parents=True, exist_ok=True)
    settings_path = target / "settings.json"
    if settings_path.is_file() and json.loads(settings_path.read_text()) != settings:
        raise ValueError(f"{target} was made with other settings ({settings_path}); use another --out")
    _write_atomic(settings_path, json.dumps(settings, indent=1))
    rows = [row for row in evaluate.read_metadata(source) if row.get("method", "model") == "model"]
    _write_atomic(target / evaluate.METADATA_NAME, "".join(json.dumps(row) + "\n" for row in rows))
    for row in rows:
        path = target / row["file_name"]
        if path.is_file():
            continue
        clip = muxer.read_video(source / row["file_name"])
        output = pipe(
            clip.frames, prompt=row["text"], fps=clip.fps, num_inference_steps=steps, guidance_scale=guidance,
            video_guidance_scale=video_guidance, generator=torch.Generator().manual_seed(row["seed"]),
        )  # fmt: skip
        muxer.add_audio(source / row["file_name"], output.audio[0], output.sample_rate, path, output.metadata[0])
        print(f"{path}", flush=True)
    report = evaluate.evaluate_folder(target, workers=workers)
    _write_atomic(target / "report.json", json.dumps(report, default=evaluate._json_default))
    summary = report["summary"]
    for split in ("heldin", "heldout"):
        if split in summary:
            summary[split].update(judged_sync_counts([record for record in report["clips"] if record.get("split") == split]))
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    pipe = AVGenPipeline.from_pretrained(args.pipeline, text_encoder=None, vae=None, transformer=None, upsampler=None).video_to_audio
    pipe.set_progress_bar_config(disable=True)
    # the pipeline checks its arguments before any compute: a bad scale fails here, on a one-frame stand-in
    pipe.check_inputs(torch.zeros(1, 1, 3, 8, 8), 24, "", None, None, None, None, None, args.steps, 1, None, None, None, None,
                      "np", None, None, None, args.guidance_scale, args.video_guidance_scale)  # fmt: skip
    settings = {"pipeline": str(args.pipeline.resolve()), "steps": args.steps, "guidance_scale": args.guidance_scale,
                "video_guidance_scale": args.video_guidance_scale}  # fmt: skip
    summaries = {}
    for index, folder in enumerate(args.folders):
        target = args.out / f"{index}-{folder.parent.parent.name}"
        summary = resound(folder, target, pipe, {**settings, "source": str(folder.resolve())}, args.steps,
                          args.guidance_scale, args.video_guidance_scale, args.workers)  # fmt: skip
        summaries[str(target)] = summary
        for split in ("heldin", "heldout"):
            figures = summary.get(split, {})
            print(f"{target} {split}: {figures.get('within_one_frame')} of {figures.get('events')} judged events within one frame, "
                  f"sync within one frame (per clip) {figures.get('sync/within_one_frame')}, "
                  f"audio adherence {figures.get('audio_adherence')}, av_align {figures.get('av_align')}")
    _write_atomic(args.out / "summary.json", json.dumps(summaries, indent=1, default=evaluate._json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
