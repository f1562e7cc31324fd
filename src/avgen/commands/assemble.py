"""`avgen assemble weights/tiny`: turn a folder of exported components into a loadable AVGenPipeline;
`avgen assemble weights/tiny-edit --edit-base weights/tiny`: the same for the edit model (VideoEditPipeline);
`avgen assemble FOLDER --video-only`: text_encoder, vae and transformer alone (TextToVideoPipeline)."""

from __future__ import annotations

import argparse

from avgen.training.export import DTYPES, assemble


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a folder of exported components (avgen export), e.g. weights/tiny")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    parser.add_argument("--edit-base", default=None, metavar="AVGEN_FOLDER",
                        help="FOLDER holds an edit model (transformer, text_encoder); take the rest from this AVGenPipeline "
                             "folder and write a VideoEditPipeline")
    parser.add_argument("--tokenizer", default=None, metavar="DIR",
                        help="the tokenizer the text encoders were trained with (default: FOLDER/text_encoder's own, which `avgen "
                             "export` writes beside a pretrained encoder, else FOLDER/tokenizer, else the edit base's)")
    parser.add_argument("--video-only", action="store_true",
                        help="FOLDER holds the text-to-video models only (text_encoder, vae, transformer): write a TextToVideoPipeline")


def run(args: argparse.Namespace) -> int:
    if args.video_only and args.edit_base:
        raise SystemExit("avgen assemble: --video-only and --edit-base exclude each other")
    kind = "TextToVideoPipeline" if args.video_only else "VideoEditPipeline" if args.edit_base else "AVGenPipeline"
    print(f"{kind} written to {assemble(args.folder, args.dtype, args.edit_base, args.video_only, args.tokenizer)}")
    return 0
