"""`avgen generate "prompt" -o out.mp4`: text -> video with synchronized sound (AVGenPipeline), one MP4.

Every argument, the target and the weights are checked before the model is loaded; the MP4 is written
atomically (muxer), with the provenance (prompt, seed, model version) as tags and a signed C2PA manifest
(avgen.provenance: --c2pa-cert/--c2pa-key, --c2pa-prompt, --no-credentials). Prompt words the model was never
trained on are named in one "note:" line before it computes (avgen.vocabulary). Prints one line at the end:
path, duration, resolution, fps and the seconds it took; with --profile, then the seconds of each stage.
"""

from __future__ import annotations

import argparse
import sys
import time

from avgen import provenance
from avgen.vocabulary import vocabulary_notes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help='what to see and hear, e.g. "a red ball bounces on a wooden floor, rain"')
    parser.add_argument("-o", "--output", required=True, help="where to write the MP4")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same clip")
    parser.add_argument("--fps", type=int, default=24, help="frames per second: 8, 12, 16, 24, 25 or 30 (default 24)")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: 10 at 24 fps, 16 at 16 fps, as Movie Gen)")
    parser.add_argument("--height", type=int, default=None, help="video model's frame height (default: the model's, 64)")
    parser.add_argument("--width", type=int, default=None, help="video model's frame width (default: the model's, 64)")
    parser.add_argument("--steps", type=int, default=50, help="sampling steps of the video model")
    parser.add_argument("--audio-steps", type=int, default=None, help="sampling steps of the audio model (default: --steps)")
    parser.add_argument("--guidance", type=float, default=5.0, help="classifier-free guidance of the video model (1 = off)")
    parser.add_argument("--audio-guidance", type=float, default=3.0, help="classifier-free guidance of the audio model (1 = off)")
    parser.add_argument("--audio-video-guidance", type=float, default=1.0, help="the audio model's guidance on the video (1 = off, the default)")
    parser.add_argument("--negative-prompt", default=None, help="what the video should not show")
    parser.add_argument("--audio-prompt", default=None, help="what to hear, if not the prompt (e.g. \"rain and calm piano music\")")
    parser.add_argument("--no-audio", action="store_true", help="a silent clip (the audio models are not run)")
    parser.add_argument("--no-upsample", action="store_true", help="keep the video model's resolution (no 2x upsampler)")
    parser.add_argument("--model", default=None, help="AVGenPipeline folder or hub id (default: the shipped weights, weights/tiny)")
    parser.add_argument("--profile", action="store_true", help="after the summary, print the seconds of each stage (loading, "
                        "text encoders, video transformer, decodes, upsampler, audio transformer, mux)")
    provenance.add_arguments(parser)


def check_args(args: argparse.Namespace) -> None:
    """Raise ValueError, naming the flag, for what can be told wrong without the model (the pipeline checks the
    rest): the same rules as the pipeline's (avgen.validation), and a target that can be written."""
    from avgen import muxer, validation
    from avgen.clock import check_fps

    validation.check_text("prompt", args.prompt, required=True)
    validation.check_texts("--negative-prompt", args.negative_prompt)  # None: not given
    validation.check_texts("--audio-prompt", args.audio_prompt)
    validation.check_seed("--seed", args.seed)
    check_fps(args.fps, "--fps")
    if args.duration is not None:
        validation.check_duration("--duration", args.duration)
    for name in ("steps", "audio_steps"):
        value = getattr(args, name)
        if value is not None and value < 2:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 2 (the linear-quadratic schedule); got {value}")
    for name in ("height", "width"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be a positive number of pixels; got {getattr(args, name)}")
    validation.check_number("--guidance", args.guidance, hint=" (1 = off)")
    validation.check_number("--audio-guidance", args.audio_guidance, hint=" (1 = off)")
    validation.check_number("--audio-video-guidance", args.audio_video_guidance, minimum=1, hint=" (1 = off)")
    validation.check_target(args.output, muxer.VIDEO_SUFFIXES, "--output")  # an .mp4 in a folder that can be written


@vocabulary_notes()  # the pipeline's unknown-word warning as one "note:" line
def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    try:
        check_args(args)
        credentials = provenance.credentials_from_args(args)  # read and checked before the model loads
    except ValueError as error:
        print(f"avgen generate: {error}", file=sys.stderr)
        return 2

    import torch

    from avgen.pipelines.text_to_audio_video import AVGenPipeline, resolve_weights
    from avgen.profiling import PipelineProfile

    device = "cuda" if torch.cuda.is_available() else "cpu"
    profile = PipelineProfile(device, enabled=args.profile)  # hooks on the pipeline's modules, only with --profile
    try:  # weights that are missing, unreadable or hold NaN are refused before they load (pipelines.loading)
        model = resolve_weights(args.model)
        with profile.stage("loading"):
            pipe = AVGenPipeline.from_pretrained(model).to(device)
    except (FileNotFoundError, ValueError) as error:
        print(f"avgen generate: {error}", file=sys.stderr)
        return 2
    profile.attach(pipe)
    try:  # what only the model can tell (a duration longer than it covers, a size it cannot make)
        output = pipe(
            args.prompt,
            negative_prompt=args.negative_prompt,
            audio_prompt=args.audio_prompt,
            height=args.height,
            width=args.width,
            duration=args.duration,
            fps=args.fps,
            num_inference_steps=args.steps,
            audio_num_inference_steps=args.audio_steps,
            guidance_scale=args.guidance,
            audio_guidance_scale=args.audio_guidance,
            audio_video_guidance_scale=args.audio_video_guidance,
            generator=torch.Generator(device).manual_seed(args.seed),
            upsample=False if args.no_upsample else None,  # None: when the pipeline has an upsampler
            generate_audio=not args.no_audio,
        )
    except ValueError as error:
        print(f"avgen generate: {error}", file=sys.stderr)
        return 2
    output.metadata[0]["model"] = str(model)
    with profile.stage("mux"):
        path = output.save(args.output, credentials=credentials, include_prompt=args.c2pa_prompt)
    num_frames, height, width = output.frames.shape[1:4]  # (1, F, H, W, 3)
    taken = time.perf_counter() - start
    print(f"{path}  {num_frames / output.fps:.2f} s  {width}x{height}  {output.fps} fps  {taken:.1f} s taken")
    if args.profile:
        print(profile.report(taken))
    return 0
