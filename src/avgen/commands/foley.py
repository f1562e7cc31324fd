"""`avgen foley in.mp4 -o out.mp4`: add generated, synchronized sound to a video.

The input may be any video FFmpeg decodes (MP4, MOV, MKV, WebM, OGG; H.264, HEVC, VP8, VP9, AV1, Theora, ...) at any
frame rate, constant or variable (phones film at 29.97, 30, 59.94 and 60); the model sees its frames on its own clock
(VideoToAudioPipeline). The video stream is copied packet for packet (muxer.add_audio), never re-encoded, so the
pictures are exactly the input's; the new sound track, exactly as long as the video, replaces any audio the input had.

The output's extension picks its container: an MP4 (AAC sound) is what browsers play and what the content
credentials are signed into, so it is the one to ask for; it carries H.264, HEVC, VP9, AV1 and MPEG-4 video. A stream
an MP4 cannot carry as it is goes into an MKV (FLAC sound: VP8, Theora, ...) or a WebM (Opus sound: VP8); asking for
an MP4 of one is refused before the model loads, naming the codec and the containers that can. An MKV or a WebM
cannot carry content credentials (c2pa cannot sign them): it is written without, saying so in a "note:" line, and
--c2pa-cert, --c2pa-key and --c2pa-prompt are refused for one. An MP4 carries a signed C2PA manifest of an edit with
the input as its parent ingredient (avgen.provenance's flags); prompt words the model was never trained on are named
in one "note:" line (avgen.vocabulary).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from avgen import provenance
from avgen.vocabulary import vocabulary_notes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="the video to add sound to: MP4, MOV, MKV, WebM, OGG, ...; any codec FFmpeg decodes, any frame rate")
    parser.add_argument("-o", "--output", required=True, help="where to write the video copied, with new sound: an .mp4 (signed content "
                        "credentials), or an .mkv or .webm for video an MP4 cannot carry (VP8, Theora)")
    parser.add_argument("--prompt", default=None, help='sounds to add besides the pictured ones, e.g. "with rain and calm piano music"')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50, help="sampling steps")
    parser.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance on the prompt (1 = off)")
    parser.add_argument("--video-guidance", type=float, default=1.0, help="guidance on the video (1 = off, the default)")
    parser.add_argument("--model", default=None, help="AVGenPipeline folder or hub id (default: the shipped weights, weights/tiny)")
    provenance.add_arguments(parser)


def output_credentials(args: argparse.Namespace, suffix: str) -> provenance.Credentials | None:
    """The flags' credentials for an MP4; for an MKV or WebM, which cannot carry them, None and a "note:" line, or a
    ValueError naming the flag the user gave for them."""
    if suffix == ".mp4":
        return provenance.credentials_from_args(args)
    kind = "an MKV" if suffix == ".mkv" else "a WebM"
    for flag in ("c2pa_cert", "c2pa_key", "c2pa_prompt"):
        if getattr(args, flag):
            raise ValueError(f"--{flag.replace('_', '-')}: {kind} cannot carry content credentials (C2PA); write an .mp4 to sign it")
    switched_off = os.environ.get(provenance.ENV_OFF, "").strip().lower() not in ("", "0", "false", "no")
    if args.no_credentials or switched_off:  # none asked for: nothing to say
        return None
    print(f"avgen foley: note: {kind} cannot carry content credentials (C2PA); {args.output} will have none", file=sys.stderr)
    return None


@vocabulary_notes()  # the pipeline's unknown-word warning as one "note:" line
def run(args: argparse.Namespace) -> int:
    import torch

    from avgen import muxer, validation
    from avgen.pipelines.text_to_audio_video import AVGenPipeline, resolve_weights

    start = time.perf_counter()
    try:  # the flags, the input, the target and the weights are checked before the model is loaded
        validation.check_texts("--prompt", args.prompt)  # may be empty: the pictures' sounds alone
        validation.check_seed("--seed", args.seed)
        validation.check_number("--guidance", args.guidance, hint=" (1 = off)")
        validation.check_number("--video-guidance", args.video_guidance, minimum=1, hint=" (1 = off)")
        validation.check_target(args.output, muxer.REMUX_SUFFIXES, "--output")
        suffix = Path(args.output).suffix.lower()
        # readable, timed, and its video stream fits in the output's container as it is
        muxer.check_copyable(args.input, suffix)
        if Path(args.input).resolve() == Path(args.output).resolve():
            raise ValueError("the output must not overwrite the input")
        model = resolve_weights(args.model)
        credentials = output_credentials(args, suffix)
    except (ValueError, FileNotFoundError) as error:
        print(f"avgen foley: {error}", file=sys.stderr)
        return 2

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # the audio stage of the full pipeline; the video models are not loaded (None), foley never runs them
    video_models = dict(text_encoder=None, vae=None, transformer=None, upsampler=None)
    try:  # weights that are missing, unreadable or hold NaN are refused before they load (pipelines.loading)
        pipe = AVGenPipeline.from_pretrained(model, **video_models).video_to_audio.to(device)
    except (FileNotFoundError, ValueError) as error:
        print(f"avgen foley: {error}", file=sys.stderr)
        return 2
    try:  # the pipeline checks every argument before it computes anything
        output = pipe(
            args.input,
            prompt=args.prompt,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            video_guidance_scale=args.video_guidance,
            generator=torch.Generator(device).manual_seed(args.seed),
        )
    except ValueError as error:
        print(f"avgen foley: {error}", file=sys.stderr)
        return 2
    metadata = {**output.metadata[0], "model": str(model)}
    sign = provenance.signing_step(metadata, credentials, args.c2pa_prompt, source=args.input)  # an edit of the input
    path = muxer.add_audio(args.input, output.audio[0], output.sample_rate, args.output, metadata, sign=sign)
    seconds = output.audio.shape[-1] / output.sample_rate
    print(f"{path}  {seconds:.2f} s  {time.perf_counter() - start:.1f} s taken")
    return 0
