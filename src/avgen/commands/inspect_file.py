"""`avgen inspect FILE.mp4`: what a file says about itself.

Prints its content credentials (the C2PA manifest as c2pa.Reader reads it: validation state, signer, actions and
digital source type, ingredients, avgen's assertion), its metadata tags, and its streams with their exact durations
(frames / fps for video; for audio the samples the container declares, the encoder's priming and padding excluded).
--json prints the whole C2PA manifest store instead. Exit status: 0, or 1 when the manifest is invalid (the file
was changed after signing), 2 when the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="an MP4 (or any file c2pa and FFmpeg read)")
    parser.add_argument("--json", action="store_true", help="print the C2PA manifest store as JSON (nothing else)")


def exact_seconds(value: Fraction) -> str:
    """2 -> "2 s", 7/3 -> "2.33333 s (7/3 s exactly)"."""
    return f"{value} s" if value.denominator == 1 else f"{float(value):g} s ({value} s exactly)"


def streams(path: Path) -> tuple[list[str], dict]:
    """One line per stream (kind, codec, size or rate, count and exact duration), and the container's tags."""
    import av

    lines = []
    with av.open(str(path)) as container:
        counts = {stream.index: 0 for stream in container.streams}
        for packet in container.demux():
            if packet.size:
                counts[packet.stream.index] += 1
        for stream in container.streams:
            codec = stream.codec_context
            head = f"#{stream.index} {stream.type:5s} {codec.name}"
            declared = Fraction(stream.duration) * stream.time_base if stream.duration is not None and stream.time_base else None
            if stream.type == "video":
                rate = Fraction(stream.average_rate or stream.guessed_rate or 0)
                frames = counts[stream.index]
                seconds = exact_seconds(frames / rate) if rate else "?"
                lines.append(f"{head}  {codec.width}x{codec.height} {codec.pix_fmt}  {float(rate):g} fps  {frames} frames = {seconds}")
            elif stream.type == "audio":
                layout = codec.layout.name if codec.layout else f"{codec.channels} ch"
                samples = round(declared * codec.sample_rate) if declared is not None else None
                length = f"{samples} samples = {exact_seconds(Fraction(samples, codec.sample_rate))}" if samples is not None else "length unknown"
                lines.append(f"{head}  {codec.sample_rate} Hz {layout}  {length}")
            else:
                lines.append(f"{head}" + (f"  {exact_seconds(declared)}" if declared is not None else ""))
        tags = dict(container.metadata)
    return lines, tags


def credentials_lines(report: dict | None) -> list[str]:
    """The manifest in a few lines: state, signer, claim generator, actions, ingredients, avgen's assertion."""
    from avgen.provenance import ASSERTION, IPTC, actions_of

    if report is None:
        return ["none (no C2PA manifest in this file)"]
    manifest = report["manifest"] or {}
    failures = ", ".join(report["failures"]) or "none"
    lines = [f"validation: {report['state']} (failures: {failures})"]
    signature = manifest.get("signature_info", {})  # the development certificate's names say what it is
    lines.append(f"signer: {signature.get('common_name', '?')}, issued by {signature.get('issuer', '?')}, {signature.get('alg', '?')}")
    generators = ", ".join(f"{g.get('name')} {g.get('version', '')}".strip() for g in manifest.get("claim_generator_info", []))
    lines.append(f"claim generator: {generators or '?'}  title: {manifest.get('title', '?')}")
    for action in actions_of(manifest):
        source = action.get("digitalSourceType", "").removeprefix(IPTC)
        agent = action.get("softwareAgent", {})
        agent = f" by {agent.get('name')} {agent.get('version', '')}".rstrip() if isinstance(agent, dict) and agent else ""
        lines.append(f"action: {action['action']}" + (f"  source type: {source}" if source else "") + agent)
    for assertion in manifest.get("assertions", []):
        if assertion["label"] == ASSERTION:
            lines.append("avgen: " + ", ".join(f"{key} {value}" for key, value in assertion["data"].items()))
    for ingredient in manifest.get("ingredients", []):
        own = ingredient.get("active_manifest")
        lines.append(f"ingredient: {ingredient.get('title')} ({ingredient.get('relationship')})" + ("  with its own manifest" if own else ""))
    return lines


def run(args: argparse.Namespace) -> int:
    from avgen.provenance import read_credentials

    path = Path(args.file)
    if not path.is_file():
        print(f"avgen inspect: no such file: {args.file!r}", file=sys.stderr)
        return 2
    try:
        report = read_credentials(path)
        if args.json:
            print(json.dumps(report["store"] if report else None, indent=2))
            return 1 if report and report["state"] == "Invalid" else 0
        stream_lines, tags = streams(path)
    except Exception as error:  # c2pa's or FFmpeg's: the file is not what it claims to be
        print(f"avgen inspect: cannot read {args.file!r}: {error}", file=sys.stderr)
        return 2
    print(f"{path}  {path.stat().st_size:,} bytes")
    sections = {
        "content credentials (C2PA)": credentials_lines(report),
        "tags": [f"{key}: {value}" for key, value in tags.items()] or ["none"],
        "streams": stream_lines,
    }
    for title, lines in sections.items():
        print(title)
        print("\n".join(f"  {line}" for line in lines))
    return 1 if report and report["state"] == "Invalid" else 0
