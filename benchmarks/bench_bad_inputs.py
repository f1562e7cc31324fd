"""The bad-input table (issue 45): bad inputs given to the command line, the Python API, the Space's handlers and the
loader, each with its error, its exit code (CLI) or exception type, when it came, and what it left on disk.

When it came, the stage, is measured, not assumed: "checks" (no model was loaded and none ran), "load" (diffusers'
loader was entered, DiffusionPipeline.from_pretrained, but no model ran) or "compute" (a torch.nn.Module's forward
ran: a global forward pre-hook counts them). "Before compute" means the stage is not "compute". The API cases share
one pipeline loaded beforehand, so their stage is "checks" or "compute". The CLI cases run `avgen` in a subprocess,
with a sitecustomize that installs the same two probes when avgen's loader module is imported and writes what it
saw to a file; they run in an empty folder each, which is listed afterwards (hidden files included) for "left on
disk". In-process cases get a folder each too; the Space's own output folder is listed with theirs.

    .venv/bin/python benchmarks/bench_bad_inputs.py [--model weights/tiny] [--only NAME ...] [--results DIR]

Writes DIR/bad_inputs.json and bad_inputs.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from avgen import atomic

ROOT = Path(__file__).resolve().parents[1]
AVGEN = Path(sys.executable).with_name("avgen")  # the console script of this environment
APP = ROOT / "examples" / "spaces" / "app.py"
WEIGHTS = "diffusion_pytorch_model.safetensors"

# The CLI's probes: when avgen.pipelines.loading is imported (every pipeline loads through it; torch is in by then),
# diffusers' loader and every module's forward write a line to $AVGEN_BENCH_MARKS.
SITECUSTOMIZE = textwrap.dedent(
    """
    import importlib.machinery, os, sys

    def mark(word):
        with open(os.environ["AVGEN_BENCH_MARKS"], "a") as file:
            file.write(word + "\\n")

    def install(module):
        import torch
        from diffusers import DiffusionPipeline

        load = DiffusionPipeline.from_pretrained.__func__
        DiffusionPipeline.from_pretrained = classmethod(lambda cls, *a, **k: (mark("load"), load(cls, *a, **k))[1])
        torch.nn.modules.module.register_module_forward_pre_hook(lambda *a: mark("compute"))

    class Probe:
        def find_spec(self, name, path=None, target=None):
            if name != "avgen.pipelines.loading":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            run = spec.loader.exec_module
            spec.loader.exec_module = lambda module: (run(module), install(module))
            return spec

    if os.environ.get("AVGEN_BENCH_MARKS"):
        sys.meta_path.insert(0, Probe())
    """
)


class Probes:
    """In-process: what diffusers' loader and the modules' forwards did during a case (until close())."""

    def __init__(self):
        import torch
        from diffusers import DiffusionPipeline

        self.marks: list[str] = []
        self.load = DiffusionPipeline.__dict__["from_pretrained"]
        load = self.load.__func__
        DiffusionPipeline.from_pretrained = classmethod(lambda cls, *a, **k: (self.marks.append("load"), load(cls, *a, **k))[1])
        self.hook = torch.nn.modules.module.register_module_forward_pre_hook(lambda *a: self.marks.append("compute"))

    def close(self) -> None:
        from diffusers import DiffusionPipeline

        DiffusionPipeline.from_pretrained = self.load
        self.hook.remove()


def stage_of(marks) -> str:
    return "compute" if "compute" in marks else "load" if "load" in marks else "checks"


def listing(folder: Path) -> dict[str, int]:
    """relative path -> size of every file under `folder`, hidden ones included."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def left_behind(before: dict, after: dict) -> list[str]:
    return [name for name, size in after.items() if before.get(name) != size]


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def cli_message(stderr: str) -> str:
    """The command's own line ("avgen generate: ..." or argparse's), else the traceback's last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    own = [line for line in lines if line.startswith("avgen ")]  # argparse's errors start with the prog too
    return (own or lines[-1:] or [""])[0]


# --- what the cases need -----------------------------------------------------------------------------------------
def ffmpeg_clip(path: Path, encoder: str) -> Path:
    """10 frames of FFmpeg's test pattern at 25 fps, encoded by imageio-ffmpeg's ffmpeg binary with `encoder`."""
    import imageio_ffmpeg

    source = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-frames:v", "10"]
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *source, "-c:v", encoder, str(path)], check=True)
    return path


class Materials:
    """Inputs made once: clips, a text file posing as a video, copies of the model broken in one way each."""

    def __init__(self, root: Path, model: Path):
        from avgen import muxer

        self.root, self.model = root, model
        rng = np.random.default_rng(0)
        tone = 0.3 * np.sin(np.arange(16000) / 5.0).astype(np.float32)
        self.clip = muxer.write_video(root / "clip.mp4", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), 8, tone, 16000)
        self.long_clip = muxer.write_video(root / "long.mp4", rng.integers(0, 255, (24, 32, 32, 3), dtype=np.uint8), 8)
        self.text = root / "notes.mp4"
        self.text.write_text("not a video\n")
        self.gif = root / "clip.gif"
        self.gif.write_bytes(b"GIF89a")
        # codecs an MP4 cannot carry, from the ffmpeg binary's encoders (PyAV has no Theora encoder)
        self.vp8 = ffmpeg_clip(root / "old.webm", "libvpx")
        self.theora = ffmpeg_clip(root / "old.ogv", "libtheora")
        self.theora_mkv = ffmpeg_clip(root / "old.mkv", "libtheora")
        self._models: dict[str, Path] = {}

    def broken(self, kind: str) -> Path:
        """A copy of the model broken as `kind` says (made on first use)."""
        if kind in self._models:
            return self._models[kind]
        from safetensors.torch import load_file, save_file

        folder = shutil.copytree(self.model, self.root / "models" / kind)
        weights = folder / "transformer" / WEIGHTS

        def poison(file: Path, value: float) -> None:
            tensors = load_file(file)
            key = next(k for k in sorted(tensors) if tensors[k].is_floating_point())
            tensors[key] = tensors[key].clone()
            tensors[key].view(-1)[0] = value
            save_file(tensors, file)

        if kind == "no_index":
            (folder / "model_index.json").unlink()
        elif kind == "index_not_json":
            (folder / "model_index.json").write_text("{not json")
        elif kind.startswith("no_folder_"):
            shutil.rmtree(folder / kind.removeprefix("no_folder_"))
        elif kind == "no_weights":
            weights.unlink()
        elif kind == "pickle_only":
            import torch

            torch.save(load_file(weights), weights.with_name("diffusion_pytorch_model.bin"))
            weights.unlink()
        elif kind == "header_cut":
            weights.write_bytes(weights.read_bytes()[:64])
        elif kind == "tail_cut":
            weights.write_bytes(weights.read_bytes()[:-1000])
        elif kind == "random_bytes":
            weights.write_bytes(np.random.default_rng(0).bytes(4096))
        elif kind == "nan":
            poison(weights, float("nan"))
        elif kind == "inf_text_encoder":
            poison(folder / "text_encoder" / "model.safetensors", float("inf"))
        elif kind == "minus_inf_audio_vae":
            poison(folder / "audio_vae" / WEIGHTS, -float("inf"))
        elif kind == "config_not_json":
            (folder / "transformer" / "config.json").write_text("{not json")
        elif kind == "wrong_shape":
            config = json.loads((folder / "transformer" / "config.json").read_text())
            key = next(k for k in ("ffn_dim", "dim", "hidden_size") if k in config)  # sizes of weight matrices
            config[key] *= 2
            (folder / "transformer" / "config.json").write_text(json.dumps(config))
        else:
            raise ValueError(kind)
        self._models[kind] = folder
        return folder


# --- the cases: (surface, name, what is given, how to run it) -----------------------------------------------------
def cli_cases(m: Materials) -> list[tuple]:
    gen = ["generate", "a red ball bounces", "-o", "out.mp4"]
    model = ["--model", str(m.model)]

    def gen_with(*extra):
        return [*gen, *model, *extra]

    cases = [
        ("generate_empty_prompt", ["generate", "", "-o", "out.mp4"]),
        ("generate_blank_prompt", ["generate", " \t ", "-o", "out.mp4"]),
        ("generate_prompt_not_utf8", ["generate", b"a red \xff ball", "-o", "out.mp4"]),
        ("generate_seed_negative", gen_with("--seed", "-1")),
        ("generate_seed_2_64", gen_with("--seed", str(2**64))),
        ("generate_seed_not_a_number", gen_with("--seed", "abc")),
        ("generate_fps_7", gen_with("--fps", "7")),
        ("generate_duration_nan", gen_with("--duration", "nan")),
        ("generate_duration_negative", gen_with("--duration", "-1")),
        ("generate_duration_inf", gen_with("--duration", "inf")),
        ("generate_duration_too_long_for_the_model", gen_with("--duration", "1000", "--steps", "2")),
        ("generate_steps_1", gen_with("--steps", "1")),
        ("generate_guidance_nan", gen_with("--guidance", "nan")),
        ("generate_height_0", gen_with("--height", "0")),
        ("generate_height_not_a_multiple", gen_with("--height", "33", "--steps", "2", "--duration", "1")),
        ("generate_output_avi", ["generate", "a red ball", "-o", "out.avi", *model]),
        ("generate_output_folder_missing", ["generate", "a red ball", "-o", "missing/out.mp4", *model]),
        ("generate_output_is_a_folder", ["generate", "a red ball", "-o", "folder.mp4", *model]),
        ("generate_model_missing", ["generate", "a red ball", "-o", "out.mp4", "--model", "no/such/model"]),
        ("generate_model_without_transformer", gen[:2] + ["-o", "out.mp4", "--model", str(m.broken("no_folder_transformer"))]),
        ("generate_model_nan_weights", gen[:2] + ["-o", "out.mp4", "--model", str(m.broken("nan"))]),
        ("generate_model_pickle_weights", gen[:2] + ["-o", "out.mp4", "--model", str(m.broken("pickle_only"))]),
        ("generate_c2pa_cert_without_key", gen_with("--c2pa-cert", str(m.text))),
        ("generate_no_credentials_and_a_key", gen_with("--no-credentials", "--c2pa-key", str(m.text))),
        ("batch_input_missing", ["batch", "missing.jsonl", "-o", "out", *model]),
        ("batch_every_job_bad", ["batch", "jobs.jsonl", "-o", "out", *model]),
        ("batch_steps_1", ["batch", "jobs.jsonl", "-o", "out", "--steps", "1", *model]),
        ("foley_input_missing", ["foley", "missing.mp4", "-o", "out.mp4", *model]),
        ("foley_input_not_a_video", ["foley", str(m.text), "-o", "out.mp4", *model]),
        ("foley_vp8_into_mp4", ["foley", str(m.vp8), "-o", "out.mp4", *model]),
        ("foley_theora_into_mp4", ["foley", str(m.theora), "-o", "out.mp4", *model]),
        ("foley_theora_into_webm", ["foley", str(m.theora), "-o", "out.webm", *model]),
        ("foley_output_avi", ["foley", str(m.clip), "-o", "out.avi", *model]),
        ("foley_mkv_with_c2pa_prompt", ["foley", str(m.theora), "-o", "out.mkv", "--c2pa-prompt", *model]),
        ("edit_instruction_empty", ["edit", str(m.clip), "", "-o", "out.mp4"]),
        ("edit_output_over_input", ["edit", "in.mp4", "make the ball blue", "-o", "in.mp4"]),
        ("inspect_missing_file", ["inspect", "missing.mp4"]),
    ]
    setups = {
        "generate_output_is_a_folder": lambda d: (d / "folder.mp4").mkdir(),
        "batch_every_job_bad": lambda d: (d / "jobs.jsonl").write_text(
            "not json\n" + "\n".join(json.dumps(job) for job in [
                {"prompt": "a ball", "colour": "red"}, {"prompt": "a ball", "fps": 7}, {"prompt": "a ball", "seed": -1},
                {"prompt": " "}, {"prompt": "a ball", "duration": 0}, {"id": "../escape", "prompt": "a ball"},
            ]) + "\n"  # fmt: skip
        ),
        "batch_steps_1": lambda d: (d / "jobs.jsonl").write_text('{"prompt": "a ball"}\n'),
        "edit_output_over_input": lambda d: shutil.copyfile(m.clip, d / "in.mp4"),
    }
    return [("cli", name, argv, setups.get(name)) for name, argv in cases]


def api_cases(m: Materials) -> list[tuple]:
    from avgen import muxer
    from avgen.outputs import AVGenOutput

    def call(**kwargs):
        return lambda pipe, d: pipe(**{"prompt": "a red ball bounces", "num_inference_steps": 2, "duration": 1.0, **kwargs})

    frames = np.zeros((4, 16, 16, 3), np.uint8)
    output = AVGenOutput(frames=frames[None], audio=None, fps=8, sample_rate=None, metadata=[{}])
    cases = [
        ("prompt_none", "prompt=None", call(prompt=None)),
        ("prompt_empty", 'prompt=""', call(prompt="")),
        ("prompt_not_text", "prompt=123", call(prompt=123)),
        ("prompt_lone_surrogate", 'prompt="a \\ud800 ball"', call(prompt="a \ud800 ball")),
        ("prompt_list_with_blank", 'prompt=["a ball", " "]', call(prompt=["a ball", " "])),
        ("negative_prompt_count", 'prompt=["a", "b"], negative_prompt=["x"]', call(prompt=["a ball", "a car"], negative_prompt=["x"])),
        ("duration_nan", "duration=nan", call(duration=float("nan"))),
        ("duration_zero", "duration=0", call(duration=0)),
        ("duration_huge", "duration=1e9", call(duration=1e9)),
        ("fps_7", "fps=7", call(fps=7)),
        ("steps_1", "num_inference_steps=1", call(num_inference_steps=1)),
        ("steps_float", "num_inference_steps=2.5", call(num_inference_steps=2.5)),
        ("guidance_inf", "guidance_scale=inf", call(guidance_scale=float("inf"))),
        ("audio_guidance_string", 'audio_guidance_scale="3"', call(audio_guidance_scale="3")),
        ("height_odd", "height=33", call(height=33)),
        ("width_huge", "width=2**40", call(width=2**40)),
        ("generator_int", "generator=42", call(generator=42)),
        ("videos_per_prompt_0", "num_videos_per_prompt=0", call(num_videos_per_prompt=0)),
        ("output_type_gif", 'output_type="gif"', call(output_type="gif")),
        ("foley_video_missing", 'pipe.video_to_audio("missing.mp4")', lambda pipe, d: pipe.video_to_audio(str(d / "missing.mp4"), num_inference_steps=2)),
        ("foley_video_not_a_video", "pipe.video_to_audio(a text file)", lambda pipe, d: pipe.video_to_audio(str(m.text), num_inference_steps=2)),
        ("save_avi", 'output.save("out.avi")', lambda pipe, d: output.save(d / "out.avi")),
        ("save_folder_missing", 'output.save("missing/out.mp4")', lambda pipe, d: output.save(d / "missing" / "out.mp4")),
        ("write_video_nan_frames", "muxer.write_video(NaN frames)", lambda pipe, d: muxer.write_video(d / "out.mp4", np.full((4, 16, 16, 3), np.nan, np.float32), 8)),
        ("write_video_loud_audio", "muxer.write_video(audio peak 2.0)", lambda pipe, d: muxer.write_video(d / "out.mp4", frames, 8, np.full(8000, 2.0, np.float32), 16000)),
        ("write_video_sample_rate_12345", "muxer.write_video(sample_rate=12345)", lambda pipe, d: muxer.write_video(d / "out.mp4", frames, 8, np.zeros(8000, np.float32), 12345)),
        ("write_audio_mp3", 'muxer.write_audio("out.mp3")', lambda pipe, d: muxer.write_audio(d / "out.mp3", np.zeros(800, np.float32), 16000)),
    ]
    return [("api", name, given, run) for name, given, run in cases]


def space_cases(m: Materials, app) -> list[tuple]:
    duration = next(iter(app.DURATIONS))
    cases = [
        ("generate_empty_prompt", 'generate("", ...)', lambda: app.generate("", duration, "As written", 0, 2)),
        ("generate_prompt_too_long", "generate(300 bytes, ...)", lambda: app.generate("a" * 300, duration, "As written", 0, 2)),
        ("generate_seed_negative", "generate(seed=-1)", lambda: app.generate("a red ball", duration, "As written", -1, 2)),
        ("generate_seed_nan", "generate(seed=nan)", lambda: app.generate("a red ball", duration, "As written", float("nan"), 2)),
        ("generate_seed_empty_box", "generate(seed=None)", lambda: app.generate("a red ball", duration, "As written", None, 2)),
        ("generate_steps_1", "generate(steps=1)", lambda: app.generate("a red ball", duration, "As written", 0, 1)),
        ("generate_steps_empty_box", "generate(steps=None)", lambda: app.generate("a red ball", duration, "As written", 0, None)),
        ("generate_unknown_duration", 'generate(duration="3 s")', lambda: app.generate("a red ball", "3 s", "As written", 0, 2)),
        ("add_sound_no_upload", "add_sound(None, ...)", lambda: app.add_sound(None, "", 0, 2)),
        ("add_sound_gif", "add_sound(clip.gif)", lambda: app.add_sound(str(m.gif), "", 0, 2)),
        ("add_sound_text_file", "add_sound(a text file named .mp4)", lambda: app.add_sound(str(m.text), "", 0, 2)),
        ("add_sound_too_long", f"add_sound(a 3 s clip; limit {app.MAX_UPLOAD_SECONDS:g} s)", lambda: app.add_sound(str(m.long_clip), "", 0, 2)),
        ("add_sound_vp8", "add_sound(VP8 in a WebM)", lambda: app.add_sound(str(m.vp8), "", 0, 2)),
        ("add_sound_theora", "add_sound(Theora in an MKV)", lambda: app.add_sound(str(m.theora_mkv), "", 0, 2)),
        # the app serving broken weights (loaded again with AVGEN_MODEL set to them)
        ("generate_model_nan_weights", "generate(...), AVGEN_MODEL with a NaN in the transformer's weights",
         lambda: load_space(m.broken("nan")).generate("a red ball", duration, "As written", 0, 2)),
        ("generate_model_index_not_json", "generate(...), AVGEN_MODEL's model_index.json not JSON",
         lambda: load_space(m.broken("index_not_json")).generate("a red ball", duration, "As written", 0, 2)),
        ("edit_no_upload", "edit(None, ...)", lambda: app.edit(None, "make the ball blue", 0, 2)),
        ("edit_empty_instruction", 'edit(clip, "")', lambda: app.edit(str(m.clip), "", 0, 2)),
    ]
    return [("space", name, given, run) for name, given, run in cases]


def loader_cases(m: Materials) -> list[tuple]:
    kinds = [
        ("folder_missing", "a folder that does not exist", None),
        ("no_model_index", "no model_index.json", "no_index"),
        ("model_index_not_json", "model_index.json is not JSON", "index_not_json"),
        ("transformer_folder_missing", "transformer/ removed", "no_folder_transformer"),
        ("text_encoder_folder_missing", "text_encoder/ removed", "no_folder_text_encoder"),
        ("weights_file_missing", "transformer's .safetensors removed", "no_weights"),
        ("pickle_only", "transformer's weights as a pickle (.bin) only", "pickle_only"),
        ("header_cut", "transformer's .safetensors cut to 64 bytes", "header_cut"),
        ("tail_cut", "transformer's .safetensors missing its last 1000 bytes", "tail_cut"),
        ("random_bytes", "transformer's .safetensors is random bytes", "random_bytes"),
        ("nan", "a NaN in the transformer's weights", "nan"),
        ("inf_text_encoder", "an inf in the text encoder's weights", "inf_text_encoder"),
        ("minus_inf_audio_vae", "a -inf in the audio VAE's weights", "minus_inf_audio_vae"),
        ("config_not_json", "transformer/config.json is not JSON", "config_not_json"),
        ("wrong_shape", "transformer/config.json asks for other shapes than the weights have", "wrong_shape"),
    ]

    def load(kind):
        def run(d):
            from avgen.pipelines import AVGenPipeline

            return AVGenPipeline.from_pretrained(d / "nowhere" if kind is None else m.broken(kind))

        return run

    return [("loader", name, given, load(kind)) for name, given, kind in kinds]


# --- running them -------------------------------------------------------------------------------------------------
def run_cli(argv, setup, folder: Path, hooks: Path) -> dict:
    if setup is not None:
        setup(folder)
    before = listing(folder)
    marks = hooks / "marks"
    marks.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")])),
           "AVGEN_BENCH_MARKS": str(marks)}  # fmt: skip
    start = time.perf_counter()
    try:
        result = subprocess.run([str(AVGEN), *argv], cwd=folder, env=env, capture_output=True, timeout=1800)
        code, stderr = result.returncode, result.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        code, stderr = None, "timed out after 1800 s"
    seconds = time.perf_counter() - start
    seen = marks.read_text().split() if marks.exists() else []
    given = " ".join(a.decode("utf-8", "backslashreplace") if isinstance(a, bytes) else (repr(a) if not a or " " in a else a) for a in argv)
    return dict(given=f"avgen {given}", error=cli_message(stderr), exit_code=code, exception=None, stage=stage_of(seen),
                seconds=round(seconds, 2), left_on_disk=left_behind(before, listing(folder)))  # fmt: skip


def run_in_process(call, folder: Path, probes: Probes, extra_folders=()) -> dict:
    folders = [folder, *extra_folders]
    before = [listing(f) for f in folders]
    probes.marks.clear()
    start = time.perf_counter()
    error, kind = "accepted: no error", None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            call()
    except Exception as caught:  # every kind is recorded: that is the table
        error, kind = first_line(getattr(caught, "message", None) or str(caught)), type(caught).__name__  # gr.Error: .message
    seconds = time.perf_counter() - start
    left = [f"{f.name}/{name}" if f is not folder else name for f, b in zip(folders, before) for name in left_behind(b, listing(f))]
    return dict(error=error, exit_code=None, exception=kind, stage=stage_of(probes.marks), seconds=round(seconds, 2), left_on_disk=left)


def load_space(model: Path):
    """examples/spaces/app.py serving `model`, with one 1 s duration (so a 3 s upload is too long)."""
    settings = dict(AVGEN_MODEL=str(model), AVGEN_DEMO_DURATIONS="1@8", GRADIO_ANALYTICS_ENABLED="False")
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)  # read when the app is imported
    try:
        spec = importlib.util.spec_from_file_location("spaces_app", APP)
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    return app


def wanted(name: str, only) -> bool:
    return not only or any(name.startswith(prefix) for prefix in only)


def run_cases(args, m: Materials, model: Path, tmp: Path, probes: Probes) -> list[dict]:
    rows, pipe, app = [], None, None
    all_cases = cli_cases(m) + api_cases(m) + loader_cases(m)
    if not args.only or any(prefix.startswith("space") or "space".startswith(prefix) for prefix in args.only):
        app = load_space(model)
        all_cases += space_cases(m, app)
    for index, (surface, name, given, run) in enumerate(all_cases):
        full = f"{surface}/{name}"
        if not wanted(full, args.only):
            continue
        folder = tmp / "cases" / f"{index:03d}"
        folder.mkdir(parents=True)
        if surface == "cli":
            row = run_cli(given, run, folder, tmp / "hooks")
        elif surface == "api":
            if pipe is None:  # loaded once, before its cases: their stage is "checks" or "compute"
                from avgen.pipelines import AVGenPipeline

                pipe = AVGenPipeline.from_pretrained(model)
                pipe.set_progress_bar_config(disable=True)
            row = dict(given=given, **run_in_process(lambda: run(pipe, folder), folder, probes))
        elif surface == "space":
            with contextlib.chdir(folder):
                row = dict(given=given, **run_in_process(run, folder, probes, [app.OUTPUT_DIR]))
        else:
            row = dict(given=given, **run_in_process(lambda: run(folder), folder, probes))
        rows.append(dict(surface=surface, case=name, **row))
        print(f"{full:55s} {row['stage']:8s} {row['exit_code'] if surface == 'cli' else row['exception']}  {row['error'][:110]}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "weights" / "tiny"), help="an AVGenPipeline folder (default weights/tiny)")
    parser.add_argument("--only", nargs="*", default=None, help="run only the cases whose surface/name starts with one of these")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    model = Path(args.model).resolve()

    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="avgen-bad-inputs-") as tmp:
        tmp = Path(tmp)
        (tmp / "hooks").mkdir()
        (tmp / "hooks" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        (tmp / "materials").mkdir()
        m = Materials(tmp / "materials", model)
        probes = Probes()
        try:
            rows = run_cases(args, m, model, tmp, probes)
        finally:
            probes.close()
        for row in rows:  # the temporary folder's name means nothing in the table, nor the checkout's
            for key in ("given", "error"):
                row[key] = row[key].replace(str(tmp), "<tmp>").replace(f"{ROOT}/", "")

    before = sum(row["stage"] != "compute" for row in rows)
    refused = [row for row in rows if row["exception"] is not None or (row["exit_code"] not in (0, None))]
    summary = dict(
        cases=len(rows), refused=len(refused), before_compute=before, left_files=sum(bool(row["left_on_disk"]) for row in rows),
        by_surface={surface: sum(row["surface"] == surface for row in rows) for surface in ("cli", "api", "space", "loader")},
    )  # fmt: skip
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    criterion = __doc__.split("\n\n")[1].replace("\n", " ")
    table = dict(model=model.name, criterion=criterion, summary=summary, rows=rows)
    atomic.write_text(results / "bad_inputs.json", json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    atomic.write_text(results / "bad_inputs.md", markdown(rows, summary, criterion))
    print(json.dumps(summary))
    return 0


def markdown(rows: list[dict], summary: dict, criterion: str) -> str:
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [
        "# Bad inputs (benchmarks/bench_bad_inputs.py)", "",
        f"{summary['cases']} bad inputs: {summary['refused']} refused with an error, {summary['before_compute']} before any model ran, "
        f"{summary['left_files']} left a file on disk. {criterion}", "",
        "| surface | input | error (first line) | exit code / exception | stage | s | left on disk |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for row in rows:
        code = row["exit_code"] if row["surface"] == "cli" else row["exception"]
        left = ", ".join(row["left_on_disk"]) or "nothing"
        lines.append(f"| {row['surface']} | `{cell(row['given'])}` | {cell(row['error'])} | {code} | {row['stage']} | {row['seconds']} | {cell(left)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
