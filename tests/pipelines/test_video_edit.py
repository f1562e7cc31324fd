"""VideoEditPipeline on tiny random components: the edit transformer built from the text-to-video one, 32x32
frames, 2-3 steps. Shapes, determinism, the three-branch guidance exactly, the source's path into the
transformer, kept and regenerated sound, errors before compute, save/load with and without the audio models."""

import json

import numpy as np
import PIL.Image
import pytest
import torch

import avgen
from avgen.clock import AVClock
from avgen.flow_matching import interpolate, linear_quadratic_sigmas
from avgen.models import VideoTransformer
from avgen.muxer import read_video, write_video
from avgen.outputs import AVGenOutput
from avgen.pipelines import VideoEditPipeline
from avgen.pipelines.video_edit import centre_crop_box, changes_sound
from avgen.profiling import conditions_per_step
from avgen.training.tasks import edit_transformer_from
from tests.pipelines.test_text_to_video import TEXT_DIM
from tests.pipelines.test_text_to_video import get_dummy_components as video_components
from tests.pipelines.test_video_to_audio import dummy_frames
from tests.pipelines.test_video_to_audio import get_dummy_components as audio_components

AUDIO = ("audio_text_encoder", "audio_vae", "audio_transformer", "video_encoder")


def get_dummy_components(with_audio=False, transformer_class=None):
    """The text-to-video tiny models (4 latent channels, 32x32 native, 8 latent frames = up to 32 frames) with the
    transformer turned into the edit one (8 input channels); with_audio adds the video-to-audio tiny models."""
    components = video_components()
    transformer = edit_transformer_from(components["transformer"]).eval()
    # edit_transformer_from starts the source's input weights at zero (the model is text-to-video at step 0);
    # random values make the source matter, so the tests can see it
    with torch.no_grad():
        transformer.patch_embed.weight[:, 4:].normal_(0, 0.3)
    if transformer_class is not None:
        transformer = transformer_class.from_config(transformer.config).eval()
    components["transformer"] = transformer
    if with_audio:
        audio = audio_components()
        components.update(
            audio_text_encoder=audio["text_encoder"],
            audio_vae=audio["audio_vae"],
            audio_transformer=audio["audio_transformer"],
            video_encoder=audio["video_encoder"],
        )
    return components


def get_pipeline(**kwargs):
    pipe = VideoEditPipeline(**get_dummy_components(**kwargs))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def get_dummy_inputs(seed=0, **overrides):
    inputs = dict(
        video=dummy_frames(9),  # (9, 32, 32, 3) uint8: 3 latent frames
        prompt="make the ball blue",
        fps=24,
        num_inference_steps=2,
        guidance_scale=3.0,
        video_guidance_scale=1.5,
        generator=torch.Generator().manual_seed(seed),
    )
    return inputs | overrides


@pytest.fixture(scope="module")
def pipe():
    return get_pipeline()


@pytest.fixture(scope="module")
def audio_pipe():
    return get_pipeline(with_audio=True)


@pytest.fixture
def clip(tmp_path):
    """9 frames at 24 fps, 48 x 40, with a sine track of 0.375 s at 16 kHz (6000 samples)."""
    frames = np.random.default_rng(0).integers(0, 255, (9, 40, 48, 3), dtype=np.uint8)
    sine = 0.5 * np.sin(np.arange(6000) / 5.0, dtype=np.float32)
    return write_video(tmp_path / "in.mp4", frames, 24, sine, 16000)


# --- components -------------------------------------------------------------------------------------


def test_refuses_a_text_to_video_transformer_and_half_the_audio_models():
    with pytest.raises(ValueError, match=r"in_channels = 8 .* a text-to-video transformer"):
        VideoEditPipeline(**video_components())
    components = get_dummy_components(with_audio=True)
    components["video_encoder"] = None
    with pytest.raises(ValueError, match=r"all together or not at all.*missing \['video_encoder'\]"):
        VideoEditPipeline(**components)


# --- shapes, sizes, output types ---------------------------------------------------------------------


def test_output_types_and_native_size(pipe):
    assert (pipe.default_height, pipe.default_width) == (32, 32)  # 2 tokens x patch 2 x 8
    output = pipe(**get_dummy_inputs())
    assert isinstance(output, AVGenOutput) and output.fps == 24 and output.audio is None  # frames have no sound
    frames = output.frames
    assert isinstance(frames, np.ndarray) and frames.shape == (1, 9, 32, 32, 3) and frames.std() > 0
    assert frames.min() >= 0 and frames.max() <= 1

    pt = pipe(**get_dummy_inputs(output_type="pt")).frames
    assert torch.is_tensor(pt) and pt.shape == (1, 9, 3, 32, 32)
    np.testing.assert_allclose(pt.permute(0, 1, 3, 4, 2).numpy(), frames, atol=1e-6)
    pil = pipe(**get_dummy_inputs(output_type="pil")).frames
    assert len(pil) == 1 and len(pil[0]) == 9 and isinstance(pil[0][0], PIL.Image.Image) and pil[0][0].size == (32, 32)
    latent = pipe(**get_dummy_inputs(output_type="latent")).frames
    assert latent.shape == (1, 4, 3, 4, 4)  # the vae's 4 channels, not the transformer's 8 inputs
    frames_tuple, audio = pipe(**get_dummy_inputs(return_dict=False))
    np.testing.assert_array_equal(frames_tuple, frames) and audio is None


def test_any_input_form_and_size_is_centre_cropped_to_the_native_size(pipe):
    """A 32 x 64 frame whose centre square is white and sides black: the crop keeps only the white."""
    wide = np.zeros((1, 5, 32, 64, 3), np.uint8)
    wide[:, :, :, 16:48] = 255
    prepared = pipe.prepare_frames(wide)
    assert prepared.shape == (1, 5, 3, 32, 32) and prepared.min() == 1.0
    tall = np.random.default_rng(0).integers(0, 255, (1, 5, 100, 50, 3), dtype=np.uint8)  # crop 50 x 50, resize
    assert centre_crop_box(100, 50, 32, 32) == (25, 0, 50, 50)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(tall[0, :, 25:75]).permute(0, 3, 1, 2).float() / 255, size=(32, 32), mode="bilinear", antialias=True
    )
    torch.testing.assert_close(pipe.prepare_frames(tall)[0], expected.clamp(0, 1), atol=1e-6, rtol=0)

    # the same clip as uint8, float tensor and PIL images edits to the same result
    frames = dummy_frames(9)
    reference = pipe(**get_dummy_inputs(video=frames, output_type="latent")).frames
    as_tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)[None].float() / 255
    as_pil = [PIL.Image.fromarray(frame) for frame in frames]
    for video in (as_tensor, as_pil):
        torch.testing.assert_close(pipe(**get_dummy_inputs(video=video, output_type="latent")).frames, reference)


# --- determinism, batches, generators -----------------------------------------------------------------


def test_same_seed_same_output_and_different_seed_differs(pipe):
    first = pipe(**get_dummy_inputs(seed=0)).frames
    np.testing.assert_array_equal(first, pipe(**get_dummy_inputs(seed=0)).frames)
    assert np.abs(first - pipe(**get_dummy_inputs(seed=1)).frames).max() > 1e-3


def test_generator_lists_batches_and_metadata(pipe):
    """Two videos, one instruction, two edits each: edit k equals the single run with its own generator."""
    videos = np.stack([dummy_frames(9, seed=0), dummy_frames(9, seed=1)])
    seeds = [3, 4, 5, 6]
    output = pipe(**get_dummy_inputs(video=videos, num_videos_per_prompt=2, generator=[torch.Generator().manual_seed(s) for s in seeds]))
    assert output.frames.shape == (4, 9, 32, 32, 3)
    for index, seed in enumerate(seeds):
        single = pipe(**get_dummy_inputs(video=videos[index // 2], seed=seed)).frames
        np.testing.assert_allclose(output.frames[index], single[0], atol=1e-5)
    assert [m["seed"] for m in output.metadata] == seeds
    entry = output.metadata[0]
    assert entry["generator"] == "avgen" and entry["model_version"] == avgen.__version__
    assert entry["pipeline"] == "VideoEditPipeline" and entry["instruction"] == "make the ball blue"
    assert (entry["num_inference_steps"], entry["guidance_scale"], entry["video_guidance_scale"]) == (2, 3.0, 1.5)
    assert entry["regenerate_audio"] is False
    # one video, two instructions: the instruction matters
    two = pipe(**get_dummy_inputs(prompt=["make the ball blue", "change the background to a beach"], output_type="latent"))
    assert [m["instruction"] for m in two.metadata] == ["make the ball blue", "change the background to a beach"]
    assert not torch.allclose(two.frames[0], two.frames[1])


# --- the sampler: guidance and the source's way into the transformer ------------------------------------


class OracleEditTransformer(VideoTransformer):
    """Predicts the exact velocity (x1 - x_t) / (1 - t) toward x1 = text value + source latents (the second half
    of the input channels). Euler on a straight path is exact, so the output is the guidance's combination of
    the branches' x1, exactly."""

    calls: list

    def forward(self, hidden_states, encoder_hidden_states, timestep, fps, encoder_attention_mask=None, **kwargs):
        noisy, source = hidden_states.chunk(2, dim=1)
        self.calls.append(dict(timestep=timestep.clone(), fps=fps, source=source.clone(), noisy=noisy.clone(),
                               text=encoder_hidden_states[:, 0, 0].clone()))
        target = encoder_hidden_states[:, 0, 0].reshape(-1, 1, 1, 1, 1) + source
        return ((target - noisy) / (1 - timestep).reshape(-1, 1, 1, 1, 1),)


@pytest.mark.parametrize("guidance_scale, video_guidance_scale, branches", [(1.0, 1.0, 1), (3.0, 1.0, 2), (1.0, 2.0, 3), (3.0, 2.0, 3)])
def test_guidance_formula_and_source_latents_reach_the_transformer(guidance_scale, video_guidance_scale, branches):
    pipe = get_pipeline(transformer_class=OracleEditTransformer)
    pipe.transformer.calls = []
    frames = dummy_frames(9)
    latents = pipe(
        **get_dummy_inputs(
            video=frames, fps=16, prompt=None, guidance_scale=guidance_scale, video_guidance_scale=video_guidance_scale,
            num_inference_steps=4, output_type="latent",
        ),
        prompt_embeds=torch.full((1, 3, TEXT_DIM), 2.0),
        negative_prompt_embeds=torch.full((1, 5, TEXT_DIM), -1.0),
    ).frames
    with torch.no_grad():  # the source latents, computed here independently: vae mode times scaling_factor (0.5)
        sample = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 255 * 2 - 1  # (1, 3, F, H, W)
        source = pipe.vae.encode(sample).latent_dist.mode() * 0.5
    # x1 per branch: uncond -1 + 0, source -1 + S, full 2 + S; v = v_u + s_v (v_s - v_u) + g (v_f - v_s)
    uncond, with_source, full = -1.0, -1.0 + source, 2.0 + source
    expected = full if branches == 1 else uncond + video_guidance_scale * (with_source - uncond) + guidance_scale * (full - with_source)
    torch.testing.assert_close(latents, expected, atol=1e-4, rtol=1e-4)

    calls = pipe.transformer.calls
    np.testing.assert_allclose([float(c["timestep"][0]) for c in calls], 1 - np.array(linear_quadratic_sigmas(4)), atol=1e-6)
    assert all(c["fps"] == 16 and c["source"].shape[0] == branches for c in calls)  # one forward a step
    first = calls[0]
    expected_text = {1: [2.0], 2: [-1.0, 2.0], 3: [-1.0, -1.0, 2.0]}[branches]
    assert first["text"].tolist() == expected_text
    for branch, source_branch in enumerate(first["source"]):
        if branches == 3 and branch == 0:
            assert torch.count_nonzero(source_branch) == 0  # the unconditional branch: no source
        else:
            torch.testing.assert_close(source_branch[None], source, atol=1e-5, rtol=0)


def test_strength_starts_from_the_noised_source_and_runs_the_tail_of_the_schedule():
    """strength < 1 (SDEdit-style): the first step is the source latents noised to the first sigma <= strength, with
    the generator's noise, and only the remaining steps run; the oracle still lands exactly on its x1."""
    pipe = get_pipeline(transformer_class=OracleEditTransformer)
    pipe.transformer.calls = []
    frames, steps = dummy_frames(9), 6  # sigmas 1, .999, .998, .997, .886, .553: strength 0.9 starts at step 4
    inputs = get_dummy_inputs(video=frames, prompt=None, num_inference_steps=steps, strength=0.9, output_type="latent",
                              video_guidance_scale=1.0, guidance_scale=1.0)  # fmt: skip
    output = pipe(**inputs, prompt_embeds=torch.full((1, 3, TEXT_DIM), 2.0))
    with torch.no_grad():
        sample = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 255 * 2 - 1  # (1, 3, F, H, W)
        source = pipe.vae.encode(sample).latent_dist.mode() * 0.5
    sigmas = linear_quadratic_sigmas(steps)
    calls = pipe.transformer.calls
    np.testing.assert_allclose([float(c["timestep"][0]) for c in calls], [1 - s for s in sigmas[4:]], atol=1e-6)
    noise = torch.randn(source.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(calls[0]["noisy"], interpolate(noise, source, torch.tensor([1 - sigmas[4]])), atol=1e-5, rtol=0)
    torch.testing.assert_close(output.frames, 2.0 + source, atol=1e-4, rtol=1e-4)
    assert output.metadata[0]["strength"] == 0.9


def test_strength_one_is_the_default_from_pure_noise(pipe):
    default = pipe(**get_dummy_inputs(output_type="latent"))
    torch.testing.assert_close(default.frames, pipe(**get_dummy_inputs(strength=1.0, output_type="latent")).frames, rtol=0, atol=0)
    assert default.metadata[0]["strength"] == 1.0
    assert not torch.allclose(default.frames, pipe(**get_dummy_inputs(strength=0.5, output_type="latent")).frames)


def test_conditions_prepared_once_per_call_give_the_edit_of_per_step_preparation(pipe):
    """Issue 47: the text of the three guidance branches is prepared once per call; the edit is bit for bit that of
    forwards preparing their own at every step."""
    per_call = pipe(**get_dummy_inputs(output_type="latent", num_inference_steps=3)).frames
    with conditions_per_step(pipe.transformer):
        assert torch.equal(pipe(**get_dummy_inputs(output_type="latent", num_inference_steps=3)).frames, per_call)


def test_negative_prompt_default_is_empty_string(pipe):
    default = pipe(**get_dummy_inputs(output_type="latent")).frames
    torch.testing.assert_close(default, pipe(**get_dummy_inputs(negative_prompt="", output_type="latent")).frames, rtol=0, atol=0)
    assert not torch.allclose(default, pipe(**get_dummy_inputs(negative_prompt="blurry", output_type="latent")).frames)


def test_callback_modifies_latents_and_can_interrupt(pipe):
    seen = []

    def callback(pipeline, step, timestep, callback_kwargs):
        seen.append((step, sorted(callback_kwargs)))
        return {"latents": torch.zeros_like(callback_kwargs["latents"])}

    latents = pipe(
        **get_dummy_inputs(num_inference_steps=3, output_type="latent"),
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
    ).frames
    assert seen == [(0, ["latents", "prompt_embeds"]), (1, ["latents", "prompt_embeds"]), (2, ["latents", "prompt_embeds"])]
    assert torch.count_nonzero(latents) == 0

    def stop(pipeline, step, timestep, callback_kwargs):
        pipeline._interrupt = True
        return {}

    forwards = []
    handle = pipe.transformer.register_forward_hook(lambda *args: forwards.append(1))
    try:
        pipe(**get_dummy_inputs(num_inference_steps=4), callback_on_step_end=stop)
    finally:
        handle.remove()
    assert len(forwards) == 1


# --- sound ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instruction, expected",
    [("add rain", True), ("let it pour", True), ("switch to nighttime", False), ("make it night", False), ("start a thunderstorm", True),
     ("make it windy", True), ("make the ball blue", False), ("paint the windows red", False),
     ("change the background to a busy intersection", False), ("add a rainbow", False)],
)  # fmt: skip
def test_changes_sound(instruction, expected):
    assert changes_sound(instruction) is expected


def test_original_audio_is_kept_exactly(audio_pipe, clip):
    """A file's sound comes out as read, fitted to AVClock's length; automatic mode keeps it for a colour edit."""
    decoded = read_video(clip)
    forwards = []
    handle = audio_pipe.audio_transformer.register_forward_hook(lambda *args: forwards.append(1))
    try:
        output = audio_pipe(**get_dummy_inputs(video=str(clip), fps=None, num_videos_per_prompt=2))
    finally:
        handle.remove()
    assert not forwards and output.metadata[0]["regenerate_audio"] is False
    expected = AVClock(24, 16000).fit_audio(decoded.audio, 9)  # 6000 samples
    assert output.sample_rate == 16000 and output.audio.shape == (2, 1, 6000)
    np.testing.assert_array_equal(output.audio[1], expected)
    assert output.frames.shape == (2, 9, 32, 32, 3)  # 48 x 40 cropped to 40 x 40, resized to 32 x 32


def test_regenerated_audio_is_the_audio_pipeline_on_the_edited_frames(audio_pipe):
    """'add rain' regenerates: the same as VideoToAudioPipeline on the edited frames, prompted with the
    instruction, its generator continuing after the video noise."""
    output = audio_pipe(**get_dummy_inputs(prompt="add rain", output_type="pt", audio_num_inference_steps=3))
    assert output.audio.shape == (1, 1, 6000) and output.sample_rate == 16000
    entry = output.metadata[0]
    assert entry["regenerate_audio"] is True and entry["audio_prompt"] == "add rain"
    assert entry["audio_num_inference_steps"] == 3 and entry["audio_guidance_scale"] == 3.0

    generator = torch.Generator().manual_seed(0)
    torch.randn(audio_pipe.latent_shape(1, 9), generator=generator)  # the video's noise
    expected = audio_pipe.video_to_audio(output.frames, prompt="add rain", fps=24, num_inference_steps=3, generator=generator, output_type="pt")
    torch.testing.assert_close(output.audio, expected.audio, atol=1e-5, rtol=0)

    other = audio_pipe(**get_dummy_inputs(prompt="add rain", output_type="pt", audio_num_inference_steps=3, audio_prompt="thunder"))
    assert other.metadata[0]["audio_prompt"] == "thunder" and not torch.allclose(other.audio, output.audio)
    kept = audio_pipe(**get_dummy_inputs(prompt="add rain", regenerate_audio=False))
    assert kept.audio is None and kept.metadata[0]["regenerate_audio"] is False  # frames given: no sound to keep
    forced = audio_pipe(**get_dummy_inputs(prompt="make the ball blue", regenerate_audio=True))
    assert forced.audio.shape == (1, 1, 6000)


# --- check_inputs: every error before any compute ------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(video="missing.mp4"), "no such file"),
        (dict(video=np.zeros((9, 32, 32, 3), np.float32)), "a video array must be uint8"),
        (dict(video=[1, 2]), "non-empty list of PIL images"),
        (dict(video=torch.full((1, 9, 3, 32, 32), 2.0)), r"values in \[0, 1\]"),
        (dict(fps=None), "fps is required"),
        (dict(fps=20), "fps must be one of"),
        (dict(video=dummy_frames(33)), r"33 frames .* at most 32 frames"),
        (dict(video=np.stack([dummy_frames(9)] * 2), prompt=["a", "b", "c"]), "2 videos and 3 instructions"),
        (dict(prompt=None), "pass prompt or prompt_embeds"),
        (dict(prompt_embeds=torch.zeros(1, 3, TEXT_DIM)), "prompt or prompt_embeds, not both"),
        (dict(prompt=3), "prompt must be a string"),
        (dict(num_inference_steps=1), "num_inference_steps must be an integer >= 2"),
        (dict(num_videos_per_prompt=0), "num_videos_per_prompt must be a positive integer"),
        (dict(output_type="mp4"), "output_type must be one of"),
        (dict(callback_on_step_end_tensor_inputs=["source"]), "callback_on_step_end_tensor_inputs must be in"),
        (dict(generator=[torch.Generator()] * 2), "got 2 generators for 1 videos"),
        (dict(guidance_scale=0.5), "guidance_scale must be a finite number >= 1"),
        (dict(video_guidance_scale=float("nan")), "video_guidance_scale must be a finite number >= 1"),
        (dict(strength=0.0), r"strength must be a number in \(0, 1\]"),
        (dict(strength=1.5), r"strength must be a number in \(0, 1\]"),
        (dict(latents=torch.zeros(1, 8, 3, 4, 4)), r"latents must have shape \(1, 4, 3, 4, 4\)"),
        (dict(regenerate_audio="yes"), "regenerate_audio must be True, False or None"),
        (dict(regenerate_audio=True), "needs the audio components"),
    ],
)
def test_check_inputs_errors(pipe, overrides, message):
    calls = []
    hooks = [module.register_forward_hook(lambda *args: calls.append(1)) for module in (pipe.text_encoder, pipe.vae, pipe.transformer)]
    try:
        with pytest.raises(ValueError, match=message):
            pipe(**get_dummy_inputs(**overrides))
    finally:
        for hook in hooks:
            hook.remove()
    assert not calls  # raised before any compute


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(regenerate_audio=True, output_type="latent"), 'output_type="latent" has none'),
        (dict(prompt="add rain", audio_num_inference_steps=1), "num_inference_steps must be an integer >= 2"),
        (dict(prompt="add rain", audio_prompt=5), "audio_prompt must be a string"),
    ],
)
def test_audio_errors_come_before_the_video_is_edited(audio_pipe, overrides, message):
    calls = []
    hook = audio_pipe.transformer.register_forward_hook(lambda *args: calls.append(1))
    try:
        with pytest.raises(ValueError, match=message):
            audio_pipe(**get_dummy_inputs(**overrides))
    finally:
        hook.remove()
    assert not calls


# --- saving and loading --------------------------------------------------------------------------------


@pytest.mark.parametrize("with_audio", [False, True])
def test_save_pretrained_from_pretrained_round_trip(tmp_path, monkeypatch, with_audio):
    pipe = get_pipeline(with_audio=with_audio)
    inputs = dict(prompt="add rain", output_type="pt")
    expected = pipe(**get_dummy_inputs(**inputs))
    pipe.save_pretrained(tmp_path)

    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == "VideoEditPipeline"
    assert index["transformer"] == ["avgen.models.transformer_video", "VideoTransformer"]
    assert all((index[name][0] is not None) is with_audio for name in AUDIO)
    weights = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix not in (".json", ".txt", ".md")]
    assert weights and all(p.suffix == ".safetensors" for p in weights), weights
    expected_folders = {"text_encoder", "vae", "transformer"} | ({"audio_text_encoder", "audio_vae", "audio_transformer", "video_encoder"} if with_audio else set())
    assert {p.parent.name for p in weights} == expected_folders

    def no_unpickling(*args, **kwargs):
        raise AssertionError("from_pretrained must not unpickle anything")

    monkeypatch.setattr(torch, "load", no_unpickling)
    loaded = VideoEditPipeline.from_pretrained(tmp_path, use_safetensors=True)
    monkeypatch.undo()
    loaded.set_progress_bar_config(disable=True)
    assert loaded.has_audio_components is with_audio and loaded.transformer.config.in_channels == 8
    output = loaded(**get_dummy_inputs(**inputs))
    torch.testing.assert_close(output.frames, expected.frames, atol=1e-5, rtol=0)
    if with_audio:  # the rain instruction regenerated the sound, before and after the round trip
        torch.testing.assert_close(output.audio, expected.audio, atol=1e-4, rtol=0)
    else:
        assert output.audio is None and expected.audio is None
