"""examples/spaces/app.py, the Hugging Face Space, tested as a person uses it: served on localhost, driven by a
headless Chromium (Playwright, with Debian's chromium: Playwright's own browser download is unreachable here).

The app serves a tiny random AVGenPipeline with a tiny default generation (AVGEN_DEMO_STEPS, AVGEN_DEMO_DURATIONS).
`make test` installs the browser (Makefile); where it could not, the browser test skips, except on CI, where it fails.
"""

import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

from avgen.muxer import read_video
from avgen.provenance import CREATED, IPTC, actions_of, read_credentials
from avgen.vocabulary import write_vocabulary

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "spaces" / "app.py"
ARTIFACTS = ROOT / "test-artifacts"
PROMPT = "a red ball bounces"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from the tests (no network here anyway)


def unavailable(reason: str):
    if os.environ.get("CI"):  # CI installs the browser (make test): a missing one is a broken setup, not a skip
        pytest.fail(f"{reason} (CI must run the browser test; see the Makefile's browser step)")
    pytest.skip(reason)


def chromium() -> str:
    path = shutil.which(os.environ.get("CHROMIUM", "chromium"))  # a name on PATH or a path
    if path is None:
        unavailable("no chromium browser (apt-get install chromium, or set CHROMIUM to one)")
    return path


@pytest.fixture(scope="module")
def app_module():
    if importlib.util.find_spec("gradio") is None:
        unavailable('gradio is not installed (pip install -e ".[demo]")')
    spec = importlib.util.spec_from_file_location("spaces_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def serve(folder: Path, **settings):
    """The Space on a free localhost port, run in `folder` with `settings` as its environment variables (beside the
    tiny defaults); yields its URL and its process once the page answers."""
    with socket.socket() as probe:  # a port nothing listens on now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "AVGEN_DEMO_STEPS": "2",
        "AVGEN_DEMO_DURATIONS": "0.5@24,0.5@16",  # 12 frames at 24 fps: the tiny model's clip takes a second
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "OMP_NUM_THREADS": "1",
        **settings,
    }
    log = open(folder / "app.log", "w+")
    process = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 600  # a loaded machine may take minutes to import torch and gradio (9 measured)
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                log.seek(0)
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the app did not come up at {url}:\n{log.read()}")
                time.sleep(0.25)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The Space on a free localhost port, serving a tiny random pipeline; yields its URL."""
    if importlib.util.find_spec("gradio") is None:
        unavailable('gradio is not installed (pip install -e ".[demo]")')
    from tests.pipelines.tiny import avgen_pipeline

    folder = tmp_path_factory.mktemp("space")
    avgen_pipeline().save_pretrained(folder / "model")
    write_vocabulary(folder / "model" / "tokenizer")  # the world's words, as training writes them: the page shows chips
    settings = dict(
        AVGEN_MODEL=str(folder / "model"),
        AVGEN_EDIT_MODEL=str(folder / "no-edit-model"),
        AVGEN_DEMO_QUEUE_SIZE="4",  # a short line, so that 50 requests overflow it (test_fifty_requests_at_once)
        AVGEN_DEMO_MAX_UPLOAD_MB="1",
    )
    with serve(folder, **settings) as (url, _):
        yield url


@pytest.fixture(scope="module")
def page(request):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable('playwright is not installed (pip install -e ".[test]")')
    executable = chromium()
    server = request.getfixturevalue("server")  # started only once there is a browser to drive it
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root, which CI and containers are
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(server)
        yield page
        browser.close()


PLAY_TO_END = """async v => {
    v.muted = true;
    v.currentTime = 0;
    await v.play();
    await new Promise(done => v.ended ? done() : v.addEventListener('ended', done, {once: true}));
    return {ended: v.ended, video_frames: v.webkitDecodedFrameCount, audio_bytes: v.webkitAudioDecodedByteCount};
}"""


def played_file(page, video, path: Path):
    """Download the very file a <video> element plays, once the browser has decoded its first frame."""
    video.wait_for()
    video.evaluate("v => new Promise(done => v.readyState >= 2 ? done() : v.addEventListener('loadeddata', done))")
    response = page.request.get(video.get_attribute("src"))
    assert response.ok
    path.write_bytes(response.body())
    return path


@pytest.mark.timeout(120)
def test_generate_plays_an_mp4_with_sound_in_the_browser(page, tmp_path):
    page.locator("#prompt textarea").fill(PROMPT)
    page.get_by_label("Camera").click()
    page.get_by_role("option", name="Tracking shot").click()
    page.locator("#generate").click()
    video = page.locator("#generate-video video")
    path = played_file(page, video, tmp_path / "played.mp4")
    assert video.evaluate("v => v.duration") == pytest.approx(0.5, abs=0.05)  # as the browser decoded it
    # it plays to the end in the page, and the browser decodes its sound track as it plays (Chromium's decoded
    # byte counters; muted, which autoplay policy allows without a click, still decodes the audio)
    played = video.evaluate(PLAY_TO_END)
    assert played["ended"] and played["video_frames"] > 0 and played["audio_bytes"] > 0, played
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "spaces_generate.png"), full_page=True)

    # H.264 + AAC with the clip's fps, length and prompt
    decoded = read_video(path)
    assert decoded.fps == 24 and decoded.frames.shape == (12, 64, 64, 3)  # 0.5 s, upsampled 32 -> 64
    assert decoded.audio is not None and decoded.sample_rate == 16_000 and decoded.audio.shape == (1, 8000)
    assert decoded.metadata["prompt"] == f"{PROMPT}. Tracking shot."

    # an empty prompt is refused with a message, before any model runs
    page.locator("#prompt textarea").fill("  ")
    page.locator("#generate").click()
    page.get_by_text("Write a prompt first.").wait_for()

    # Add sound: the generated clip uploaded; its pictures come back as they were, with new sound
    page.get_by_role("tab", name="Add sound to a video").click()
    page.locator("#sound-source input[type=file]").set_input_files(str(path))
    page.locator("#add-sound").click()
    page.get_by_text("The video already has sound").wait_for()
    sound = read_video(played_file(page, page.locator("#sound-video video"), tmp_path / "sound.mp4"))
    assert (sound.frames == decoded.frames).all() and sound.fps == 24
    assert sound.audio.shape == (1, 8000) and not (sound.audio == decoded.audio).all()


@pytest.mark.timeout(60)
@pytest.mark.timeout(120)
def test_a_vocabulary_chip_fills_the_prompt_and_the_clip_carries_content_credentials(page, tmp_path):
    page.get_by_role("tab", name="Generate").click()
    page.locator("#prompt textarea").fill("")
    page.locator("button.vocabulary-chip", has_text=re.compile(r"^\s*ball\s*$")).first.click()
    prompt = page.locator("#prompt textarea").input_value()
    assert "ball" in prompt, prompt  # added in the browser, no request
    video = page.locator("#generate-video video")
    before = video.get_attribute("src") if video.count() else None
    page.locator("#generate").click()
    page.wait_for_function("([selector, before]) => { const v = document.querySelector(selector);"
                           " return v && v.getAttribute('src') && v.getAttribute('src') !== before; }",
                           arg=["#generate-video video", before])
    path = played_file(page, video, tmp_path / "chip.mp4")
    assert "ball" in read_video(path).metadata["prompt"]
    credentials = read_credentials(path)  # the Space's MP4 is signed like every other writer's
    [created] = actions_of(credentials["manifest"])
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == IPTC + CREATED


def test_edit_tab_says_the_edit_weights_are_missing(page):
    page.get_by_role("tab", name="Edit").click()
    page.get_by_text("The edit weights are not available").wait_for()
    assert not page.locator("#edit").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "spaces_edit_unavailable.png"))


# --- the helpers, without a browser ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "prompt, preset, expected",
    [
        ("a red ball bounces", "Tracking shot", "a red ball bounces. Tracking shot."),
        ("Pan left. A blue car drives.", "Zoom in", "A blue car drives. Zoom in."),
        ("a car drives. camera pans left.", "Static shot", "a car drives. Static shot."),
        ("  a car drives. Zoom in.  ", "As written", "a car drives. Zoom in."),
    ],
)
def test_camera_preset_replaces_the_camera_sentence(app_module, prompt, preset, expected):
    assert app_module.with_camera(prompt, preset) == expected


def test_checks_refuse_bad_input_with_a_message(app_module, tmp_path):
    import gradio as gr

    for seed in (None, -1, 1.5, 2**32, float("nan")):
        with pytest.raises(gr.Error, match="seed must be a whole number"):
            app_module.check_seed(seed)
    with pytest.raises(gr.Error, match="Write a prompt first"):
        app_module.check_text("   ", "prompt")
    with pytest.raises(gr.Error, match="the model reads at most 255"):
        app_module.check_text("x" * 256, "prompt")
    with pytest.raises(gr.Error, match="upload an MP4 or MOV"):
        app_module.check_upload(str(tmp_path / "clip.gif"))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(gr.Error, match="broken.mp4: cannot read the video"):
        app_module.check_upload(str(tmp_path / "broken.mp4"))
    with pytest.raises(ValueError, match="AVGEN_DEMO_DURATIONS: '10@20' is not SECONDS@FPS"):
        app_module.parse_durations("10@20")


@pytest.mark.timeout(900)
def test_fifty_requests_at_once_get_a_sound_or_queue_full(server, tmp_path):
    """50 "Add sound" requests at once on loopback (gradio_client, 50 threads; each uploads a 29.97 fps MKV) against
    one job at a time and 4 waiting: every request gets either a video with sound of exactly the clip's length or
    Gradio's "queue full" (HTTP 503), nothing else, and the app answers the next request. The criterion is the bound,
    not a count: how many get through depends on how fast jobs finish, but all 50 could only be taken if 45 jobs
    finished while the 50 were arriving. An upload over AVGEN_DEMO_MAX_UPLOAD_MB is refused with its size."""
    from gradio_client import Client, handle_file

    from avgen.muxer import probe_timing
    from tests.pipelines.test_video_input import encode_clip

    clip = encode_clip(tmp_path / "phone.mkv", 29.97, num_frames=8)
    client = Client(server, verbose=False, max_workers=50)
    jobs = [client.submit(handle_file(str(clip)), "", 0, 2, api_name="/add_sound") for _ in range(50)]
    sounds, refused = [], []
    for job in jobs:
        try:
            sounds.append(job.result(timeout=600))
        except Exception as error:  # gradio_client's QueueError for the 503, anything else fails below
            refused.append(f"{type(error).__name__}: {error}")
    assert set(refused) == {"QueueError: Queue is full! Please try again."} and sounds, (len(sounds), set(refused))
    expected = probe_timing(clip).num_samples(16_000)
    assert all(read_video(path).audio.shape == (1, expected) for path in sounds[:3])
    assert read_video(client.predict(handle_file(str(clip)), "", 1, 2, api_name="/add_sound")).audio.shape == (1, expected)

    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * 2**20))
    with pytest.raises(ValueError, match="exceeds the maximum file size of 1048576 bytes"):  # the client reads the limit
        client.predict(handle_file(str(big)), "", 0, 2, api_name="/add_sound")
    import httpx

    with open(big, "rb") as upload:  # and the server itself refuses it, for any client
        response = httpx.post(f"{server}gradio_api/upload", files={"files": (big.name, upload)}, timeout=60)
    assert response.status_code == 413 and "maximum allowed size of 1048576 bytes" in response.text


def test_add_sound_takes_any_frame_rate_and_says_what_it_refuses(app_module, monkeypatch, tmp_path):
    import gradio as gr

    from tests.pipelines.test_video_input import encode_clip

    app_module.check_sound_upload(str(encode_clip(tmp_path / "phone.webm", 59.94)), 1.0)  # a phone's rate, in WebM
    app_module.check_sound_upload(str(encode_clip(tmp_path / "phone.mkv", 30, vfr=True)), 1.0)  # a variable one
    with pytest.raises(gr.Error, match=r"phone.mov lasts 0.2 s; this demo takes videos of at most 0.1 s"):
        app_module.check_sound_upload(str(encode_clip(tmp_path / "phone.mov", 60, num_frames=12)), 0.1)
    with pytest.raises(gr.Error, match="upload an MP4, MOV, MKV or WebM video"):
        app_module.check_sound_upload(str(tmp_path / "clip.avi"), 1.0)
    (tmp_path / "broken.mkv").write_bytes(b"not a video")
    with pytest.raises(gr.Error, match="broken.mkv: cannot read the video"):
        app_module.check_sound_upload(str(tmp_path / "broken.mkv"), 1.0)
    monkeypatch.setattr(app_module, "MAX_UPLOAD_MB", 0)
    with pytest.raises(gr.Error, match="phone.mkv is 0 MB; this demo takes uploads of at most 0 MB"):
        app_module.check_sound_upload(str(tmp_path / "phone.mkv"), 1.0)


def test_without_weights_the_app_starts_and_says_why(app_module, monkeypatch, tmp_path):
    monkeypatch.setattr(app_module, "MODEL", str(tmp_path / "missing"))
    demo = app_module.build_demo()  # builds without loading anything
    banner = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "model-problem")
    assert banner.visible and "No model to generate with" in banner.value
    import gradio as gr

    with pytest.raises(gr.Error, match="No model to generate with"):
        app_module.load("main")


def test_edit_runs_the_edit_pipeline_and_refuses_a_too_long_video(app_module, monkeypatch, tmp_path):
    import gradio as gr
    import numpy as np

    from avgen.muxer import write_video
    from tests.pipelines.test_video_edit import get_pipeline

    get_pipeline().save_pretrained(tmp_path / "edit")
    monkeypatch.setattr(app_module, "EDIT_MODEL", tmp_path / "edit")
    monkeypatch.setattr(app_module, "_loaded", {})
    monkeypatch.setattr(app_module, "OUTPUT_DIR", tmp_path)
    frames = np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), dtype=np.uint8)
    sound = np.zeros((1, 40 * 16_000 // 24), np.float32)
    short = write_video(tmp_path / "short.mp4", frames[:9], 24, audio=sound[:, : 9 * 16_000 // 24], sample_rate=16_000)
    edited_path = app_module.edit(str(short), "make the ball blue", 0, 2)
    edited = read_video(edited_path)
    assert edited.frames.shape == (9, 32, 32, 3) and edited.fps == 24 and edited.audio.shape == (1, 6000)
    assert edited.metadata["instruction"] == "make the ball blue" and edited.metadata["model"] == str(tmp_path / "edit")
    credentials = read_credentials(edited_path)  # signed as an edit of the upload, its parent ingredient
    assert [action["action"] for action in actions_of(credentials["manifest"])] == ["c2pa.opened", "c2pa.edited"]
    assert credentials["state"] == "Valid" and credentials["manifest"]["ingredients"][0]["title"] == "short.mp4"

    long = write_video(tmp_path / "long.mp4", frames, 24)  # 40 frames; the tiny model's positions cover 32
    with pytest.raises(gr.Error, match="cover at most 32 frames .* trim the video"):
        app_module.edit(str(long), "make the ball blue", 0, 2)


def test_vocabulary_chips_beside_the_prompt_and_a_note_on_unknown_words(app_module, monkeypatch, tmp_path):
    """The model's vocabulary.json as chips that add their phrase to the prompt (in the browser: a js function, no
    request), and a prompt with other words generates with a note naming them; the clip is signed as a creation.
    (The browser test does not click a chip: it serves the tiny random model, which has no vocabulary.)"""
    import gradio as gr

    from avgen.vocabulary import write_vocabulary
    from tests.pipelines.tiny import avgen_pipeline

    avgen_pipeline(with_upsampler=False).save_pretrained(tmp_path / "model")
    write_vocabulary(tmp_path / "model" / "tokenizer")
    for name, value in (("MODEL", str(tmp_path / "model")), ("_loaded", {}), ("OUTPUT_DIR", tmp_path),
                        ("DURATIONS", {"0.5 s at 24 fps": (0.5, 24)})):  # fmt: skip
        monkeypatch.setattr(app_module, name, value)
    demo = app_module.build_demo()
    chips = {block.value: block for block in demo.blocks.values() if "vocabulary-chip" in (getattr(block, "elem_classes", None) or [])}
    assert {"ball", "woman in a dress", "red", "grassy field", "thunderstorm", "calm piano", "pan left"} <= set(chips)
    assert "change the background to a beach" not in chips  # the edit examples are not prompt words
    scripts = [dependency.get("js") or "" for dependency in demo.config["dependencies"]]
    assert any("across a grassy field" in script for script in scripts)  # the phrase a chip adds

    with pytest.warns(UserWarning, match='note: .*not understood: "golden", "retriever"'):  # gr.Warning outside a request
        path, info = app_module.generate("a golden retriever", "0.5 s at 24 fps", "As written", 0, 2)
    assert 'not understood: "golden", "retriever"' in info
    [created] = actions_of(read_credentials(path)["manifest"])
    assert created["digitalSourceType"] == IPTC + CREATED
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a world prompt: no note
        _, info = app_module.generate("A red ball bounces across a meadow. Pan left.", "0.5 s at 24 fps", "As written", 0, 2)
    assert "note" not in info
    with pytest.raises(gr.Error, match="Pick a duration"):
        app_module.generate("a red ball", "10 s at 24 fps", "As written", 0, 2)


def test_add_sound_names_a_codec_the_mp4_cannot_carry_and_how_to_keep_it(app_module, tmp_path):
    """VP8 and Theora uploads: the answer is an MP4, which cannot carry them as they are; the refusal names the codec,
    says how to convert it, and the command that keeps it (avgen foley writes a WebM or an MKV)."""
    import gradio as gr

    from tests.pipelines.test_video_input import encode_with_ffmpeg

    vp8, theora = encode_with_ffmpeg(tmp_path / "old.webm", "vp8", 30), encode_with_ffmpeg(tmp_path / "old.mkv", "theora", 25)
    with pytest.raises(gr.Error, match=r"old\.webm holds vp8 video, which cannot go as it is into the MP4 this demo returns; "
                                       r"convert it to H\.264, VP9 or AV1, or .* `avgen foley old\.webm -o out\.webm`"):  # fmt: skip
        app_module.check_sound_upload(str(vp8), 1.0)
    with pytest.raises(gr.Error, match=r"old\.mkv holds theora video, .* `avgen foley old\.mkv -o out\.mkv`"):
        app_module.check_sound_upload(str(theora), 1.0)


def broken_copy(model: Path, folder: Path, kind: str) -> Path:
    """A copy of a saved pipeline broken as `kind` says: "nan" (a NaN in the transformer's weights) or "index" (a
    model_index.json that is not JSON)."""
    from safetensors.torch import load_file, save_file

    folder = Path(shutil.copytree(model, folder))
    if kind == "index":
        (folder / "model_index.json").write_text("{not json")
    else:
        weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
        tensors = load_file(weights)
        key = next(name for name in sorted(tensors) if tensors[name].is_floating_point())
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = float("nan")
        save_file(tensors, weights)
    return folder


def test_weights_the_loader_refuses_are_named_and_the_app_goes_on(app_module, monkeypatch, tmp_path):
    """Weights with a NaN, and a model_index.json that is not JSON: the page builds, says what is wrong with which file
    (the banner, and the error of each request), and once the weights are good again the next request generates."""
    import gradio as gr

    from avgen.muxer import write_video
    from tests.pipelines.test_video_to_audio import dummy_frames
    from tests.pipelines.tiny import avgen_pipeline

    avgen_pipeline(with_upsampler=False).save_pretrained(tmp_path / "model")
    for name, value in (("_loaded", {}), ("OUTPUT_DIR", tmp_path), ("DURATIONS", {"0.5 s at 24 fps": (0.5, 24)})):
        monkeypatch.setattr(app_module, name, value)
    clip = write_video(tmp_path / "clip.mp4", dummy_frames(), 24)

    monkeypatch.setattr(app_module, "MODEL", str(broken_copy(tmp_path / "model", tmp_path / "nan", "nan")))
    app_module.build_demo()  # nothing is read but the folder's layout: the weights' values are read on loading
    nan = r"The model cannot be loaded: .*nan/transformer/diffusion_pytorch_model\.safetensors holds NaN or infinite values"
    with pytest.raises(gr.Error, match=nan):
        app_module.generate("a red ball", "0.5 s at 24 fps", "As written", 0, 2)
    with pytest.raises(gr.Error, match=nan):
        app_module.add_sound(str(clip), "", 0, 2)

    monkeypatch.setattr(app_module, "MODEL", str(broken_copy(tmp_path / "model", tmp_path / "index", "index")))
    demo = app_module.build_demo()  # used to raise: the page did not come up
    banner = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "model-problem")
    index = r"The model cannot be loaded: .*index/model_index\.json is not valid JSON"
    assert banner.visible and re.search(index, banner.value)
    with pytest.raises(gr.Error, match=index):
        app_module.generate("a red ball", "0.5 s at 24 fps", "As written", 0, 2)

    monkeypatch.setattr(app_module, "MODEL", str(tmp_path / "model"))  # the weights replaced: the next request works
    path, _ = app_module.generate("a red ball", "0.5 s at 24 fps", "As written", 0, 2)
    assert read_video(path).frames.shape == (12, 32, 32, 3)


def test_a_served_app_with_broken_weights_answers_each_request_with_what_is_wrong(tmp_path):
    """Served: a main model whose model_index.json is not JSON and an edit model with a NaN in its weights. The app
    comes up, each request gets the loader's own words (naming the file) in its error, and it goes on answering."""
    if importlib.util.find_spec("gradio") is None:
        unavailable('gradio is not installed (pip install -e ".[demo]")')
    from gradio_client import Client, handle_file

    from avgen.muxer import write_video
    from tests.pipelines.test_video_edit import get_pipeline
    from tests.pipelines.test_video_to_audio import dummy_frames
    from tests.pipelines.tiny import avgen_pipeline

    avgen_pipeline(with_upsampler=False).save_pretrained(tmp_path / "model")
    get_pipeline().save_pretrained(tmp_path / "edit")
    main, edit = broken_copy(tmp_path / "model", tmp_path / "main", "index"), broken_copy(tmp_path / "edit", tmp_path / "edit-nan", "nan")
    clip = write_video(tmp_path / "clip.mp4", dummy_frames(9), 24)
    with serve(tmp_path, AVGEN_MODEL=str(main), AVGEN_EDIT_MODEL=str(edit)) as (url, process):
        client = Client(url, verbose=False)
        for _ in range(2):  # the same answer again: nothing broke
            with pytest.raises(Exception, match=r"The model cannot be loaded: .*main/model_index\.json is not valid JSON") as raised:
                client.predict("a red ball", "0.5 s at 24 fps", "As written", 0, 2, api_name="/generate")
            assert type(raised.value).__name__ == "AppError"  # the app's gr.Error, not a crash
            with pytest.raises(Exception, match=r"edit-nan/transformer/diffusion_pytorch_model\.safetensors holds NaN or infinite"):
                client.predict(handle_file(str(clip)), "make the ball blue", 0, 2, api_name="/edit")
        assert process.poll() is None
    log = (tmp_path / "app.log").read_text()  # Gradio logs each gr.Error it answers with; nothing else was raised
    assert set(re.findall(r"^(\w[\w.]*(?:Error|Exception)):", log, re.M)) == {"gradio.exceptions.Error"}, log
