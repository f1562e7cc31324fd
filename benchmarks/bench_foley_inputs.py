"""Foley on the footage people have (issue 45): `avgen foley` on real encoder outputs (PyAV's libx264, libvpx-vp9) at
23.976, 25, 29.97, 30, 59.94 and 60 fps, at a variable frame rate, and in MP4, MOV, MKV and WebM, each at 64 px, 720p
and 1080p (2160p on request). For each clip: the sound's length in samples against the video's exact length, the
video stream's packets against the input's (bytes, and instants in seconds), and the peak memory of the foley run.

    nice -n 10 .venv/bin/python benchmarks/bench_foley_inputs.py [--seconds 2] [--steps 2] [--resolutions 64px,720p,1080p]

Peak memory is ru_maxrss of a process that runs nothing but that one `avgen foley` call (cli.main): forked from a
parent that has imported avgen, torch and PyAV and done nothing else, so it counts what a fresh `avgen foley`
process holds (the imports, the model, every decoded and resized frame, the AAC encoder, the C2PA signer) without
importing torch once per clip. Each clip is encoded in a forked process of its own, so no encoder's memory enters a
foley peak. The checks run in the foley process after its peak is read.

Writes benchmarks/results/foley_inputs.json and .md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avgen import cli, muxer
from avgen.clock import nearest_supported_fps

ROOT = Path(__file__).resolve().parents[1]
NTSC = {23.976: Fraction(24000, 1001), 29.97: Fraction(30000, 1001), 59.94: Fraction(60000, 1001)}
RESOLUTIONS = {"64px": (64, 64), "720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}
CONTAINERS = {".mp4": ("mp4", "libx264"), ".mov": ("mov", "libx264"), ".mkv": ("matroska", "libx264"), ".webm": ("webm", "libvpx-vp9")}
VFR_MS = (33, 50, 17, 41, 66, 25)  # frame durations of the variable-rate clips, cycled (30.6 fps on average)
# (container, fps, variable rate): every rate in MP4, each other container at 29.97 (a phone's), variable rate in two
CASES = [(".mp4", fps, False) for fps in (23.976, 25, 29.97, 30, 59.94, 60)] + [
    (".mov", 29.97, False), (".mkv", 29.97, False), (".webm", 29.97, False), (".mp4", 30, True), (".mkv", 30, True),
]  # fmt: skip


def case_name(suffix: str, fps: float, vfr: bool, resolution: str) -> str:
    return f"{suffix[1:]}-{'vfr' if vfr else fps}-{resolution}"


def encode(path: Path, suffix: str, fps: float, vfr: bool, size: tuple[int, int], seconds: float) -> None:
    """A square moving over a still noise background for `seconds`, at `fps` or, vfr, with frame durations cycling
    through VFR_MS."""
    container_format, codec = CONTAINERS[suffix]
    width, height = size
    rate = NTSC.get(fps, Fraction(fps))
    durations = [VFR_MS[i % len(VFR_MS)] for i in range(10_000)]
    num_frames = int(np.searchsorted(np.cumsum(durations), seconds * 1000)) if vfr else int(seconds * rate)
    rng = np.random.default_rng(0)
    background = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
    side = max(8, height // 8)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"} if codec == "libx264" else {"deadline": "realtime", "cpu-used": "8"}
        if vfr:
            stream.codec_context.time_base = Fraction(1, 1000)
        start = 0
        for index in range(num_frames):
            picture = background.copy()
            left = (index * width // 40) % (width - side)
            picture[height // 3 : height // 3 + side, left : left + side] = 255
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = start if vfr else index
            start += durations[index]
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def packets(path: Path) -> list[tuple[bytes, Fraction]]:
    """The video packets' bytes and their start in seconds from the first frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        found = [(bytes(packet), packet.pts * stream.time_base) for packet in container.demux(stream) if packet.size]
    first = min(pts for _, pts in found)
    return [(data, pts - first) for data, pts in found]


def audio_samples(path: Path) -> int:
    """Samples of the output's sound as a player gets them: decoded, the AAC priming skipped by the edit list, the
    tail padding cut at the stream's declared length (muxer.read_video's reading, without decoding the pictures)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        decoded = sum(frame.samples for frame in container.decode(stream))
        declared = round(Fraction(stream.duration) * stream.time_base * stream.codec_context.sample_rate)
    return min(decoded, declared)


def run_case(source: Path, output: Path, model: str, steps: int, result) -> None:
    """In a forked process: `avgen foley`, its peak memory, then the checks."""
    sys.stdout = open(os.devnull, "w")  # the command's one-line summary
    start = time.perf_counter()
    code = cli.main(["foley", str(source), "-o", str(output), "--model", model, "--steps", str(steps)])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    if code != 0:
        result.put(dict(error=f"avgen foley exited with {code}"))
        return
    times, out_times = muxer.probe_timing(source), muxer.probe_timing(output)
    model_fps = nearest_supported_fps(times.rate)
    result.put(dict(
        frames=times.num_frames, time_base=str(times.time_base), video_seconds=str(times.seconds), rate=float(times.rate),
        model_fps=model_fps, model_frames=len(times.on_clock(model_fps)),
        samples=audio_samples(output), expected_samples=times.num_samples(16000),
        output_video_seconds=str(out_times.seconds), video_bit_exact=packets(output) == packets(source),
        peak_mb=round(peak, 1), seconds=round(seconds, 1),
    ))  # fmt: skip


def forked(target, *args):
    """Run target(*args, queue) in a forked process: its one message, or an error if it died without one."""
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    process = context.Process(target=target, args=(*args, result))
    process.start()
    while True:
        try:
            message = result.get(timeout=5)
            break
        except queue.Empty:
            if not process.is_alive():
                message = dict(error=f"the process died (exit code {process.exitcode})")
                break
    process.join()
    return message


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def encode_into(path, suffix, fps, vfr, size, seconds, result) -> None:
    encode(path, suffix, fps, vfr, size, seconds)
    result.put(None)


def markdown(rows: list[dict], settings: dict) -> str:
    lines = [
        "# `avgen foley` on real encoder outputs",
        "",
        f"{settings['seconds']:g} s clips (PyAV: libx264 veryfast, libvpx-vp9 realtime), `avgen foley --steps {settings['steps']}` with "
        f"{settings['model']}, on {settings['machine']}. Samples: the output's decoded sound (AAC priming and padding cut as a "
        "player cuts them) against the input video's exact length at 16 kHz; bit-exact: every video packet's bytes and "
        "instant equal the input's; peak: ru_maxrss of the process that ran only that foley call (forked after the imports).",
        "",
        "| clip | frames | time base | video length (s) | model clock | samples | expected | exact | video bit-exact | peak MB |",
        "|---|---:|---|---:|---|---:|---:|---|---|---:|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['case']} | {row['error']} |")
            continue
        lines.append(
            f"| {row['case']} | {row['frames']} | {row['time_base']} | {float(Fraction(row['video_seconds'])):.6f} | "
            f"{row['model_frames']} @ {row['model_fps']} fps | {row['samples']} | {row['expected_samples']} | "
            f"{'yes' if row['samples'] == row['expected_samples'] else 'NO'} | {'yes' if row['video_bit_exact'] else 'NO'} | {row['peak_mb']:.0f} |"
        )
    ratios = peak_ratios(rows)
    if ratios:
        lines += ["", "Peak memory against the same clip at 64 px:", "", "| clip | " + " | ".join(ratios[0][1]) + " |",
                  "|---|" + "---:|" * len(ratios[0][1])]  # fmt: skip
        lines += [f"| {name} | " + " | ".join(f"{value:.3f}" for value in values.values()) + " |" for name, values in ratios]
    return "\n".join(lines) + "\n"


def peak_ratios(rows: list[dict]) -> list[tuple[str, dict[str, float]]]:
    """(clip, {resolution: peak / the 64 px peak}) for every clip measured at 64 px and more."""
    peaks: dict[str, dict[str, float]] = {}
    for row in rows:
        if "error" not in row:
            clip, _, resolution = row["case"].rpartition("-")
            peaks.setdefault(clip, {})[resolution] = row["peak_mb"]
    return [(clip, {r: p / found["64px"] for r, p in found.items() if r != "64px"}) for clip, found in peaks.items()
            if "64px" in found and len(found) > 1]  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "weights" / "tiny"), help="AVGenPipeline folder")
    parser.add_argument("--steps", type=int, default=2, help="sampling steps (the fewest: the input path is measured)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each clip")
    parser.add_argument("--resolutions", default="64px,720p,1080p", help=f"comma-separated, of {', '.join(RESOLUTIONS)}")
    parser.add_argument("--only", default=None, help="comma-separated clip names (e.g. mp4-29.97,mkv-vfr)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "foley_inputs")
    parser.add_argument("--work", type=Path, default=None, help="where the clips go (default: a temporary folder)")
    args = parser.parse_args(argv)
    resolutions = args.resolutions.split(",")
    unknown = set(resolutions) - set(RESOLUTIONS)
    if unknown:
        parser.error(f"unknown resolutions {sorted(unknown)}; choose from {list(RESOLUTIONS)}")
    only = set(args.only.split(",")) if args.only else None
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-foley-inputs-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AVGEN_CACHE_DIR", str(work / "cache"))  # the C2PA development certificate, not the user's
    rows = []
    for resolution in resolutions:
        for suffix, fps, vfr in CASES:
            name = case_name(suffix, fps, vfr, resolution)
            if only and name.rpartition("-")[0] not in only:
                continue
            source, output = work / f"{name}{suffix}", work / f"{name}.out.mp4"
            if forked(encode_into, source, suffix, fps, vfr, RESOLUTIONS[resolution], args.seconds) is not None:
                raise RuntimeError(f"could not encode {source}")
            output.unlink(missing_ok=True)
            row = {"case": name, **forked(run_case, source, output, args.model, args.steps)}
            print(json.dumps(row), flush=True)
            rows.append(row)
            source.unlink()
            output.unlink(missing_ok=True)
    settings = dict(seconds=args.seconds, steps=args.steps, model=os.path.relpath(args.model, ROOT), machine=machine())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out.with_suffix(".json"), json.dumps(dict(settings=settings, rows=rows, peak_ratios=peak_ratios(rows)), indent=1))
    write_atomic(args.out.with_suffix(".md"), markdown(rows, settings))
    failed = [row["case"] for row in rows if "error" in row or row["samples"] != row["expected_samples"] or not row["video_bit_exact"]]
    print(f"{len(rows)} clips, {len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} cores, CPU"


if __name__ == "__main__":
    sys.exit(main())
