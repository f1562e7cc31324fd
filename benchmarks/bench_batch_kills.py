"""SIGKILLs at random moments during one `avgen batch` of 12 short clips, each followed by a rerun (issue 45).

An uninterrupted run makes the reference folder. Then the same batch is started in another folder and SIGKILLed
`--kills` times, each run being the rerun of the one killed before it; the moment of each kill is drawn (seeded) as
one of:
  - "anytime": uniformly within the first `load + 1.5 jobs` seconds of the run (the reference run's timings): while
    Python starts, the model loads, a job computes or saves;
  - "saving": when the hidden .partial of the run's first or second clip (drawn) shows in the folder (it is being
    encoded or signed), after a further uniform 0-`save` seconds (the reference run's median save): the window
    where a half-written file could be left.
Each run makes about half a clip before its kill on average, so the kills spread over the batch's jobs.
After the last kill the batch is rerun until it exits 0. Then:
  - every MP4 is byte-identical to the reference run's, but for its C2PA manifest, whose ids and signature are new for
    each signing (its payload is zeroed before comparing, as tests/commands/test_batch.py does), and that manifest
    validates (c2pa reads it as valid, with no failure code but the development certificate's "untrusted": its
    hashes bind it to the media);
  - every MP4 decodes whole (PyAV, every frame and sample), with the reference's frame and sample counts;
  - no hidden file is left (the batch's lock file aside), and manifest.jsonl is consistent: every line parses, every
    job has exactly one "ok" line, its file exists, and the last run's summary counts 12 jobs, none failed.

    .venv/bin/python benchmarks/bench_batch_kills.py [--kills 20] [--seed 0] [--model weights/tiny] [--out FILE]

Writes benchmarks/results/batch_kills.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from avgen import atomic

ROOT = Path(__file__).resolve().parents[1]
AVGEN = Path(sys.executable).with_name("avgen")
JOBS, STEPS, FPS, DURATION = 12, 2, 8, 0.5  # the least the command takes: 2 steps; 4 frames at 8 fps
C2PA_BOX = b"uuid" + bytes.fromhex("d8fec3d61b0e483c92975828877ec481")  # the box type and the C2PA manifest's uuid


def without_manifest(data: bytes) -> bytes:
    """An MP4's bytes with its C2PA manifest's payload zeroed: what the manifest signs, and its place and size."""
    start = data.find(C2PA_BOX) - 4
    if start < 0:
        return data
    end = start + int.from_bytes(data[start : start + 4], "big")
    return data[: start + 24] + bytes(end - start - 24) + data[end:]


def command(jobs_file: Path, out: Path, model: Path) -> list[str]:
    return [str(AVGEN), "batch", str(jobs_file), "-o", str(out), "--model", str(model), "--steps", str(STEPS), "--threads", "1"]


def hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".avgen-batch.lock") if out.exists() else []


def partials(out: Path) -> set[str]:
    """The muxer's temporary files: a clip being encoded or signed."""
    return {p.name for p in out.glob(".*.mp4.*.partial")} if out.exists() else set()


def made(out: Path) -> int:
    return sum(1 for _ in out.glob("*.mp4")) if out.exists() else 0


def reference_run(jobs_file: Path, out: Path, model: Path) -> dict:
    """The uninterrupted run, with the timings the kills are drawn from: when the first clip's .partial showed
    (Python started, the model loaded, the first job computed), how long saves last, seconds per job."""
    log = out.with_suffix(".log")  # a file, not a pipe: a pipe nobody reads while it runs could fill and stall it
    start = time.perf_counter()
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command(jobs_file, out, model), stdout=subprocess.DEVNULL, stderr=stderr)
    first_partial, saves, saving_since = None, [], None
    while process.poll() is None:
        now = time.perf_counter() - start
        if partials(out) and saving_since is None:
            saving_since = now
            first_partial = first_partial or now
        elif not partials(out) and saving_since is not None:
            saves.append(now - saving_since)
            saving_since = None
        time.sleep(0.002)
    total = time.perf_counter() - start
    assert process.returncode == 0, log.read_text()
    summary = json.loads((out / "summary.json").read_text())
    per_job = summary["seconds"] / JOBS
    return dict(seconds=round(total, 2), first_partial_at=round(first_partial, 2), per_job=round(per_job, 3),
                save_seconds=round(float(np.median(saves)), 3) if saves else 0.05)  # fmt: skip


def killed_run(jobs_file: Path, out: Path, model: Path, kind: str, delay: float, nth: int = 1) -> dict:
    """Start the batch, SIGKILL it at the drawn moment (unless it ends first); what the kill interrupted. "saving"
    counts from the moment the `nth` clip of this run starts its save."""
    before, stale = made(out), partials(out)  # a killed run's, which this one deletes once it holds the lock
    start = time.perf_counter()
    process = subprocess.Popen(command(jobs_file, out, model), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trigger = 0.0 if kind == "anytime" else None
    saving = set()  # ids of the clips this run was seen saving (".00003.mp4.1a2b3c4d.partial" -> "00003")
    while process.poll() is None:
        now = time.perf_counter() - start
        saving |= {name[1:].split(".mp4")[0] for name in partials(out) - stale}
        if trigger is None and len(saving) >= nth:
            trigger = now
        if trigger is not None and now >= trigger + delay:
            at_kill = len(partials(out) - stale)
            process.send_signal(signal.SIGKILL)
            process.wait()
            return dict(kind=kind, at=round(now, 3), killed=True, partials_at_kill=at_kill, clips_before=before,
                        clips_after=made(out), partials_left=len(partials(out)))  # fmt: skip
        time.sleep(0.002)
    return dict(kind=kind, at=round(time.perf_counter() - start, 3), killed=False, exit_code=process.returncode, clips_before=before, clips_after=made(out))


def check(out: Path, reference: Path) -> dict:
    """The comparisons of the docstring; returns what was found (every list empty when all is well)."""
    from avgen.muxer import read_video
    from avgen.provenance import read_credentials

    names = sorted(p.name for p in reference.glob("*.mp4"))
    found = dict(clips=len(names), missing=[], differ=[], bad_credentials=[], bad_decode=[], hidden_left=hidden(out))
    for name in names:
        path = out / name
        if not path.is_file():
            found["missing"].append(name)
            continue
        data, expected = path.read_bytes(), (reference / name).read_bytes()
        if without_manifest(data) != without_manifest(expected):
            found["differ"].append(name)
        credentials = read_credentials(path)
        # the development certificate is untrusted by design; any other failure (a hash mismatch) is a broken file
        failures = set(credentials["failures"]) - {"signingCredential.untrusted"} if credentials else {"no manifest"}
        if failures or credentials["state"] not in ("Valid", "Trusted"):
            found["bad_credentials"].append(name)
        clip, ref = read_video(path), read_video(reference / name)
        samples = [None if video.audio is None else video.audio.shape for video in (clip, ref)]
        if clip.frames.shape != ref.frames.shape or samples[0] != samples[1] or not np.array_equal(clip.frames, ref.frames):
            found["bad_decode"].append(name)
    extra = sorted({p.name for p in out.glob("*.mp4")} - set(names))
    lines = (out / "manifest.jsonl").read_bytes().splitlines()
    entries, unparsed = [], 0
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            unparsed += 1
    ok = [entry["id"] for entry in entries if entry["status"] == "ok"]
    summary = json.loads((out / "summary.json").read_text())
    found["manifest"] = dict(
        lines=len(lines), unparsed_lines=unparsed, ok_lines=len(ok), ids_with_one_ok=len({i for i in ok if ok.count(i) == 1}),
        ok_without_file=[i for i in ok if not (out / f"{i}.mp4").is_file()], errors=sum(e["status"] == "error" for e in entries),
        last_summary={key: summary[key] for key in ("jobs", "ok", "error", "skipped")}, extra_clips=extra,
    )  # fmt: skip
    m = found["manifest"]
    found["consistent"] = (
        unparsed == 0 and m["ok_lines"] == len(names) == m["ids_with_one_ok"] and not m["ok_without_file"] and m["errors"] == 0
        and m["last_summary"]["jobs"] == len(names) and m["last_summary"]["error"] == 0 and not extra
    )  # fmt: skip
    found["all_good"] = found["consistent"] and not any(found[key] for key in ("missing", "differ", "bad_credentials", "bad_decode", "hidden_left"))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=str(ROOT / "weights" / "tiny"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "batch_kills.json"))
    args = parser.parse_args(argv)
    model = Path(args.model).resolve()
    rng = np.random.default_rng(args.seed)
    prompts = ["a red ball bounces", "a blue car drives left", "a dog walks right, rain", "a white bird flies, calm piano music"]
    jobs = [{"prompt": prompts[i % len(prompts)], "duration": DURATION, "fps": FPS} for i in range(JOBS)]  # seeds from the ids
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="avgen-batch-kills-") as tmp:
        tmp = Path(tmp)
        jobs_file = tmp / "jobs.jsonl"
        jobs_file.write_text("".join(json.dumps(job) + "\n" for job in jobs))
        timings = reference_run(jobs_file, tmp / "reference", model)
        print(f"reference: {timings}", flush=True)
        anytime = timings["first_partial_at"] + 1.5 * timings["per_job"]
        kills = []
        for index in range(args.kills):
            kind = "anytime" if rng.random() < 0.5 else "saving"
            delay = float(rng.uniform(0, anytime if kind == "anytime" else timings["save_seconds"]))
            nth = int(rng.integers(1, 3))  # "saving": the run's first or second clip
            run = killed_run(jobs_file, tmp / "out", model, kind, delay, nth)
            kills.append(dict(index=index, delay=round(delay, 3), **({"nth_clip": nth} if kind == "saving" else {}), **run))
            print(kills[-1], flush=True)
        reruns = 0
        while True:  # until a run ends by itself with exit 0
            reruns += 1
            last = subprocess.run(command(jobs_file, tmp / "out", model), capture_output=True)
            if last.returncode == 0 or reruns == 3:
                break
        found = check(tmp / "out", tmp / "reference")
    seconds = time.perf_counter() - start
    real_kills = sum(kill["killed"] for kill in kills)
    result = dict(
        jobs=JOBS, steps=STEPS, fps=FPS, duration_s=DURATION, model=model.name, seed=args.seed, kills_drawn=args.kills,
        kills=real_kills, kills_while_saving=sum(k["killed"] and k["partials_at_kill"] > 0 for k in kills),
        final_reruns=reruns, final_exit_code=last.returncode, reference=timings, seconds=round(seconds, 1),
        seconds_per_kill=round(seconds / max(1, args.kills), 1), found=found, runs=kills,
    )  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, json.dumps(result, indent=1) + "\n")
    print(json.dumps({key: result[key] for key in ("kills", "kills_while_saving", "final_exit_code", "seconds", "seconds_per_kill")}), json.dumps(found))
    return 0 if found["all_good"] and result["final_exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
