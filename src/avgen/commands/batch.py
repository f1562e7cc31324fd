"""`avgen batch prompts.jsonl -o out/`: many clips from a file of jobs, resumable, locally or on Ray Data.

Input: `.txt` files hold one prompt a line; any other file is JSONL, one object a line, with the keys
    prompt (required; for an edit job, the instruction), id, seed, duration, fps, negative_prompt, steps,
    guidance_scale, audio_prompt, no_audio; and for an edit job edit_source (an MP4, relative paths are read
    from the input file's folder) instead of duration, fps and no_audio. --steps, --guidance, --fps and
    --duration set what a job leaves out.
The format is told by the extension, not guessed per line: a line that is not JSON in a JSONL file is a bad job
(an error in the manifest), never silently a prompt. Blank lines are skipped.

Ids name the outputs (`<id>.mp4`): a job's `id`, else its line number zero-padded to five digits ("00007"), so
appending lines keeps the ids of the others. The default seed is derived from the id (the first 4 bytes of
sha256(id), big-endian), so a rerun, or a rerun on another machine, makes the same clip.

Every job is checked before any model loads; a bad job (bad JSON, unknown key, wrong type, unsupported fps,
missing edit source, duplicate id) is recorded as an error and the others run. Only what stops every job is fatal
(exit 2): an unreadable input, an output folder that cannot be written, a missing model, bad flags. A run with
failed jobs exits 1.

Output folder: one MP4 per job, written atomically by the muxer (a hidden .partial file, then a rename) with its
signed C2PA manifest (avgen.provenance: --c2pa-cert/--c2pa-key, --c2pa-prompt, --no-credentials; the credentials are
read and checked before any model loads, and each job's edit_source is its edit's parent ingredient), and
manifest.jsonl: one line per finished job {id, line, status ok|error|skipped, output (relative to the folder),
seconds, seed, error}, appended with a single write and fsync'ed as each job finishes. Appending costs O(1) a job
(a rewrite-and-rename would cost O(jobs)); a crash can at worst cut the last line, which the reader ignores. The
manifest is a log of every run: a job is done when its MP4 exists and some line says it was made (ok). At the end,
summary.json (this run's counts, seconds, clips per minute), also printed.

Resume: the same command again skips done jobs and makes the others; .partial files a killed run left behind are
deleted first (a lock file keeps two batches out of one folder, so they cannot be another run's). The muxer writes
no timestamps and encodes deterministically, so the same job and seed give byte-identical files, all but the C2PA
manifest (its ids and signature are new for each file; the media it signs are not), on the same
machine and library versions with the same number of torch threads (--threads; the engines agree too). The thread
count matters because a matrix product's float sums are split, and so rounded, by thread: the default, torch's
own count locally and 1 per Ray actor, gives frames a few levels of 255 apart between the engines.

Engines: `local` (default) loads each pipeline once and runs the jobs in order; `ray` runs them through Ray Data
(`map_batches` over an actor pool, each actor loads the pipelines once), started locally or joined with --address.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

from avgen import atomic, provenance

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
LOCK = ".avgen-batch.lock"

# key -> the types it accepts; which keys each kind of job takes
TYPES = {
    "id": (str,), "prompt": (str,), "seed": (int,), "duration": (int, float), "fps": (int,), "negative_prompt": (str,),
    "steps": (int,), "guidance_scale": (int, float), "audio_prompt": (str,), "no_audio": (bool,), "edit_source": (str,),
}  # fmt: skip
GENERATE_KEYS = set(TYPES) - {"edit_source"}
EDIT_KEYS = {"id", "prompt", "seed", "negative_prompt", "steps", "guidance_scale", "audio_prompt", "edit_source"}
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a plain file name; no leading dot (hidden, .partial)


def default_seed(job_id: str) -> int:
    """The seed of a job that gives none: the first 4 bytes of sha256(id) (the same on every machine and run)."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big")


def _type_name(types: tuple) -> str:
    return {(str,): "a string", (int,): "an integer", (bool,): "true or false"}.get(types, "a number")


def check_job(fields: dict, line: int, folder: Path, defaults: dict) -> dict:
    """One job's fields -> the job the engines run: {id, line, kind, seed, output, args (the pipeline's keyword
    arguments)}. Raises ValueError on what can be told wrong without the model."""
    from avgen import muxer, validation
    from avgen.clock import check_fps

    if not isinstance(fields, dict):
        raise ValueError(f"expected a JSON object; got {type(fields).__name__}")
    kind = "edit" if "edit_source" in fields else "generate"
    allowed = EDIT_KEYS if kind == "edit" else GENERATE_KEYS
    unknown = sorted(set(fields) - allowed)
    if unknown:
        what = "an edit job (one with edit_source)" if kind == "edit" and set(unknown) <= set(TYPES) else "a job"
        raise ValueError(f"unknown key(s) {unknown} for {what}; expected some of {sorted(allowed)}")
    for key, value in fields.items():
        # bool is an int in Python: refuse true/false where a number is meant (and 1/0 where a flag is)
        if not isinstance(value, TYPES[key]) or (isinstance(value, bool) and bool not in TYPES[key]):
            raise ValueError(f"{key} must be {_type_name(TYPES[key])}; got {json.dumps(value)}")
    job_id = fields.get("id", f"{line:05d}")
    if not ID_PATTERN.fullmatch(job_id):
        raise ValueError(f"id {job_id!r} must be 1-128 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'")
    if "prompt" not in fields:
        raise ValueError("prompt is missing" + (" (an edit job's prompt is its instruction)" if kind == "edit" else ""))
    validation.check_text("prompt", fields["prompt"], required=True)  # the rules of `avgen generate` and the pipelines
    for key in ("negative_prompt", "audio_prompt"):
        validation.check_texts(key, fields.get(key))
    seed = validation.check_seed("seed", fields.get("seed", default_seed(job_id)))
    steps = fields.get("steps", defaults["steps"])
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (the linear-quadratic schedule); got {steps}")
    guidance = validation.check_number("guidance_scale", fields.get("guidance_scale", defaults["guidance_scale"]), 1 if kind == "edit" else None)
    args = dict(
        prompt=fields["prompt"], negative_prompt=fields.get("negative_prompt"), audio_prompt=fields.get("audio_prompt"),
        num_inference_steps=steps, guidance_scale=guidance,
    )  # fmt: skip
    if kind == "edit":
        source = (folder / fields["edit_source"]).resolve()  # an absolute path: Ray workers run elsewhere
        muxer.probe_video(source)  # exists, is a video, at a supported fps
        if source == (defaults["out_dir"] / f"{job_id}.mp4").resolve():
            raise ValueError("edit_source must not be the job's own output")
        args["video"] = str(source)
    else:
        args["fps"] = check_fps(fields.get("fps", defaults["fps"]))
        duration = fields.get("duration", defaults["duration"])
        if duration is not None:
            validation.check_duration("duration", duration)
        args.update(duration=duration, generate_audio=not fields.get("no_audio", False))
    return dict(id=job_id, line=line, kind=kind, seed=seed, output=f"{job_id}.mp4", args=args)


def read_jobs(path: Path, defaults: dict) -> tuple[list[dict], list[dict]]:
    """(jobs, error rows) of an input file. Raises OSError/UnicodeDecodeError when it cannot be read at all."""
    text = path.read_text(encoding="utf-8")
    plain = path.suffix.lower() == ".txt"
    jobs, errors, first_line = [], [], {}
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        job_id, fields = f"{line:05d}", None
        try:
            if plain:
                fields = {"prompt": content.strip()}
            else:
                try:
                    fields = json.loads(content)
                except json.JSONDecodeError as error:
                    raise ValueError(f"not valid JSON ({error})") from None
            job = check_job(fields, line, path.parent, defaults)
            job_id = job["id"]
            if job_id in first_line:
                raise ValueError(f"duplicate id {job_id!r} (first used on line {first_line[job_id]})")
            first_line[job_id] = line
            jobs.append(job)
        except ValueError as error:
            seed = fields.get("seed") if isinstance(fields, dict) and type(fields.get("seed")) is int else None
            errors.append(row(job_id, line, "error", None, 0.0, seed, f"line {line}: {error}"))
    return jobs, errors


def row(job_id, line, status, output, seconds, seed, error=None) -> dict:
    """One manifest line."""
    return dict(id=job_id, line=line, status=status, output=output, seconds=round(seconds, 3), seed=seed, error=error)


class Manifest:
    """manifest.jsonl, appended one whole line per os.write, each fsync'ed before the next job is reported."""

    def __init__(self, path: Path):
        self.path = path
        self.made = set()  # ids some earlier line says were made
        data = path.read_bytes() if path.exists() else b""
        for content in data.splitlines():
            try:
                entry = json.loads(content)
            except ValueError:  # a line cut by a crash
                continue
            if isinstance(entry, dict) and entry.get("status") == "ok":
                self.made.add(entry.get("id"))
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if data and not data.endswith(b"\n"):
            os.write(self.fd, b"\n")  # end a cut line, so the next one is not glued to it

    def append(self, entry: dict) -> None:
        os.write(self.fd, (json.dumps(entry, ensure_ascii=False) + "\n").encode())
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class Runner:
    """Loads the pipelines the jobs need, once, and makes one job at a time into `out_dir`."""

    def __init__(
        self, out_dir: str, model: str | None = None, edit_model: str | None = None, threads: int | None = None,
        credentials="auto", include_prompt: bool = False,
    ):  # fmt: skip
        import torch

        from avgen.pipelines import AVGenPipeline, VideoEditPipeline

        if threads is not None:
            torch.set_num_threads(threads)
        self.out_dir, self.model, self.edit_model = Path(out_dir), model, edit_model
        self.credentials, self.include_prompt = credentials, include_prompt
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.pipes = {}
        for kind, cls, folder in (("generate", AVGenPipeline, model), ("edit", VideoEditPipeline, edit_model)):
            if folder is not None:
                self.pipes[kind] = cls.from_pretrained(folder).to(self.device)
                self.pipes[kind].set_progress_bar_config(disable=True)  # the batch has one bar, over jobs

    def __call__(self, job: dict) -> dict:
        import torch
        from tqdm import tqdm

        from avgen.vocabulary import vocabulary_notes

        start = time.perf_counter()
        try:
            pipe = self.pipes[job["kind"]]
            extra = {"upsample": pipe.upsampler is not None} if job["kind"] == "generate" else {}
            generator = torch.Generator(self.device).manual_seed(job["seed"])
            note = lambda line: tqdm.write(f"avgen batch: job {job['id']}: {line}", file=sys.stderr)  # noqa: E731
            with vocabulary_notes(note):  # prompt words the model was never trained on, before it computes
                output = pipe(**job["args"], **extra, generator=generator)
            output.metadata[0].update(model=self.model if job["kind"] == "generate" else self.edit_model, job_id=job["id"])
            source = job["args"].get("video")  # an edit's source: the manifest's parent ingredient
            output.save(self.out_dir / job["output"], credentials=self.credentials, include_prompt=self.include_prompt, source=source)
        except Exception as error:  # one failed job (too long for the model, out of memory, ...) must not stop the batch
            message = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
            return row(job["id"], job["line"], "error", None, time.perf_counter() - start, job["seed"], message)
        return row(job["id"], job["line"], "ok", job["output"], time.perf_counter() - start, job["seed"])


class GeneratorActor(Runner):
    """The Ray Data actor: a batch {"job": JSON strings} -> {"row": JSON strings of manifest rows}. JSON keeps Ray's
    Arrow blocks out of the jobs' mixed types (None, nested args)."""

    def __call__(self, batch: dict) -> dict:
        run_job = super().__call__
        return {"row": [json.dumps(run_job(json.loads(job))) for job in batch["job"]]}


def run_local(jobs: list[dict], runner_kwargs: dict, args, record) -> None:
    import torch

    threads = torch.get_num_threads()  # --threads is this run's; a caller in the same process keeps its own
    try:
        runner = Runner(**runner_kwargs)
        for job in jobs:
            record(runner(job))
    finally:
        torch.set_num_threads(threads)


def run_ray(jobs: list[dict], runner_kwargs: dict, args, record) -> None:
    import ray
    import ray.data

    started = not ray.is_initialized()
    if started:  # RAY_ADDRESS in the environment also joins a cluster; else Ray starts a local one
        ray.init(address=args.address, **({} if args.address else {"include_dashboard": False}))
    try:
        gpus = args.num_gpus_per_worker
        if gpus is None:  # a GPU per worker where the cluster has GPUs
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        ray.data.DataContext.get_current().enable_progress_bars = False  # our bar counts jobs
        rows = ray.data.from_items([{"job": json.dumps(job)} for job in jobs]).map_batches(
            GeneratorActor,
            fn_constructor_kwargs=runner_kwargs,
            compute=ray.data.ActorPoolStrategy(size=args.num_workers),
            num_gpus=gpus,
            batch_size=args.batch_size,
        )
        for entry in rows.iter_rows():  # streamed: each row is recorded as soon as its job is done
            record(json.loads(entry["row"]))
    finally:
        if started:
            ray.shutdown()


ENGINES = {"local": run_local, "ray": run_ray}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="a JSONL file of jobs, or a .txt file with one prompt a line")
    parser.add_argument("-o", "--output", required=True, help="the output folder (made if missing): <id>.mp4, manifest.jsonl, summary.json")
    parser.add_argument("--engine", choices=sorted(ENGINES), default="local", help="local (default) or ray (Ray Data; pip install 'avgen[cluster]')")
    parser.add_argument("--model", default=None, help="AVGenPipeline folder or hub id (default: the shipped weights, weights/tiny)")
    parser.add_argument("--edit-model", default=None, help="VideoEditPipeline folder for edit jobs (default: weights/tiny-edit)")
    parser.add_argument("--steps", type=int, default=50, help="sampling steps of jobs that give none (default 50)")
    parser.add_argument("--guidance", type=float, default=5.0, help="guidance_scale of jobs that give none (default 5)")
    parser.add_argument("--fps", type=int, default=24, help="fps of jobs that give none (default 24)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of jobs that give none (default: the model's, 10 at 24 fps)")
    parser.add_argument("--address", default=None, help="ray: the cluster to join, e.g. ray://head:10001 (default: start a local Ray)")
    parser.add_argument("--num-workers", type=int, default=1, help="ray: actors, each with its own copy of the pipelines (default 1)")
    parser.add_argument("--num-gpus-per-worker", type=float, default=None, help="ray: GPUs per actor (default: 1 if the cluster has GPUs, else 0)")
    parser.add_argument("--batch-size", type=int, default=1, help="ray: jobs per actor call; 1 reports each job as it ends (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per generating process (default: torch's own count locally, 1 per Ray actor); equal counts give byte-equal files")
    provenance.add_arguments(parser)


def _fail(message: str) -> int:
    print(f"avgen batch: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from avgen import validation
    from avgen.clock import check_fps

    start = time.perf_counter()
    if args.threads is not None and args.threads < 1:
        return _fail(f"--threads must be at least 1; got {args.threads}")
    for flag in ("steps", "num_workers", "batch_size"):
        minimum = 2 if flag == "steps" else 1
        if getattr(args, flag) < minimum:
            return _fail(f"--{flag.replace('_', '-')} must be at least {minimum}; got {getattr(args, flag)}")
    try:  # the rules of `avgen generate`'s flags
        if args.duration is not None:
            validation.check_duration("--duration", args.duration)
        check_fps(args.fps, "--fps")
        validation.check_number("--guidance", args.guidance, hint=" (1 = off)")
    except ValueError as error:
        return _fail(str(error))
    if args.num_gpus_per_worker is not None and not args.num_gpus_per_worker >= 0:
        return _fail(f"--num-gpus-per-worker must be >= 0; got {args.num_gpus_per_worker}")
    if args.engine == "ray":
        try:
            import ray.data  # noqa: F401 (only the ray engine needs it)
        except ImportError:
            return _fail("the ray engine needs Ray Data: pip install 'avgen[cluster]' (or pip install 'ray[data]')")

    # every job, and the models the valid ones need, before anything is written
    out_dir = Path(args.output).resolve()
    defaults = dict(steps=args.steps, guidance_scale=args.guidance, fps=args.fps, duration=args.duration, out_dir=out_dir)
    try:
        jobs, errors = read_jobs(Path(args.input), defaults)
    except (OSError, UnicodeDecodeError) as error:
        return _fail(f"cannot read {args.input!r}: {error}")
    try:
        runner_kwargs = dict(out_dir=str(out_dir), threads=args.threads, **find_models(args, {job["kind"] for job in jobs}))
        # read and checked once, here; the Ray actors get them with the rest
        runner_kwargs.update(credentials=provenance.credentials_from_args(args), include_prompt=args.c2pa_prompt)
    except (FileNotFoundError, ValueError) as error:
        return _fail(str(error))

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = open(out_dir / LOCK, "a")  # also tells that the folder can be written
    except OSError as error:
        return _fail(f"--output: cannot write to {args.output!r}: {error}")
    with lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file closes
        except ImportError:  # not POSIX: no lock
            pass
        except OSError:
            return _fail(f"another avgen batch is writing to {args.output!r}")
        for leftover in out_dir.glob(".*.mp4.*.partial"):  # the muxer's temporary files of a killed run
            leftover.unlink()
        return run_jobs(args, out_dir, jobs, errors, runner_kwargs, start)


def find_models(args: argparse.Namespace, kinds: set[str]) -> dict:
    """The Runner's model folders (absolute: Ray workers may run elsewhere) for the kinds of jobs to run; raises
    FileNotFoundError for a missing one (or a missing component), ValueError for weights that are cut short or hold NaN:
    found here, before the output folder is made, not when the Runner loads them."""
    from avgen.commands.edit import DEFAULT_MODEL as DEFAULT_EDIT_MODEL
    from avgen.pipelines.loading import check_folder, check_weights
    from avgen.pipelines.text_to_audio_video import resolve_weights

    absolute = lambda model: str(Path(model).resolve()) if Path(model).exists() else str(model)  # noqa: E731 (hub ids stay)
    models = {}
    if "generate" in kinds:
        models["model"] = absolute(resolve_weights(args.model))
    if "edit" in kinds:
        edit_model = Path(args.edit_model or DEFAULT_EDIT_MODEL)
        if not (edit_model / "model_index.json").is_file():
            raise FileNotFoundError(f"edit jobs need --edit-model: no VideoEditPipeline at {str(edit_model)!r}")
        models["edit_model"] = absolute(edit_model)
    for folder in models.values():
        if Path(folder).exists():  # a hub id is checked when it is downloaded
            check_folder(folder)
            check_weights(folder)
    return models


def run_jobs(args, out_dir: Path, jobs: list[dict], errors: list[dict], runner_kwargs: dict, start: float) -> int:
    """Record the bad jobs and the done ones, run the rest on the engine, write the summary."""
    from tqdm import tqdm

    manifest = Manifest(out_dir / MANIFEST)
    counts = {"ok": 0, "error": 0, "skipped": 0}

    def record(entry: dict) -> None:
        manifest.append(entry)
        counts[entry["status"]] += 1
        if entry["status"] == "error":
            tqdm.write(f"avgen batch: job {entry['id']}: {entry['error']}", file=sys.stderr)

    for entry in errors:
        record(entry)
    pending = []
    for job in jobs:
        if job["id"] in manifest.made and (out_dir / job["output"]).is_file():
            record(row(job["id"], job["line"], "skipped", job["output"], 0.0, job["seed"]))
        else:
            pending.append(job)
    try:
        if pending:
            with tqdm(total=len(pending), desc=f"avgen batch ({args.engine})", unit="clip") as bar:

                def record_and_count(entry: dict) -> None:
                    record(entry)
                    bar.update()

                ENGINES[args.engine](pending, runner_kwargs, args, record_and_count)
    finally:
        manifest.close()

    seconds = time.perf_counter() - start
    summary = dict(
        engine=args.engine, jobs=sum(counts.values()), **counts, seconds=round(seconds, 3),
        clips_per_minute=round(60 * counts["ok"] / seconds, 3),
    )  # fmt: skip
    atomic.write_text(out_dir / SUMMARY, json.dumps(summary, indent=2) + "\n")  # whole or not at all
    print(
        f"{out_dir}  {counts['ok']} ok, {counts['error']} error, {counts['skipped']} skipped  "
        f"{seconds:.1f} s  {summary['clips_per_minute']:.2f} clips/min"
    )
    return 1 if counts["error"] else 0
