"""`avgen world`: render clips, write evaluation sets, measure the judge's accuracy.

    avgen world render -o clip.mp4 [--seed 0] [--fps 24 --duration 10] [--resolution 64] [--heldout]
    avgen world render -o clip.mp4 --spec spec.json        (or an inline JSON ClipSpec)
    avgen world write-evalset OUT_DIR --n 300 --split heldout [--hires]
    avgen world judge-accuracy ...                          (avgen/world/judge_accuracy.py)

Same contract as avgen/cli.py: configure(parser) adds the arguments, run(args) returns the exit code;
heavy imports happen in run, since `avgen --help` configures every subcommand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from avgen.cli import _try_import
from avgen.world.spec import DEFAULT_SAMPLE_RATE, WORLD_FPS

JUDGE_ACCURACY_MODULE = "avgen.world.judge_accuracy"


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


def _load_spec(text: str):
    from avgen.world.spec import ClipSpec

    try:
        data = json.loads(text if text.lstrip().startswith("{") else Path(text).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"--spec must be a JSON ClipSpec or a file holding one ({error})") from None
    return ClipSpec.from_dict(data)


def _run_render(args: argparse.Namespace) -> int:
    import numpy as np

    from avgen.muxer import write_video
    from avgen.world import render_clip
    from avgen.world.captions import caption
    from avgen.world.spec import sample_spec

    if args.spec is not None and args.heldout:
        raise ValueError("--heldout samples a clip; it cannot be combined with --spec")
    rng = np.random.default_rng(args.seed)
    if args.spec is not None:
        spec = _load_spec(args.spec).replace(**_format_options(args))
    else:
        spec = sample_spec(rng, held_out=args.heldout, **_format_options(args))
    text = caption(spec, rng, args.caption_split, args.fps_tag)
    clip = render_clip(spec)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_video(args.output, clip.frames, clip.fps, clip.audio, clip.sample_rate,
                {"generator": "avgen world renderer", "prompt": text, "spec": spec.to_json()})
    if args.truth is not None:
        args.truth.write_text(json.dumps(clip.truth.to_dict()))
    print(f"{args.output}  {spec.duration:g} s  {spec.resolution}x{spec.resolution} @ {spec.fps} fps  \"{text}\"")
    return 0


def _run_write_evalset(args: argparse.Namespace) -> int:
    from avgen.world.evalset import write_evalset

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
