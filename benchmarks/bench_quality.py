"""Quality benchmark: generate with the shipped models, judge with the world's benchmark (docs/world.md,
"Metrics"), for every figure the project must show, beside its baseline.

    .venv/bin/python benchmarks/bench_quality.py [--only t2v video foley edit upsample] [--n 100] [--steps 50]
        [--pipeline weights/tiny] [--video-pipeline FOLDER] [--edit-pipeline weights/tiny-edit] [--out outputs/quality]

Sub-benchmarks, each at every --durations format (default Movie Gen's two: 10 s at 24 fps and 16 s at 16 fps),
each in its own folder OUT/<bench>/<duration>/ holding MP4s and a metadata.jsonl that `avgen eval` reads too:
  t2v       AVGenPipeline end to end (video + upsampler + audio) on the world's evaluation prompts
            (evalset.plan_clip): n held-in (training pairs, train captions) and n held-out prompts, the held-out
            ones cycling held-out pair / held-out caption / both. The held-out set is not enumerable (3 pairs x
            every scene x the held-out paraphrase grammar), so it is sampled: n prompts. Diversity: the first
            --diversity held-in prompts again with other seeds. Baseline: the same pipeline class with every
            model randomly initialised (first --baseline-n prompts of each split).
  video     The same plan through the text-to-video stage alone (silent MP4s; video figures only): the
            --video-pipeline folder (a TextToVideoPipeline, e.g. `avgen assemble FOLDER --video-only` on a
            training run's exported models), else the AVGen folder's text_to_video stage.
  foley     VideoToAudioPipeline (the AVGen folder's `video_to_audio`) on world renders of the same prompts (the
            renderer makes the INPUT video only; its sound is not given); sync per event kind against the
            render's exact event times. Baseline: the same model on the same inputs with use_video=False (the
            learned null video, text only).
  edit      VideoEditPipeline on world source clips of edits.sample_edit_pair (every kind in turn): n training
            pairs with train phrasing, n held-out (held-out pair target / held-out phrasing / both). Baseline:
            SDEdit with the text-to-video model (`sdedit`, below). Ceiling: the source through the video
            autoencoder alone (`autoencoder_roundtrip`), which decodes every edit.
  upsample  UpsamplePipeline (the AVGen folder's upsampler) on world renders at the native size, against the
            world's render at twice the size, beside bicubic.

Resumable: a clip whose MP4 exists is not generated again (MP4s are written atomically by AVGenOutput.save);
the judge runs on every call (it is cheap next to generation). A folder generated with other settings (models,
steps, seed) is refused. Final figures: RESULTS/quality.json (merged with other sub-benchmarks' earlier results)
and RESULTS/quality.md; each folder also gets the full per-clip report.json of `avgen eval`.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor

from avgen.flow_matching import interpolate, linear_quadratic_sigmas, start_step
from avgen.muxer import write_video
from avgen.outputs import AVGenOutput
from avgen.pipelines.video_input import postprocess_frames
from avgen.world import evaluate, judge, metrics, render_clip, simulate
from avgen.world.captions import caption
from avgen.world.edits import EDIT_KINDS, sample_edit_pair
from avgen.world.evalset import EVAL_SPLITS, plan_clip
from avgen.world.spec import ClipSpec

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("t2v", "video", "foley", "edit", "upsample")
DEFAULT_DURATIONS = ("10@24", "16@16")  # Movie Gen's two options, SECONDS@FPS
# The judged attribute an edit kind changes (edits.py kinds -> metrics.judged_attributes names).
EDIT_ATTRIBUTE = {
    "background": "background", "color": "color", "add_rain": "weather", "remove_rain": "weather", "night": "background",
}  # fmt: skip
# Rows of the Markdown tables (the JSON has every figure of evaluate.summarize and these).
TABLE_ROWS = {
    "t2v": ("clips", "video_adherence", "audio_adherence", "sync/median_abs_offset_frames", "sync/within_one_frame",
            *(f"sync/{kind}/{figure}" for kind in metrics.ONSET_CLASS_OF_EVENT for figure in ("events", "within_one_frame")),
            "av_align", "consistency/color_stability", "consistency/identity_stability", "consistency/flicker",
            "diversity/trajectory", "diversity/event_times"),
    "video": ("clips", "video_adherence", *(f"video/{attribute}" for attribute in metrics.VIDEO_ATTRIBUTES),
              "consistency/color_stability", "consistency/identity_stability", "consistency/flicker", "diversity/trajectory",
              "diversity/event_times"),
    "foley": ("clips", "audio_adherence", "audio/ambience", "audio/music", "audio/subject_sound",
              *(f"sync/{kind}/{figure}" for kind in metrics.ONSET_CLASS_OF_EVENT
                for figure in ("events", "median_abs_offset_frames", "within_one_frame")),
              "sync/median_abs_offset_frames", "sync/within_one_frame", "av_align"),
    "edit": ("clips", "edit/success", *(f"edit/success/{kind}" for kind in EDIT_KINDS), "edit/preservation_psnr",
             "edit/trajectory_error_px", "video_adherence", "audio_adherence"),
    "upsample": ("clips", "upsampling/psnr", "upsampling/bicubic_psnr", "upsampling/ssim", "upsampling/bicubic_ssim"),
}  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BENCHES, default=list(BENCHES), help="sub-benchmarks to run (default: all)")
    parser.add_argument("--n", type=int, default=100, help="prompts / edit pairs per split, clips for upsample (default 100)")
    parser.add_argument("--baseline-n", type=int, default=10, help="prompts per split for the random-weights and SDEdit baselines")
    parser.add_argument("--baseline-only", action="store_true",
                        help="t2v and video: generate and judge only the random-weights rows (a baseline run beside a model run)")
    parser.add_argument("--diversity", type=int, default=10, help="held-in prompts generated with --diversity-seeds seeds")
    parser.add_argument("--diversity-seeds", type=int, default=4, help="seeds per diversity prompt (>= 2)")
    parser.add_argument("--durations", nargs="+", default=list(DEFAULT_DURATIONS), help="SECONDS@FPS formats (default 10@24 16@16)")
    parser.add_argument("--steps", type=int, default=50, help="sampling steps of every model")
    parser.add_argument("--guidance-scale", type=float, default=None, help="video guidance (default: the pipeline's)")
    parser.add_argument("--audio-guidance-scale", type=float, default=None, help="audio guidance (default: the pipeline's)")
    parser.add_argument("--audio-video-guidance-scale", type=float, default=None,
                        help="the audio model's guidance on the video, foley only (default: the pipeline's, off)")
    parser.add_argument("--sdedit-sigma", type=float, default=0.6, help="noise level the SDEdit baseline starts from (0..1)")
    parser.add_argument("--edit-strength", type=float, default=1.0, help="VideoEditPipeline's strength (1 = from pure noise, its default)")
    parser.add_argument("--pipeline", type=Path, default=ROOT / "weights" / "tiny", help="AVGenPipeline folder")
    parser.add_argument("--video-pipeline", type=Path, default=None, help="TextToVideoPipeline folder for --only video")
    parser.add_argument("--edit-pipeline", type=Path, default=ROOT / "weights" / "tiny-edit", help="VideoEditPipeline folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world's prompt plans")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "quality", help="where the clips go")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results", help="where quality.json/.md go")
    parser.add_argument("--workers", type=int, default=1, help="processes judging clips")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    args.formats = [parse_duration(text) for text in args.durations]
    if args.n < 1 or args.baseline_n < 0 or args.diversity < 0 or args.diversity_seeds < 2 or args.steps < 2:
        parser.error("need --n >= 1, --baseline-n >= 0, --diversity >= 0, --diversity-seeds >= 2, --steps >= 2")
    if args.baseline_only and (args.baseline_n < 1 or set(args.only) - {"t2v", "video"}):
        parser.error("--baseline-only needs --baseline-n >= 1 and --only t2v and/or video (the random-weights baselines)")
    return args


def parse_duration(text: str) -> tuple[float, int]:
    seconds, fps = text.split("@")
    return float(seconds), int(fps)


def format_name(duration: float, fps: int) -> str:
    return f"{duration:g}s@{fps}fps"


# --- models, loaded on first use (a rerun that only judges loads what the plan needs: the native size) ----
class Models:
    def __init__(self, args):
        self.args = args

    def _load(self, cls, path: Path):
        if not (path / "model_index.json").is_file():
            raise FileNotFoundError(f"no {cls.__name__} at {str(path)!r} (model_index.json missing): train it, or pass its folder")
        pipe = cls.from_pretrained(path).to(self.args.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @functools.cached_property
    def avgen(self):
        from avgen.pipelines import AVGenPipeline

        return self._load(AVGenPipeline, self.args.pipeline)

    @functools.cached_property
    def edit(self):
        from avgen.pipelines import VideoEditPipeline

        return self._load(VideoEditPipeline, self.args.edit_pipeline)

    @functools.cached_property
    def video(self):
        """The text-to-video stage: --video-pipeline, else the AVGen folder's."""
        from avgen.pipelines import TextToVideoPipeline

        if self.args.video_pipeline is None:
            return self.avgen.text_to_video
        return self._load(TextToVideoPipeline, self.args.video_pipeline)

    def _randomised(self, pipe):
        """`pipe`'s class with every model built afresh from its config: the untrained baseline."""
        torch.manual_seed(self.args.seed)
        components = {}
        for name, module in pipe.components.items():
            if isinstance(module, torch.nn.Module):  # diffusers models have from_config, transformers models take config
                cls = type(module)
                module = (cls.from_config(module.config) if hasattr(cls, "from_config") else cls(module.config)).eval()
            components[name] = module
        config = {key: pipe.config[key] for key in ("vae_tile_latent_frames", "vae_tile_overlap")}
        random = type(pipe)(**components, **config).to(self.args.device)
        random.set_progress_bar_config(disable=True)
        return random

    @functools.cached_property
    def random(self):
        return self._randomised(self.avgen)

    @functools.cached_property
    def random_video(self):
        return self._randomised(self.video)

    def generator(self, row: dict) -> torch.Generator:
        return torch.Generator(self.args.device).manual_seed(row["seed"])


# --- one folder: plan, generate what is missing, judge ------------------------------------------------------
def _seed(name: str) -> int:
    """A clip's sampling seed from its file name: stable whatever --n or the order of generation."""
    return zlib.crc32(name.encode())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def generate(folder: Path, rows: list[dict], settings: dict, make) -> None:
    """Write the plan's metadata.jsonl, then every missing clip: make(row) -> AVGenOutput, saved atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    settings_path = folder / "settings.json"
    if settings_path.is_file() and json.loads(settings_path.read_text()) != settings:
        raise ValueError(f"{folder} was generated with other settings ({settings_path}); use another --out or delete it")
    _write_atomic(settings_path, json.dumps(settings, indent=1))
    _write_atomic(folder / evaluate.METADATA_NAME, "".join(json.dumps(row) + "\n" for row in rows))
    missing = [row for row in rows if not (folder / row["file_name"]).is_file()]
    print(f"{folder}: {len(rows) - len(missing)} of {len(rows)} clips already there, generating {len(missing)}", flush=True)
    for row in missing:
        path = folder / row["file_name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        make(row).save(path)


def judge_groups(folder: Path, rows: list[dict], groups: dict, workers: int, extra=None) -> dict:
    """`avgen eval` on the folder (its report.json), then group_figures per group (a predicate on metadata rows)."""
    report = evaluate.evaluate_folder(folder, workers=workers)
    (folder / "report.json").write_text(json.dumps(report, default=evaluate._json_default))
    row_of = {row["file_name"]: row for row in rows}
    return group_figures([(record, row_of[record["file_name"]]) for record in report["clips"]], groups, extra, folder)


def group_figures(all_pairs: list[tuple[dict, dict]], groups: dict, extra=None, folder: Path | None = None) -> dict:
    """evaluate.summarize per group of (judged record, metadata row) pairs, plus the sync median in frames and
    extra(pairs, folder) figures; groups without a clip are left out."""
    figures = {}
    for name, keep in groups.items():
        pairs = [(record, row) for record, row in all_pairs if keep(row)]
        if not pairs:
            continue
        group = evaluate.summarize([record for record, _ in pairs])[evaluate.ALL]
        fps = pairs[0][0]["fps"]  # one format per folder
        median_ms = group["sync/median_abs_offset_ms"]
        group["sync/median_abs_offset_frames"] = None if median_ms is None else median_ms * fps / 1000
        if extra is not None:
            group.update(extra(pairs, folder))
        figures[name] = group
    return figures


def _render_input(path: Path, spec: ClipSpec) -> None:
    """A world clip written as a benchmark INPUT (a source to edit, a low/high-resolution pair), once."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        clip = render_clip(spec)
        write_video(path, clip.frames, clip.fps, clip.audio, clip.sample_rate, {"generator": "avgen world renderer"})


# --- t2v ---------------------------------------------------------------------------------------------------
def prompt_rows(args, duration: float, fps: int, resolution: int = 64) -> list[dict]:
    """The world's evaluation prompts (evalset.plan_clip), n per split; spec resolution only matters for renders."""
    rows = []
    for split in EVAL_SPLITS:
        for index in range(args.n):
            plan = plan_clip(index, split, args.seed, resolution=resolution, fps=fps, duration=duration)
            name = f"{split}-{index:05d}.mp4"
            rows.append({**plan, "file_name": name, "seed": _seed(name), "method": "model", "index": index})
    return rows


def guidance_kwargs(args, audio: bool) -> dict:
    """The guidance scales given on the command line, as pipeline arguments (none given: the pipeline's defaults)."""
    given = {"guidance_scale": args.guidance_scale, "audio_guidance_scale": args.audio_guidance_scale if audio else None}
    return {key: value for key, value in given.items() if value is not None}


def run_t2v(args, models: Models, duration: float, fps: int, bench: str = "t2v") -> dict:
    """bench "t2v": the AVGen pipeline end to end; "video": its text-to-video stage alone (video figures)."""
    rows = prompt_rows(args, duration, fps)
    diversity = [row for row in rows if row["split"] == "heldin" and row["index"] < args.diversity]
    for row in diversity:
        for extra in range(1, args.diversity_seeds):
            name = row["file_name"].replace(".mp4", f"-seed{extra}.mp4")
            rows.append({**row, "file_name": name, "seed": _seed(name), "extra_seed": extra})
    for row in [row for row in rows if row["index"] < args.baseline_n and "extra_seed" not in row]:
        rows.append({**row, "file_name": f"random/{row['file_name']}", "method": "random"})  # same noise: paired
    if args.baseline_only:
        rows = [row for row in rows if row["method"] == "random"]

    def make(row):
        if bench == "t2v":
            pipe = models.avgen if row["method"] == "model" else models.random
        else:
            pipe = models.video if row["method"] == "model" else models.random_video
        guidance = guidance_kwargs(args, audio=bench == "t2v")
        return pipe(prompt=row["text"], duration=duration, fps=fps, num_inference_steps=args.steps, generator=models.generator(row), **guidance)

    folder = args.out / bench / format_name(duration, fps)
    pipeline = args.pipeline if bench == "t2v" or args.video_pipeline is None else args.video_pipeline
    generate(folder, rows, {"pipeline": str(pipeline.resolve()), "steps": args.steps, "seed": args.seed, **guidance_kwargs(args, bench == "t2v")}, make)
    extra = judged_sync if bench == "t2v" else None  # the silent video bench has no sound to sync
    return judge_groups(folder, rows, t2v_groups({row["text"] for row in diversity}), args.workers, extra)


def t2v_groups(diversity_texts: set[str]) -> dict:
    """The t2v / video figures' groups: predicates on metadata rows (diversity: the prompts given several seeds)."""
    main = lambda row: row["method"] == "model" and "extra_seed" not in row  # noqa: E731
    return {
        "heldin": lambda row: main(row) and row["split"] == "heldin",
        "heldout": lambda row: main(row) and row["split"] == "heldout",
        "heldout pairs": lambda row: main(row) and row["heldout_pair"],
        "heldout captions": lambda row: main(row) and row["heldout_paraphrase"],
        "diversity": lambda row: row["method"] == "model" and row["text"] in diversity_texts,
        "random weights/heldin": lambda row: row["method"] == "random" and row["split"] == "heldin",
        "random weights/heldout": lambda row: row["method"] == "random" and row["split"] == "heldout",
    }


def judged_sync_counts(records: list[dict]) -> dict:
    """Pooled over the clips: the visual events the judge finds in the (generated) pictures and how many have a
    generated onset of the matching class within +-1 frame, per kind and in all."""
    counts = {kind: [0, 0] for kind in metrics.ONSET_CLASS_OF_EVENT}
    for record in records:
        for kind, offsets in metrics.event_offsets(record["verdict"]).items():
            offsets = np.abs(offsets) * record["fps"]  # frames
            counts[kind][0] += offsets.size
            counts[kind][1] += int((offsets <= 1 + 1e-9).sum())
    total = [sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())]
    return {"events": total[0], "within_one_frame": total[1],
            **{f"{kind}/events": c[0] for kind, c in counts.items()}, **{f"{kind}/within_one_frame": c[1] for kind, c in counts.items()}}


def judged_sync(pairs, folder) -> dict:
    """t2v extra figures: per visual event kind the judge finds in the generated pictures, how many there are and
    the share with a generated onset of the matching class within +-1 frame (judged_sync_counts)."""
    counts = judged_sync_counts([record for record, _ in pairs])
    figures = {}
    for kind in metrics.ONSET_CLASS_OF_EVENT:
        events = counts[f"{kind}/events"]
        figures[f"sync/{kind}/events"] = events
        figures[f"sync/{kind}/within_one_frame"] = counts[f"{kind}/within_one_frame"] / events if events else None
    return figures


# --- foley -------------------------------------------------------------------------------------------------
def clip_sync_offsets(record: dict, row: dict) -> dict[str, np.ndarray]:
    """Per visual event kind (ball contact, footstep, lightning flash) of one foley clip: |offset| in frames from
    each event of the input render's exact ground truth to the nearest generated onset the judge hears of the
    matching class (inf when it hears none)."""
    events = simulate(ClipSpec.from_dict(row["spec"])).events  # the input's exact event times (judging only)
    truth = {"visual_events": [{"kind": e.kind, "time": e.time} for e in events], "audio_onsets": record["verdict"]["audio_onsets"]}
    return {kind: np.abs(offsets) * record["fps"] for kind, offsets in metrics.event_offsets(truth).items()}


def truth_sync(pairs, folder) -> dict:
    """Per visual event kind and over all kinds: clip_sync_offsets' median and share within +-1 frame, pooled over
    the group's events. The all-kinds pair replaces evaluate.summarize's sync figures for Foley, whose input is a
    render with exact event times: the issue's "median |offset|" is over events, while summarize's is a mean of
    per-clip medians, infinite as soon as one clip's is (more than half its events unsounded); and its share
    counts the events the judge finds in the picture rather than the render's own (the same as compare_quality's)."""
    offsets = {kind: [] for kind in metrics.ONSET_CLASS_OF_EVENT}
    for record, row in pairs:
        for kind, values in clip_sync_offsets(record, row).items():
            offsets[kind].extend(values)
    def pooled(prefix: str, values: list[float]) -> dict:
        values = np.asarray(values)
        return {f"{prefix}/median_abs_offset_frames": float(np.median(values)) if values.size else None,
                f"{prefix}/within_one_frame": float(np.mean(values <= 1 + 1e-9)) if values.size else None}

    figures = pooled("sync", [value for values in offsets.values() for value in values])
    for kind, values in offsets.items():
        figures |= {f"sync/{kind}/events": len(values), **pooled(f"sync/{kind}", values)}
    median = figures["sync/median_abs_offset_frames"]
    figures["sync/median_abs_offset_ms"] = None if median is None else median * 1000 / pairs[0][0]["fps"]
    return figures


def run_foley(args, models: Models, duration: float, fps: int) -> dict:
    resolution = models.avgen.text_to_video.default_height  # the audio model's training frames: the video model's
    rows = prompt_rows(args, duration, fps, resolution)
    for row in [row for row in rows if row["index"] < args.baseline_n]:
        rows.append({**row, "file_name": f"text-only/{row['file_name']}", "method": "text-only"})  # same noise: paired

    def make(row):
        clip = render_clip(ClipSpec.from_dict(row["spec"]))  # the input video; its sound is not an input
        return models.avgen.video_to_audio(
            clip.frames, prompt=row["text"], fps=fps, num_inference_steps=args.steps, generator=models.generator(row),
            use_video=row["method"] == "model", **(foley_guidance if row["method"] == "model" else text_only_guidance),
        )  # fmt: skip

    given = {"guidance_scale": args.audio_guidance_scale, "video_guidance_scale": args.audio_video_guidance_scale}
    foley_guidance = {key: value for key, value in given.items() if value is not None}
    text_only_guidance = {key: value for key, value in foley_guidance.items() if key != "video_guidance_scale"}  # no video to guide to
    folder = args.out / "foley" / format_name(duration, fps)
    generate(folder, rows, {"pipeline": str(args.pipeline.resolve()), "steps": args.steps, "seed": args.seed, **foley_guidance}, make)
    groups = {
        f"{label}/{split}": (lambda method, split: lambda row: row["method"] == method and row["split"] == split)(method, split)
        for method, label in (("model", "video+text"), ("text-only", "text only (null video)"))
        for split in EVAL_SPLITS
    }
    return judge_groups(folder, rows, groups, args.workers, truth_sync)


# --- edit --------------------------------------------------------------------------------------------------
class _TailScheduler(FlowMatchEulerDiscreteScheduler):
    """The pipeline's schedule without its first `skip` steps: sampling starts at sigmas[skip] (SDEdit)."""

    skip = 0

    def set_timesteps(self, *args, **kwargs):
        super().set_timesteps(*args, **kwargs)
        self.timesteps, self.sigmas = self.timesteps[self.skip :], self.sigmas[self.skip :]


def autoencoder_roundtrip(edit_pipe, source: Path) -> AVGenOutput:
    """The source through the edit pipeline's own stages without its transformer (prepare_frames, encode_source,
    decode_latents): an edit that changes nothing. Every edit is decoded by this vae, so this preservation is
    the ceiling of theirs."""
    frames, audio, fps, sample_rate = evaluate._decode(source)
    video = edit_pipe.prepare_frames(frames[None])  # (1, F, 3, H, W) in [0, 1]
    edited = edit_pipe.decode_latents(edit_pipe.encode_source(video), len(frames))
    return AVGenOutput(frames=postprocess_frames(edited, "np"), audio=audio[None], fps=fps, sample_rate=sample_rate,
                       metadata=[{"generator": "avgen vae round trip (benchmark ceiling)"}])


def sample_from(pipe, x1: torch.Tensor, prompt: str, steps: int, sigma: float, generator, fps: int, num_frames: int):
    """TextToVideoPipeline `pipe` run from the scaled clean latents x1 (1, C, F', H', W') noised to the first step of
    its linear-quadratic schedule with sigma_k <= `sigma` (flow_matching.start_step): the start is
    interpolate(noise, x1, 1 - sigma_k) on the training path, and a scheduler that drops the first k steps makes the
    pipeline run exactly the remaining steps k..steps-1 (same sigmas as a full run from there). Its output ("np")."""
    sigmas = linear_quadratic_sigmas(steps)
    skip = start_step(sigmas, sigma)
    original, scheduler = pipe.scheduler, _TailScheduler.from_config(pipe.scheduler.config)
    scheduler.skip = skip
    noise = randn_tensor(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = torch.full((1,), 1 - sigmas[skip], device=x1.device)
    pipe.scheduler = scheduler
    try:
        scale = pipe.vae.spatial_compression_ratio
        return pipe(
            prompt=prompt, height=scale * x1.shape[-2], width=scale * x1.shape[-1], num_frames=num_frames, fps=fps,
            num_inference_steps=steps, latents=interpolate(noise, x1, t), output_type="np",
        )  # fmt: skip
    finally:
        pipe.scheduler = original


def sdedit(avgen_pipe, source: Path, prompt: str, steps: int, sigma: float, generator) -> AVGenOutput:
    """SDEdit (Meng et al., ICLR 2022) with the text-to-video model, the baseline of instruction editing: the source
    MP4's frames -> vae.encode (mode) * scaling_factor -> source latents x1 (1, C, F', H', W'), then `sample_from`
    with the target caption. The source's sound is kept (the baseline regenerates pictures only, as the edit model
    does for silent edits)."""
    frames, audio, fps, sample_rate = evaluate._decode(source)
    pipe = avgen_pipe.text_to_video  # a fresh stage pipeline over the same modules: its scheduler can be swapped
    device, vae = pipe._execution_device, pipe.vae
    with torch.no_grad():
        video = torch.from_numpy(frames).to(device).permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # (1, 3, F, H, W)
        x1 = vae.encode(video.to(vae.dtype)).latent_dist.mode().float() * vae.config.scaling_factor
    output = sample_from(pipe, x1, prompt, steps, sigma, generator, fps, len(frames))
    return AVGenOutput(frames=output.frames, audio=audio[None], fps=fps, sample_rate=sample_rate, metadata=output.metadata)


def edit_rows(args, duration: float, fps: int, resolution: int) -> list[dict]:
    """n training edit pairs (train phrasing) and n held-out ones (i % 3: 0 held-out pair target with train phrasing,
    1 training pair with held-out phrasing, 2 both), every edit kind in turn; plus SDEdit rows for the first
    --baseline-n of each split, sharing the sources."""
    rows = []
    for split in EVAL_SPLITS:
        for index in range(args.n):
            rng = np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(index,)))
            held_out = split == "heldout"
            pair_split = "heldout" if held_out and index % 3 != 1 else "train"
            phrasing = "heldout" if held_out and index % 3 != 0 else "train"
            kind = EDIT_KINDS[index % len(EDIT_KINDS)]
            pair = sample_edit_pair(rng, kind, pair_split, phrasing, resolution=resolution, fps=fps, duration=duration)
            attribute = EDIT_ATTRIBUTE[kind]
            target = pair.target.subject.color if attribute == "color" else getattr(pair.target, attribute)
            name = f"{split}-{index:05d}.mp4"
            rows.append({
                "file_name": name, "spec": pair.target.to_dict(), "source_spec": pair.source.to_dict(), "split": split,
                "kind": kind, "instruction": pair.instruction, "caption": caption(pair.target, rng, phrasing),
                "edit": {"source_file": f"sources/{name}", "attribute": attribute, "target": target},
                "seed": _seed(name), "method": "edit", "index": index,
            })  # fmt: skip
    baseline = [row for row in rows if row["index"] < args.baseline_n]
    return rows + [
        {**row, "file_name": f"{method}/{row['file_name']}", "method": method} for method in ("sdedit", "autoencoder") for row in baseline
    ]


@functools.lru_cache(maxsize=None)
def _source_track(path: Path) -> list:
    frames, _, fps, _ = evaluate._decode(path)
    return judge.judge_video(frames, fps)["track"]["centroid"]


def edit_figures(pairs, folder) -> dict:
    """Per-kind success, and subject motion kept: the mean distance (px) between the judge's subject centroid
    tracks of the source and of the edit, over the frames where both found it (per clip, then the mean)."""
    errors = []
    for record, row in pairs:
        source = _source_track(folder / row["edit"]["source_file"])
        both = [(p, q) for p, q in zip(source, record["verdict"]["track"]["centroid"]) if p is not None and q is not None]
        errors.append(float(np.mean([math.dist(p, q) for p, q in both])) if both else None)
    figures = {"edit/trajectory_error_px": evaluate._mean(errors)}
    for kind in EDIT_KINDS:
        records = [record["edit"] for record, row in pairs if row["kind"] == kind]
        figures[f"edit/success/{kind}"] = evaluate._mean(float(edit["success"]) for edit in records)
        figures[f"edit/preservation_psnr/{kind}"] = evaluate._mean(
            edit["preservation_psnr"] for edit in records if edit["preservation_psnr"] not in (None, math.inf)
        )
    return figures


def run_edit(args, models: Models, duration: float, fps: int) -> dict:
    rows = edit_rows(args, duration, fps, models.edit.default_height)
    folder = args.out / "edit" / format_name(duration, fps)

    def make(row):
        source = folder / row["edit"]["source_file"]
        _render_input(source, ClipSpec.from_dict(row["source_spec"]))
        if row["method"] == "autoencoder":
            return autoencoder_roundtrip(models.edit, source)
        if row["method"] == "sdedit":
            return sdedit(models.avgen, source, row["caption"], args.steps, args.sdedit_sigma, models.generator(row))
        return models.edit(str(source), prompt=row["instruction"], num_inference_steps=args.steps, strength=args.edit_strength,
                           generator=models.generator(row))

    settings = {"pipeline": str(args.pipeline.resolve()), "edit_pipeline": str(args.edit_pipeline.resolve()), "steps": args.steps,
                "seed": args.seed, "sdedit_sigma": args.sdedit_sigma, "edit_strength": args.edit_strength}  # fmt: skip
    generate(folder, rows, settings, make)
    groups = {
        f"{label}/{split}": (lambda method, split: lambda row: row["method"] == method and row["split"] == split)(method, split)
        for method, label in (("edit", "edit model"), ("sdedit", "SDEdit baseline"), ("autoencoder", "autoencoder only"))
        for split in EVAL_SPLITS
    }
    return judge_groups(folder, rows, groups, args.workers, edit_figures)


# --- upsample ----------------------------------------------------------------------------------------------
def run_upsample(args, models: Models, duration: float, fps: int) -> dict:
    resolution = models.avgen.text_to_video.default_height
    rows = []
    for index in range(args.n):
        plan = plan_clip(index, "heldin", args.seed, resolution=resolution, fps=fps, duration=duration)
        name = f"{index:05d}.mp4"
        plan = {key: value for key, value in plan.items() if key != "text"}  # judged against its spec; no diversity groups
        rows.append({**plan, "file_name": name, "input_file": f"inputs/{name}", "reference_file": f"hires/{name}"})
    folder = args.out / "upsample" / format_name(duration, fps)

    def make(row):
        spec = ClipSpec.from_dict(row["spec"])
        _render_input(folder / row["input_file"], spec)
        _render_input(folder / row["reference_file"], spec.replace(resolution=2 * resolution))
        return models.avgen.upsample(str(folder / row["input_file"]))

    generate(folder, rows, {"pipeline": str(args.pipeline.resolve()), "seed": args.seed}, make)
    return judge_groups(folder, rows, {"upsampler": lambda row: True}, args.workers)


RUNS = {"t2v": run_t2v, "video": functools.partial(run_t2v, bench="video"), "foley": run_foley, "edit": run_edit, "upsample": run_upsample}


# --- report --------------------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    lines = ["# Quality benchmark (benchmarks/bench_quality.py)", "",
             "Figures of the world's judge (benchmarks/README.md says what each means); `–`: nothing to measure."]  # fmt: skip
    for bench in BENCHES:
        if bench not in results:
            continue
        for name, groups in results[bench]["formats"].items():
            columns = list(groups)
            settings = results[bench].get("settings_by_format", {}).get(name, results[bench].get("settings", {}))
            lines += ["", f"## {bench}, {name} (n {settings.get('n')} per split, {settings.get('steps')} steps)", "", "| figure | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
            for key in TABLE_ROWS[bench]:
                lines.append(f"| {key} | " + " | ".join(evaluate._format(groups[column].get(key)) for column in columns) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    models = Models(args)
    args.results.mkdir(parents=True, exist_ok=True)
    json_path = args.results / "quality.json"
    try:
        for bench in args.only:
            formats = {format_name(d, f): RUNS[bench](args, models, d, f) for d, f in args.formats}
            settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()
                        if key not in ("only", "formats", "out", "results", "workers", "device")}  # fmt: skip
            # merged into what is there now (other sub-benchmarks and formats may have been written meanwhile by
            # runs beside this one); each format keeps the settings it was measured with
            results = json.loads(json_path.read_text()) if json_path.is_file() else {}
            entry = results.setdefault(bench, {"formats": {}, "settings_by_format": {}})
            entry["formats"].update(formats)
            entry.setdefault("settings_by_format", {}).update(dict.fromkeys(formats, settings))
            entry["settings"] = settings
            _write_atomic(json_path, json.dumps(results, indent=1, default=evaluate._json_default))
        results = json.loads(json_path.read_text()) if json_path.is_file() else {}
    except (FileNotFoundError, ValueError) as error:
        print(f"bench_quality: {error}", file=sys.stderr)
        return 2
    table = markdown(results)
    _write_atomic(args.results / "quality.md", table)
    print(table)
    print(f"wrote {json_path} and {args.results / 'quality.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
