"""`avgen world`: render clips, write evaluation sets, measure the judge's accuracy.

    avgen world render -o clip.mp4 [--seed 0] [--fps 24 --duration 10] [--resolution 64] [--heldout]
    avgen world render -o clip.mp4 --spec spec.json        (or an inline JSON ClipSpec)
    avgen world write-evalset OUT_DIR --n 300 --split heldout [--hires]
    avgen world judge-accuracy ...                          (avgen/commands/judge_accuracy.py)

Same contract as avgen/cli.py: configure(parser) adds the arguments, run(args) returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

import avgen.world
from avgen import validation
from avgen.cli import _try_import
from avgen.muxer import VIDEO_SUFFIXES, write_video
from avgen.world.captions import caption
from avgen.world.evalset import write_evalset
from avgen.world.spec import DEFAULT_SAMPLE_RATE, WORLD_FPS, ClipSpec, sample_spec

JUDGE_ACCURACY_MODULE = "avgen.commands.judge_accuracy"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="world_command", metavar="WORLD_COMMAND")

    render = sub.add_parser("render", help="render one sampled or specified clip to an MP4")
    render.add_argument("-o", "--output", type=Path, required=True, help="the MP4 to write")
    render.add_argument("--spec", help="a ClipSpec as JSON, inline or a file path (else a clip is sampled)")
    render.add_argument("--seed", type=int, default=0, help="seed of the sampled clip")
    render.add_argument("--heldout", action="store_true", help="sample a held-out subject-colour pair")
    render.add_argument("--caption-split", choices=("train", "heldout"), default="train", help="paraphrase set of the caption")
    _add_format_arguments(render)
    render.add_argument("--truth", type=Path, help="also write the ground truth as JSON here")
    render.set_defaults(_world_run=_run_render)

    evalset = sub.add_parser("write-evalset", help="write a fixed evaluation set (MP4s + metadata.jsonl), resumable")
    evalset.add_argument("out_dir", type=Path)
    evalset.add_argument("--n", type=int, default=300, help="number of clips")
    evalset.add_argument("--split", choices=("heldin", "heldout"), default="heldin")
    evalset.add_argument("--seed", type=int, default=0)
    _add_format_arguments(evalset)
    evalset.add_argument("--hires", action="store_true", help="also render each clip at 2x resolution under hires/")
    evalset.set_defaults(_world_run=_run_write_evalset)

    judge_help = "measure the judge's accuracy on rendered ground truth"
    judge = sub.add_parser("judge-accuracy", help=judge_help, description=judge_help)
    module = _try_import(JUDGE_ACCURACY_MODULE)
    if module is None:
        judge.set_defaults(_world_run=_unavailable)
    else:
        module.configure(judge)
        judge.set_defaults(_world_run=module.run)
    parser.set_defaults(_world_parser=parser)


def _add_format_arguments(parser: argparse.ArgumentParser) -> None:
    # Defaults are None ("not given"), so that a --spec keeps its own values and the library defaults apply.
    parser.add_argument("--fps", type=int, choices=WORLD_FPS, help="frames per second (default: a Movie Gen format)")
    parser.add_argument("--duration", type=float, help="seconds, at most 16 (default: a Movie Gen format)")
    parser.add_argument("--resolution", type=int, help="square frame side in pixels (default 64)")
    parser.add_argument("--sample-rate", type=int, help=f"audio sample rate in Hz (default {DEFAULT_SAMPLE_RATE})")
    parser.add_argument("--fps-tag", action="store_true", help='prefix captions with "FPS-<fps>." (Movie Gen style)')


def _format_options(args: argparse.Namespace) -> dict:
    given = {"fps": args.fps, "duration": args.duration, "resolution": args.resolution, "sample_rate": args.sample_rate}
    return {key: value for key, value in given.items() if value is not None}


def run(args: argparse.Namespace) -> int:
    if getattr(args, "world_command", None) is None:
        args._world_parser.print_help()
        return 0
    return int(args._world_run(args) or 0)


def _unavailable(args: argparse.Namespace) -> int:
    print(f"avgen world {args.world_command}: not available in this version of avgen yet.", file=sys.stderr)
    return 2


# ClipSpec's fields that a flag sets; the spec names a field in its errors, the command names the flag
FORMAT_FLAGS = {"fps": "--fps", "duration": "--duration", "resolution": "--resolution", "sample_rate": "--sample-rate"}


def _load_spec(text: str):
    try:
        data = json.loads(text if text.lstrip().startswith("{") else Path(text).read_text())
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, not JSON
        raise ValueError(f"--spec must be a JSON ClipSpec or a file holding one ({error})") from None
    try:
        return ClipSpec.from_dict(data)
    except KeyError as error:
        raise ValueError(f"--spec: a ClipSpec needs the key {error}") from None
    except (TypeError, ValueError, AttributeError) as error:  # not an object, unknown keys, values out of range
        raise ValueError(f"--spec is not a valid ClipSpec: {error}") from None


def _render_request(args: argparse.Namespace):
    """(spec, caption) of `avgen world render`'s arguments, or a ValueError naming the flag of a bad one; the targets
    are checked (can be written) before anything is rendered."""
    if args.spec is not None and args.heldout:
        raise ValueError("--heldout samples a clip; it cannot be combined with --spec")
    validation.check_seed("--seed", args.seed)
    if args.duration is not None:
        validation.check_duration("--duration", args.duration)
    rng = np.random.default_rng(args.seed)
    options = _format_options(args)
    given = _load_spec(args.spec) if args.spec is not None else None
    try:
        spec = sample_spec(rng, held_out=args.heldout, **options) if given is None else given.replace(**options)
    except ValueError as error:  # out of the spec's range: the flag that set the field, else the spec's own value
        message = str(error)
        field = next((field for field in options if message.startswith(f"{field} ")), None)
        if field is None:  # a sampled clip's fields all come from flags: only a given spec has values of its own
            raise ValueError(f"--spec: {message}" if given is not None else message) from None
        raise ValueError(FORMAT_FLAGS[field] + message[len(field) :]) from None
    if args.truth is not None:
        validation.check_target(args.truth, None, "--truth")
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)  # as before: the output's folder is made
    except OSError as error:
        raise ValueError(f"--output: cannot make the folder {str(args.output.parent)!r} ({error.strerror})") from None
    validation.check_target(args.output, VIDEO_SUFFIXES, "--output")
    return spec, caption(spec, rng, args.caption_split, args.fps_tag)


def _run_render(args: argparse.Namespace) -> int:
    try:
        spec, text = _render_request(args)
    except ValueError as error:
        print(f"avgen world render: {error}", file=sys.stderr)
        return 2
    clip = avgen.world.render_clip(spec)  # looked up now: tests replace it to see that bad arguments render nothing
    write_video(args.output, clip.frames, clip.fps, clip.audio, clip.sample_rate,
                {"generator": "avgen world renderer", "prompt": text, "spec": spec.to_json()})
    if args.truth is not None:
        args.truth.write_text(json.dumps(clip.truth.to_dict()))
    print(f"{args.output}  {spec.duration:g} s  {spec.resolution}x{spec.resolution} @ {spec.fps} fps  \"{text}\"")
    return 0


def _run_write_evalset(args: argparse.Namespace) -> int:
    records = write_evalset(args.out_dir, args.n, split=args.split, seed=args.seed, hires=args.hires,
                            fps_tag=args.fps_tag, progress=True, **_format_options(args))
    kinds = Counter(_sub_kind(record) for record in records)
    print(f"{args.out_dir}: {len(records)} clips ({', '.join(f'{count} {kind}' for kind, count in sorted(kinds.items()))})")
    return 0


def _sub_kind(record: dict) -> str:
    if record["heldout_pair"] and record["heldout_paraphrase"]:
        return "held-out pair + held-out caption"
    if record["heldout_pair"]:
        return "held-out pair"
    return "held-out caption" if record["heldout_paraphrase"] else "held-in"
