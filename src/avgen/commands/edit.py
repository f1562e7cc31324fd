"""`avgen edit in.mp4 "change the background to a busy intersection" -o out.mp4`: edit a video from an instruction.

VideoEditPipeline does the work: the frames are centre-cropped and resized to the model's native size (64 x 64
for the tiny preset), edited, and written with the input's own sound, or with new sound when the instruction
changes it (rain, night, ...) and the model has the audio components (--regenerate-audio / --keep-audio force
either). Everything that can be checked without the model is checked before it is loaded. The MP4 carries a signed
C2PA manifest of an edit (the input as its parent ingredient; avgen.provenance's flags), and instruction words the
model was never trained on are named in one "note:" line (avgen.vocabulary).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from avgen import provenance
from avgen.vocabulary import vocabulary_notes

# The shipped edit model: a folder written by VideoEditPipeline.save_pretrained. Its transformer differs from the
# text-to-video one (twice the input channels), so it has a folder of its own beside weights/tiny.
DEFAULT_MODEL = Path(__file__).resolve().parents[3] / "weights" / "tiny-edit"

AUDIO_COMPONENTS = ("audio_text_encoder", "audio_vae", "audio_transformer", "video_encoder")  # VideoEditPipeline's


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="the video to edit (fps one of 8, 12, 16, 24, 25, 30)")
    parser.add_argument("instruction", help='what to change, e.g. "change the background to a busy intersection"')
    parser.add_argument("-o", "--output", required=True, help="where to write the edited MP4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50, help="sampling steps (at least 2)")
    parser.add_argument("--guidance", type=float, default=2.0, help="guidance on the instruction (1 = off)")
    parser.add_argument("--video-guidance", type=float, default=3.0, help="guidance on the source video (1 = off)")
    parser.add_argument(
        "--strength", type=float, default=1.0,
        help="noise level the edit starts from, in (0, 1]: 1 = pure noise (default); lower starts from the noised source",
    )  # fmt: skip
    sound = parser.add_mutually_exclusive_group()
    sound.add_argument(
        "--regenerate-audio", dest="regenerate_audio", action="store_const", const=True, default=None,
        help="new sound for the edited video (default: only when the instruction changes the sound, e.g. rain)",
    )  # fmt: skip
    sound.add_argument("--keep-audio", dest="regenerate_audio", action="store_const", const=False, help="keep the input's sound")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="pipeline folder (default: the shipped edit weights)")
    provenance.add_arguments(parser)


def _fail(message: str) -> int:
    print(f"avgen edit: {message}", file=sys.stderr)
    return 2


@vocabulary_notes()  # the pipeline's unknown-word warning as one "note:" line
def run(args: argparse.Namespace) -> int:
    from avgen import muxer, validation

    start = time.perf_counter()
    model = Path(args.model)
    if not (model / "model_index.json").is_file():
        hint = " (the shipped edit weights weights/tiny-edit are missing from this checkout)" if model == DEFAULT_MODEL else ""
        return _fail(
            f"no pipeline at {str(model)!r}{hint}; pass --model PATH, a folder written by VideoEditPipeline.save_pretrained"
        )
    # the arguments, the input and the target, before the model is loaded
    if args.steps < 2:
        return _fail(f"--steps must be at least 2; got {args.steps}")
    if not 0 < args.strength <= 1:  # also refuses nan
        return _fail(f"--strength must be in (0, 1] (1 = from pure noise); got {args.strength}")
    index = json.loads((model / "model_index.json").read_text())
    if args.regenerate_audio and not all((index.get(name) or [None])[0] for name in AUDIO_COMPONENTS):
        return _fail(f"--regenerate-audio needs a model with audio components; {str(model)!r} has none (use --keep-audio)")
    try:
        validation.check_text("instruction", args.instruction, required=True)
        validation.check_seed("--seed", args.seed)
        validation.check_number("--guidance", args.guidance, minimum=1, hint=" (1 = off)")
        validation.check_number("--video-guidance", args.video_guidance, minimum=1, hint=" (1 = off)")
        muxer.probe_video(args.input)
        validation.check_target(args.output, muxer.VIDEO_SUFFIXES, "--output")
        if Path(args.input).resolve() == Path(args.output).resolve():
            raise ValueError("the output must not overwrite the input")
        credentials = provenance.credentials_from_args(args)
    except ValueError as error:
        return _fail(str(error))

    import torch

    from avgen.pipelines.video_edit import VideoEditPipeline

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:  # weights that are missing, unreadable or hold NaN are refused before they load (pipelines.loading)
        pipe = VideoEditPipeline.from_pretrained(model).to(device)
    except (FileNotFoundError, ValueError) as error:
        return _fail(str(error))
    try:  # the pipeline's own checks (e.g. a video longer than the model covers) raise before any compute
        output = pipe(
            args.input,
            args.instruction,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            video_guidance_scale=args.video_guidance,
            strength=args.strength,
            generator=torch.Generator(device).manual_seed(args.seed),
            regenerate_audio=args.regenerate_audio,
        )
    except ValueError as error:
        return _fail(str(error))
    output.metadata[0]["model"] = str(model)
    path = output.save(args.output, credentials=credentials, include_prompt=args.c2pa_prompt, source=args.input)
    frames = output.video(0)
    sound = "new sound" if output.metadata[0]["regenerate_audio"] else "sound kept" if output.audio is not None else "silent"
    seconds = len(frames) / output.fps
    print(
        f"{path}  {seconds:.2f} s  {frames.shape[2]}x{frames.shape[1]}  {sound}  {time.perf_counter() - start:.1f} s taken"
    )
    return 0
