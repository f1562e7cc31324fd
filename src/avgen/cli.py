"""The `avgen` command line.

Each subcommand is one module of avgen.commands, which exposes
`configure(parser: argparse.ArgumentParser) -> None` (adds its arguments) and `run(args) -> int`
(does the work, returns the exit code). Modules are imported only when their subcommand runs, so
`avgen --help` is fast and a missing optional dependency only breaks the subcommand that needs it.

Ctrl-C (SIGINT) ends any subcommand with one line on stderr, "avgen COMMAND: interrupted", and no traceback; a file
being written is left as it was, with no temporary file beside it (avgen.atomic). Run as the program, the process
then dies of the SIGINT, as any program Ctrl-C stops does (a shell reports status 130, and a script's loop over
avgen stops with it); `main(argv)` called from Python returns 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from avgen import __version__

# name -> (module implementing it, one-line help). Later issues add their modules here.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("avgen.commands.generate", "text -> video with sound, written as an MP4"),
    "foley": ("avgen.commands.foley", "add generated sound to a video (keeps the video stream)"),
    "edit": ("avgen.commands.edit", "edit a video from a text instruction"),
    "batch": ("avgen.commands.batch", "run a JSONL/text file of jobs, resumable, locally or on Ray"),
    "inspect": ("avgen.commands.inspect_file", "what an MP4 says about itself: C2PA manifest, tags, streams, exact durations"),
    "eval": ("avgen.commands.evaluate", "judge a folder of MP4s + metadata.jsonl with the world's benchmark"),
    "train": ("avgen.commands.train", "train a model of a pipeline preset"),
    "assemble": ("avgen.commands.assemble", "make a folder of exported components a loadable AVGenPipeline (model_index.json)"),
    "train-tokenizer": ("avgen.commands.train_tokenizer", "learn the preset's BPE tokenizer from the world's training captions"),
    "cache-latents": ("avgen.commands.cache_latents", "encode world clips once into a latent cache for video training"),
    "export": ("avgen.commands.export", "write a trained component as half-precision safetensors weights"),
    "world": ("avgen.commands.world", "the procedural world: render clips, write evaluation sets, judge accuracy"),
    "demo": ("avgen.commands.demo", "write a demo MP4 with sound through the output/muxer path"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (to add its arguments), so `avgen --help` stays
    fast and one subcommand's import problem cannot break the others."""
    parser = argparse.ArgumentParser(prog="avgen", description="avgen: text to video with synchronized sound.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        if name != command:
            continue
        module = _try_import(module_name)
        if module is None:
            sub_parser.add_argument("_rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            sub_parser.set_defaults(_unavailable=True)
        else:
            module.configure(sub_parser)
    return parser


def _try_import(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only "this subcommand's module is not built yet" is tolerated; a missing dependency inside
        # an existing module is a real error and must surface.
        if error.name and module_name.startswith(error.name):
            return None
        raise


INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a program Ctrl-C stopped


def main(argv: list[str] | None = None) -> int:
    """Run `avgen ARGV` (default: sys.argv[1:]) and return its exit code; a Ctrl-C is answered with one line (see the
    module's docstring): returned as 130 when `argv` is given, else raised on to the interpreter, which then ends the
    process by SIGINT, printing no traceback for it."""
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    unraisable = sys.unraisablehook
    sys.unraisablehook = _without_interrupts(unraisable)
    try:
        return _run(argv, command)
    except KeyboardInterrupt:
        print(f"avgen {command if command in SUBCOMMANDS else ''}".rstrip() + ": interrupted", file=sys.stderr, flush=True)
        if not as_program:
            return INTERRUPTED
        sys.excepthook = _without_interrupts(sys.excepthook)  # the line above says it all: no traceback
        raise  # Python exits by SIGINT for an unhandled KeyboardInterrupt, after its usual shutdown
    finally:
        sys.unraisablehook = unraisable


def _without_interrupts(hook):
    """`hook` (sys.excepthook or sys.unraisablehook) that prints nothing for a KeyboardInterrupt. Native code's
    callbacks (c2pa's, through ctypes) report a KeyboardInterrupt raised inside them as unraisable and go on; the
    write they were part of raises it again (avgen.atomic.SignalGuard.check)."""

    def quiet(*args):
        kind = args[0] if len(args) == 3 else getattr(args[0], "exc_type", None)
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            return None
        return hook(*args)

    return quiet


def _run(argv: list[str], command: str | None) -> int:
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if args.version:
        print(f"avgen {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "_unavailable", False):
        print(f"avgen {args.command}: not available in this version of avgen yet.", file=sys.stderr)
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
