"""avgen as a Hugging Face Space: text -> video with sound, sound for a video, and instruction editing.

Run locally: `python examples/spaces/app.py` (needs `pip install -e ".[demo]"`), then open http://127.0.0.1:7860.

Settings, all from the environment (a Space's "variables"):
    AVGEN_MODEL            AVGenPipeline folder or hub id (default: the shipped weights, AVGenPipeline.from_pretrained())
    AVGEN_EDIT_MODEL       VideoEditPipeline folder (default: the shipped weights/tiny-edit); no folder, no Edit tab
    AVGEN_DEMO_STEPS       the steps slider's starting value (default 50)
    AVGEN_DEMO_DURATIONS   the duration options as SECONDS@FPS, comma-separated (default "10@24,16@16", Movie Gen's
                           two); the longest is also the longest video accepted for "Add sound"
    AVGEN_DEMO_MAX_UPLOAD_MB   the largest upload accepted, in MB (default 200; Gradio refuses a larger one)
    AVGEN_DEMO_QUEUE_SIZE  how many requests may wait for the one device (default 16); more are told "queue full"
    GRADIO_SERVER_NAME, GRADIO_SERVER_PORT   where to serve (Gradio's own variables)

    AVGEN_C2PA_CERT, AVGEN_C2PA_KEY   the certificate chain and key that sign every MP4's C2PA manifest (Space
                           secrets; without them a local development certificate signs: avgen.provenance)

The model is loaded once, on the first request, so the page comes up even without weights and says why it cannot
generate; weights the loader refuses (a model_index.json that is not JSON, a component missing, weights cut short or
holding NaN or infinite values: avgen.pipelines.loading) are named, file and all, in the error each request then
gets, and the app goes on serving (a later request loads them again, once they are fixed). On ZeroGPU the GPU work
runs in @spaces.GPU functions; elsewhere that decorator is a no-op.
Every MP4 it writes carries signed content credentials (C2PA): a creation, or for "Add sound" and "Edit" an edit of
the uploaded video. The words the model knows (its vocabulary.json) are chips beside the prompt that add them to it,
and a prompt with other words gets one "note:" naming them.
"""

from __future__ import annotations

try:  # before torch: on ZeroGPU, `spaces` must patch CUDA initialisation before anything touches it
    import spaces

    GPU = spaces.GPU
except ImportError:  # not on a Space and no `spaces` package: run on whatever device there is

    def GPU(function):
        return function


import os
import re
import tempfile
import threading
import time
import uuid
from pathlib import Path

import json
import warnings

import av
import gradio as gr
import torch

from avgen import muxer, provenance
from avgen.clock import SUPPORTED_FPS, check_fps
from avgen.commands.edit import DEFAULT_MODEL as DEFAULT_EDIT_MODEL
from avgen.models.text_encoder import DEFAULT_MAX_LENGTH
from avgen.pipelines.text_to_audio_video import DEFAULT_WEIGHTS, AVGenPipeline, resolve_weights
from avgen.vocabulary import VocabularyWarning, load_vocabulary, vocabulary_of
from avgen.world.captions import CAMERA_LABELS


def parse_durations(text: str) -> dict[str, tuple[float, int]]:
    """ "10@24,16@16" -> {"10 s at 24 fps": (10.0, 24), "16 s at 16 fps": (16.0, 16)}."""
    options = {}
    for item in text.split(","):
        seconds, _, fps = item.strip().partition("@")
        try:
            seconds, fps = float(seconds), check_fps(int(fps))
        except ValueError as error:
            raise ValueError(f"AVGEN_DEMO_DURATIONS: {item.strip()!r} is not SECONDS@FPS ({error})") from None
        if not seconds > 0:
            raise ValueError(f"AVGEN_DEMO_DURATIONS: {item.strip()!r} needs a positive number of seconds")
        options[f"{seconds:g} s at {fps} fps"] = (seconds, fps)
    return options


MODEL = os.environ.get("AVGEN_MODEL") or None  # None: the shipped weights
EDIT_MODEL = Path(os.environ.get("AVGEN_EDIT_MODEL") or DEFAULT_EDIT_MODEL)
DEFAULT_STEPS = int(os.environ.get("AVGEN_DEMO_STEPS", "50"))
DURATIONS = parse_durations(os.environ.get("AVGEN_DEMO_DURATIONS", "10@24,16@16"))
MAX_UPLOAD_SECONDS = max(seconds for seconds, _ in DURATIONS.values())
# "Add sound" decodes and shrinks an upload frame by frame (VideoToAudioPipeline), so its memory does not grow with
# the resolution; the upload limit bounds the disk and the time to read one
MAX_UPLOAD_MB = int(os.environ.get("AVGEN_DEMO_MAX_UPLOAD_MB", "200"))
QUEUE_SIZE = int(os.environ.get("AVGEN_DEMO_QUEUE_SIZE", "16"))
MAX_PROMPT_BYTES = DEFAULT_MAX_LENGTH - 1  # ByT5 reads bytes and appends an end token; longer text is cut off
MAX_SEED = 2**32 - 1
VIDEO_UPLOADS = (".mp4", ".mov", ".m4v")  # what "Edit" reads
SOUND_UPLOADS = (*VIDEO_UPLOADS, ".mkv", ".webm")  # containers whose video stream "Add sound" can copy into an MP4
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
warnings.filterwarnings("ignore", category=VocabularyWarning)  # the page shows it (vocabulary_note), not the log

# A preset replaces any camera sentence the prompt already has (the world's captions' labels), then appends its own.
CAMERA_PRESETS = {
    "As written": None,
    "Tracking shot": "Tracking shot.",
    "Pan left": "Pan left.",
    "Pan right": "Pan right.",
    "Zoom in": "Zoom in.",
    "Static shot": "Static shot.",
}
_CAMERA_LABELS = {label for split in CAMERA_LABELS.values() for labels in split.values() for label in labels}
_CAMERA_ALTERNATIVES = "|".join(map(re.escape, sorted(_CAMERA_LABELS, key=len, reverse=True)))  # longest first
_CAMERA_SENTENCE = re.compile(rf"(?:^|(?<=[.!?]))\s*(?:{_CAMERA_ALTERNATIVES})\s*[.!?]", re.I)


def with_camera(prompt: str, preset: str) -> str:
    """The prompt with the preset's camera sentence ("a ball bounces" + Pan left -> "a ball bounces. Pan left.")."""
    phrase = CAMERA_PRESETS[preset]
    if phrase is None:
        return prompt.strip()
    rest = _CAMERA_SENTENCE.sub("", prompt).strip()
    if rest and rest[-1] not in ".!?":
        rest += "."
    return f"{rest} {phrase}".strip()


# --- checks: every message says what to do -----------------------------------------------------------------
def check_text(text: str | None, what: str, required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise gr.Error(f"Write {'an' if what[0] in 'aeiou' else 'a'} {what} first.")
    if len(text.encode()) > MAX_PROMPT_BYTES:
        length = len(text.encode())
        raise gr.Error(f"The {what} is {length} bytes long; the model reads at most {MAX_PROMPT_BYTES}. Shorten it.")
    return text


def check_seed(seed) -> int:
    try:
        ok = seed == int(seed) and 0 <= seed <= MAX_SEED
    except (TypeError, ValueError, OverflowError):  # None (an empty box), NaN, infinity
        ok = False
    if not ok:
        raise gr.Error(f"The seed must be a whole number from 0 to {MAX_SEED}; got {seed}.")
    return int(seed)


def check_steps(steps) -> int:
    if steps is None or not 2 <= steps <= 200:
        raise gr.Error(f"Steps must be between 2 and 200; got {steps}.")
    return int(steps)


def check_file(path: str | None, suffixes: tuple[str, ...]) -> str:
    """The upload's name, or a gr.Error if there is none, or it is of another kind or too large."""
    if not path:
        raise gr.Error("Upload a video first.")
    name = Path(path).name
    if Path(path).suffix.lower() not in suffixes:
        kinds = "MP4, MOV, MKV or WebM" if ".webm" in suffixes else "MP4 or MOV"
        raise gr.Error(f"{name}: upload an {kinds} video ({', '.join(suffixes)}).")
    size = Path(path).stat().st_size
    if size > MAX_UPLOAD_MB * 2**20:
        raise gr.Error(f"{name} is {size / 2**20:.0f} MB; this demo takes uploads of at most {MAX_UPLOAD_MB} MB.")
    return name


def check_sound_upload(path: str | None, max_seconds: float) -> None:
    """A gr.Error unless "Add sound" can take the upload: any frame rate, constant or variable, a video stream an MP4
    can carry, at most max_seconds long. The answer is an MP4, which browsers play and the content credentials are
    signed into; a stream only an MKV or WebM carries as it is (VP8, Theora) is refused, saying how to convert it
    or to keep it (`avgen foley`, which writes those)."""
    name = check_file(path, SOUND_UPLOADS)
    try:
        seconds = muxer.probe_timing(path).seconds
        codec, containers = muxer.video_containers(path)
    except ValueError as error:  # no video stream, unreadable, untimed
        reason = str(error).replace(repr(str(path)), "the video")  # the server's temporary path means nothing to them
        raise gr.Error(f"{name}: {reason}.") from None
    if ".mp4" not in containers:
        keep = f", or add its sound on your computer with `avgen foley {name} -o out{containers[-1]}`, which keeps it as it is"
        keep = keep if containers else ""
        raise gr.Error(
            f"{name} holds {codec} video, which cannot go as it is into the MP4 this demo returns; convert it to H.264, VP9 "
            f"or AV1{keep}."
        )
    if seconds > max_seconds:
        raise gr.Error(f"{name} lasts {float(seconds):.1f} s; this demo takes videos of at most {max_seconds:g} s. Trim it.")


def check_upload(path: str | None) -> tuple[int, int]:
    """(fps, frames) of an uploaded video for "Edit", or a gr.Error that says what is wrong with it."""
    name = check_file(path, VIDEO_UPLOADS)
    try:
        fps, num_frames = muxer.probe_video(path)
    except ValueError as error:  # no video stream, unreadable, unsupported frame rate
        reason = str(error).replace(repr(str(path)), "the video")  # the server's temporary path means nothing to them
        raise gr.Error(f"{name}: {reason}. Supported frame rates: {SUPPORTED_FPS}.") from None
    if num_frames == 0:
        raise gr.Error(f"{name} has no frames.")
    return fps, num_frames


# --- models: loaded once, on first use ------------------------------------------------------------------------
_lock = threading.Lock()
_loaded: dict = {}


def model_problem() -> str | None:
    """Why the main model cannot load (no weights yet, a folder the loader refuses), or None; checked without loading
    anything (its weights' values are read when it loads: cannot_load)."""
    try:
        resolve_weights(MODEL)
    except FileNotFoundError as error:
        return f"No model to generate with: {error}. Set AVGEN_MODEL to a folder written by AVGenPipeline.save_pretrained."
    except ValueError as error:  # a model_index.json that is not JSON, or not an object
        return cannot_load(error)
    return None


def cannot_load(error: Exception) -> str:
    """The page's message for weights the loader refused: its own words name the file and what is wrong with it."""
    return f"The model cannot be loaded: {error}. Replace the file (or set AVGEN_MODEL to a folder written by save_pretrained)."


def edit_problem() -> str | None:
    if not (EDIT_MODEL / "model_index.json").is_file():
        why = " (the shipped edit model weights/tiny-edit is missing from this checkout)" if EDIT_MODEL == DEFAULT_EDIT_MODEL else ""
        return (
            f"The edit weights are not available: there is no pipeline in {str(EDIT_MODEL)!r}{why}. "
            "Set AVGEN_EDIT_MODEL to a folder written by VideoEditPipeline.save_pretrained."
        )
    return None


def load(name: str):
    """The pipeline `name` ("main" or "edit"), loaded on first use; gr.Error if it has no weights."""
    with _lock:  # two tabs' first requests may arrive together: load once
        if name not in _loaded:
            problem = model_problem() if name == "main" else edit_problem()
            if problem:
                raise gr.Error(problem)
            try:  # the loader refuses bad weights before they load, naming the file (avgen.pipelines.loading)
                if name == "main":
                    pipe = AVGenPipeline.from_pretrained(MODEL)
                else:
                    from avgen.pipelines.video_edit import VideoEditPipeline

                    pipe = VideoEditPipeline.from_pretrained(EDIT_MODEL)
            except (OSError, ValueError) as error:  # diffusers' own: a config that is not JSON (OSError), wrong shapes
                raise gr.Error(cannot_load(error)) from None  # nothing is kept: the next request tries again
            _loaded[name] = pipe.to(DEVICE)
        return _loaded[name]


# --- outputs: one temporary folder, files older than an hour removed (Gradio serves its own copy) -------------
OUTPUT_DIR = Path(tempfile.mkdtemp(prefix="avgen-space-"))


def new_output_path() -> Path:
    for old in OUTPUT_DIR.glob("*.mp4"):
        if time.time() - old.stat().st_mtime > 3600:
            old.unlink(missing_ok=True)
    return OUTPUT_DIR / f"{uuid.uuid4().hex}.mp4"


# --- the GPU work. On ZeroGPU these run in a worker process: they take plain, validated arguments (a pipeline
# argument would be pickled across) and find the pipeline that the handler loaded before calling them. ---------
def seeded(pipe, seed: int) -> torch.Generator:
    return torch.Generator(pipe.device).manual_seed(seed)


@GPU
def run_generate(prompt: str, seconds: float, fps: int, seed: int, steps: int) -> str:
    pipe = load("main")
    output = pipe(
        prompt,
        duration=seconds,
        fps=fps,
        num_inference_steps=steps,
        generator=seeded(pipe, seed),
        upsample=pipe.upsampler is not None,
    )
    output.metadata[0]["model"] = str(MODEL or DEFAULT_WEIGHTS)
    return str(output.save(new_output_path()))  # atomic: a finished file or none


@GPU
def run_add_sound(video: str, prompt: str, seed: int, steps: int) -> str:
    pipe = load("main")
    sound = pipe.video_to_audio(video, prompt=prompt or None, num_inference_steps=steps, generator=seeded(pipe, seed))
    metadata = {**sound.metadata[0], "model": str(MODEL or DEFAULT_WEIGHTS)}
    # the uploaded pictures are copied packet for packet (not re-encoded); only the sound is new: an edit of the upload
    sign = provenance.signing_step(metadata, source=video)
    return str(muxer.add_audio(video, sound.audio[0], sound.sample_rate, new_output_path(), metadata, sign=sign))


@GPU
def run_edit(video: str, instruction: str, seed: int, steps: int) -> str:
    pipe = load("edit")
    output = pipe(video, instruction, num_inference_steps=steps, generator=seeded(pipe, seed))
    output.metadata[0]["model"] = str(EDIT_MODEL)
    return str(output.save(new_output_path(), source=video))  # signed as an edit of the upload


# --- event handlers: check, load, run; a pipeline's ValueError (what only the model can tell) becomes gr.Error --
def vocabulary_note(pipe, texts=(), instructions=()) -> str:
    """ "note: ... not understood: ..." as a warning on the page (and returned), or "" when the model knows every word;
    the pipeline's own VocabularyWarning is filtered out of the log."""
    vocabulary = vocabulary_of(pipe.tokenizer)
    note = vocabulary.note(texts, instructions) if vocabulary is not None else None
    if note is None:
        return ""
    gr.Warning(f"note: {note}")
    return f"note: {note}"


def generate(prompt, duration, camera, seed, steps, progress=gr.Progress(track_tqdm=True)):
    prompt = check_text(with_camera(check_text(prompt, "prompt"), camera), "prompt")  # the camera sentence adds bytes
    seed, steps = check_seed(seed), check_steps(steps)
    if duration not in DURATIONS:
        raise gr.Error(f"Pick a duration: {', '.join(DURATIONS)}.")
    seconds, fps = DURATIONS[duration]
    note = vocabulary_note(load("main"), [prompt])
    start = time.perf_counter()
    try:
        path = run_generate(prompt, seconds, fps, seed, steps)
    except ValueError as error:
        raise gr.Error(str(error)) from None
    info = f"**Prompt:** {prompt}  \nseed {seed}, {duration}, {steps} steps, {time.perf_counter() - start:.1f} s"
    return path, info + (f"  \n*{note}*" if note else "")


def add_sound(video, prompt, seed, steps, progress=gr.Progress(track_tqdm=True)):
    check_sound_upload(video, MAX_UPLOAD_SECONDS)
    prompt = check_text(prompt, "prompt", required=False)
    seed, steps = check_seed(seed), check_steps(steps)
    with av.open(video) as container:
        if container.streams.audio:
            gr.Warning("The video already has sound; it is replaced by the generated sound.")
    vocabulary_note(load("main"), [prompt])
    try:
        return run_add_sound(video, prompt, seed, steps)
    except ValueError as error:
        raise gr.Error(str(error)) from None


def edit(video, instruction, seed, steps, progress=gr.Progress(track_tqdm=True)):
    check_upload(video)  # the model's own limit on length comes back as a ValueError ("trim the video")
    instruction = check_text(instruction, "instruction")
    seed, steps = check_seed(seed), check_steps(steps)
    vocabulary_note(load("edit"), instructions=[instruction])
    try:
        return run_edit(video, instruction, seed, steps)
    except ValueError as error:
        raise gr.Error(str(error)) from None


# --- the page ---------------------------------------------------------------------------------------------
EXAMPLES = [
    "A red ball bounces to the left across a grassy field during a thunderstorm. Calm piano music.",
    "A blue car drives fast to the right across a desert, engine roaring, upbeat music playing.",
]


# a chip adds its phrase to the prompt, in the browser (no request): "a red ball" + "bounces" -> "a red ball bounces"
ADD_TO_PROMPT = "(prompt, phrase) => (prompt && !/\\s$/.test(prompt) ? prompt + ' ' : prompt || '') + phrase"


def vocabulary_chips(prompt: gr.Textbox) -> None:
    """The words the main model knows (its vocabulary.json, when its folder has one) as chips that add them to the
    prompt, a row per category: subjects, colours, motions, ..., camera."""
    try:
        vocabulary = load_vocabulary(resolve_weights(MODEL))
    except (FileNotFoundError, ValueError):  # no weights, or weights the loader refuses: the page says so
        return
    if vocabulary is None:
        return
    with gr.Accordion("Words the model knows (click one to add it to the prompt)", open=True, elem_id="vocabulary"):
        for category, phrases in vocabulary.known.items():
            if category == "edits":
                continue
            with gr.Row(equal_height=True):
                gr.Markdown(f"**{category}**", min_height=0)
                for label, phrase in phrases.items():
                    chip = gr.Button(label, size="sm", min_width=0, scale=0, elem_classes="vocabulary-chip")
                    chip.click(None, [prompt], [prompt], js=f"prompt => ({ADD_TO_PROMPT})(prompt, {json.dumps(phrase)})")


def seed_and_steps() -> tuple[gr.Number, gr.Slider]:
    with gr.Row():
        return gr.Number(value=0, precision=0, label="Seed"), gr.Slider(2, 200, value=DEFAULT_STEPS, step=1, label="Steps")


def build_demo() -> gr.Blocks:
    gpu = dict(concurrency_id="gpu")  # all tabs share one model and one device: one queue slot among them
    with gr.Blocks(title="avgen: text to video with sound", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# avgen\nText → video with synchronized sound, sound for your video, and instruction editing: "
            "[Movie Gen](https://ai.meta.com/research/movie-gen/) at small scale, as diffusers pipelines."
        )
        problem = model_problem()
        gr.Markdown(f"**⚠ {problem}**", visible=problem is not None, elem_id="model-problem")
        with gr.Tab("Generate"):
            with gr.Row():
                with gr.Column():
                    prompt = gr.Textbox(label="Prompt", lines=3, placeholder=EXAMPLES[0], elem_id="prompt")
                    vocabulary_chips(prompt)
                    duration = gr.Radio(list(DURATIONS), value=next(iter(DURATIONS)), label="Duration")
                    camera = gr.Dropdown(list(CAMERA_PRESETS), value="As written", label="Camera")
                    seed, steps = seed_and_steps()
                    button = gr.Button("Generate", variant="primary", elem_id="generate")
                    gr.Examples([[text] for text in EXAMPLES], inputs=[prompt], cache_examples=False)
                with gr.Column():
                    video = gr.Video(label="Video with sound", elem_id="generate-video", interactive=False)
                    info = gr.Markdown()
            button.click(generate, [prompt, duration, camera, seed, steps], [video, info], **gpu)
        with gr.Tab("Add sound to a video"):
            with gr.Row():
                with gr.Column():
                    label = f"Video (MP4, MOV, MKV or WebM, any frame rate, at most {MAX_UPLOAD_SECONDS:g} s and {MAX_UPLOAD_MB} MB)"
                    source = gr.Video(label=label, sources=["upload"], elem_id="sound-source")
                    sound_prompt = gr.Textbox(label="Prompt (optional)", placeholder="with rain and calm piano music")
                    sound_seed, sound_steps = seed_and_steps()
                    sound_button = gr.Button("Add sound", variant="primary", elem_id="add-sound")
                sound_video = gr.Video(label="Video with generated sound", elem_id="sound-video", interactive=False)
            sound_button.click(add_sound, [source, sound_prompt, sound_seed, sound_steps], sound_video, **gpu)
        with gr.Tab("Edit"):
            problem = edit_problem()
            gr.Markdown(f"**⚠ {problem}**", visible=problem is not None, elem_id="edit-problem")
            with gr.Row(visible=problem is None):
                with gr.Column():
                    edit_source = gr.Video(label="Video", sources=["upload"])
                    instruction = gr.Textbox(label="Instruction", placeholder="change the background to a busy intersection")
                    edit_seed, edit_steps = seed_and_steps()
                    edit_button = gr.Button("Edit", variant="primary", elem_id="edit")
                edit_video = gr.Video(label="Edited video", elem_id="edit-video", interactive=False)
            edit_button.click(edit, [edit_source, instruction, edit_seed, edit_steps], edit_video, **gpu)
    # one job at a time on the one device; a bounded line of waiting requests, then "queue full" (HTTP 503, which the
    # page shows as an error)
    return demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)


if __name__ == "__main__":
    build_demo().launch(max_file_size=f"{MAX_UPLOAD_MB}mb")  # a larger upload is refused before it is stored
