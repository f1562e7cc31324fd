"""AVGenPipeline on tiny random components: the stages share its modules and compose exactly, both Movie Gen
durations, upsampling and sound on/off, audio prompts, generators and determinism, errors before any model
runs, save/load and the default weights, and the saved MP4."""

import io
import json

import numpy as np
import pytest
import torch

from avgen.clock import AVClock
from avgen.muxer import read_video
from avgen.outputs import AVGenOutput
from avgen.pipelines import AVGenPipeline
from avgen.pipelines import text_to_audio_video
from avgen.precision import inference_precision
from avgen.profiling import conditions_per_step
from tests.pipelines.test_upsample import BF16
from tests.pipelines.tiny import avgen_pipeline

SAMPLE_RATE = 16000  # the tiny audio VAE's
MODELS = ("text_encoder", "transformer", "vae", "upsampler", "video_encoder", "audio_text_encoder", "audio_transformer", "audio_vae")


def get_dummy_inputs(seed=0, **overrides):
    inputs = dict(prompt="a red ball bounces", duration=0.5, fps=24, num_inference_steps=2,  # 12 frames of 32x32
                  generator=torch.Generator().manual_seed(seed))  # fmt: skip
    return inputs | overrides


@pytest.fixture(scope="module")
def pipe():
    return avgen_pipeline()


def test_stages_share_the_pipelines_modules(pipe):
    video, upsample, audio = pipe.text_to_video, pipe.upsample, pipe.video_to_audio
    assert video.text_encoder is pipe.text_encoder and video.transformer is pipe.transformer and video.vae is pipe.vae
    assert upsample.upsampler is pipe.upsampler
    assert audio.text_encoder is pipe.audio_text_encoder and audio.audio_transformer is pipe.audio_transformer
    assert audio.video_encoder is pipe.video_encoder and audio.audio_vae is pipe.audio_vae
    assert video.tokenizer is audio.tokenizer is pipe.tokenizer
    # offload visits every model, in the order the call runs them
    assert pipe.model_cpu_offload_seq.split("->") == list(MODELS)


def test_the_call_is_its_stages_in_sequence(pipe):
    """Video at 32x32, upsampled to 64x64; the sound from the native frames, the generator continuing."""
    output = pipe(**get_dummy_inputs())
    generator = torch.Generator().manual_seed(0)
    video = pipe.text_to_video(prompt="a red ball bounces", num_frames=12, num_inference_steps=2, guidance_scale=5.0,
                               generator=generator, output_type="pt").frames  # fmt: skip
    upsampled = pipe.upsample(video, fps=24).frames
    sound = pipe.video_to_audio(video, prompt="a red ball bounces", fps=24, num_inference_steps=2, generator=generator).audio
    np.testing.assert_array_equal(output.frames, upsampled)
    np.testing.assert_array_equal(output.audio, sound)


@pytest.mark.parametrize("duration, fps, num_frames", [(0.5, 24, 12), (1.0, 16, 16), (1.0, 8, 8)])
def test_shapes_and_exact_audio_length(pipe, duration, fps, num_frames):
    output = pipe(**get_dummy_inputs(duration=duration, fps=fps))
    assert isinstance(output, AVGenOutput) and (output.fps, output.sample_rate) == (fps, SAMPLE_RATE)
    assert output.frames.shape == (1, num_frames, 64, 64, 3)
    assert output.audio.shape == (1, 1, AVClock(fps, SAMPLE_RATE).num_samples(num_frames))
    assert np.isfinite(output.audio).all() and output.audio.std() > 0


@pytest.mark.parametrize("fps, frames", [(24, 240), (16, 256)])
def test_default_duration_is_movie_gens_for_the_fps(pipe, fps, frames):
    # the tiny transformer covers 32 frames, so the default (10 s at 24 fps, 16 s at 16 fps) is refused by name
    with pytest.raises(ValueError, match=f"num_frames={frames} \\({frames // fps} s at {fps} fps\\) is too long"):
        pipe(**get_dummy_inputs(duration=None, fps=fps))


def test_upsampling_off_keeps_the_size_and_the_sound(pipe):
    upsampled = pipe(**get_dummy_inputs())
    native = pipe(**get_dummy_inputs(upsample=False))
    assert upsampled.frames.shape == (1, 12, 64, 64, 3) and native.frames.shape == (1, 12, 32, 32, 3)
    video_only = pipe.text_to_video(**get_dummy_inputs(duration=None, num_frames=12, guidance_scale=5.0)).frames
    np.testing.assert_array_equal(native.frames, video_only)
    np.testing.assert_array_equal(native.audio, upsampled.audio)  # features come from the native frames either way
    assert upsampled.metadata[0]["upsampled"] is True and native.metadata[0]["upsampled"] is False


def test_without_upsampler(tmp_path):
    pipe = avgen_pipeline(with_upsampler=False)
    with pytest.raises(ValueError, match="no upsampler; pass upsample=False"):
        pipe(**get_dummy_inputs(upsample=True))
    assert pipe(**get_dummy_inputs(upsample=False)).frames.shape == (1, 12, 32, 32, 3)
    unset = pipe(**{**get_dummy_inputs(), "upsample": None})  # the default: upsample when there is an upsampler
    assert unset.frames.shape == (1, 12, 32, 32, 3) and unset.metadata[0]["upsampled"] is False
    pipe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["upsampler"] == [None, None]
    assert AVGenPipeline.from_pretrained(tmp_path).upsampler is None


def test_no_audio_runs_no_audio_model_and_saves_a_silent_mp4(pipe, monkeypatch, tmp_path):
    for name in ("video_encoder", "audio_text_encoder", "audio_transformer", "audio_vae"):
        monkeypatch.setattr(getattr(pipe, name), "forward", lambda *a, **k: pytest.fail("an audio model ran"))
    output = pipe(**get_dummy_inputs(generate_audio=False))
    assert output.audio is None and output.sample_rate is None and "audio_prompt" not in output.metadata[0]
    assert read_video(output.save(tmp_path / "silent.mp4")).audio is None


def test_audio_prompt_reaches_the_audio_text_encoder(pipe):
    seen = {"text_encoder": [], "audio_text_encoder": []}

    def record(name):  # the texts an encoder reads, decoded from its byte tokens
        return lambda module, args, kwargs, out: seen[name].extend(pipe.tokenizer.batch_decode(kwargs["input_ids"], skip_special_tokens=True))

    handles = [getattr(pipe, name).register_forward_hook(record(name), with_kwargs=True) for name in seen]
    try:
        separate = pipe(**get_dummy_inputs(audio_prompt="heavy rain", audio_negative_prompt="music")).audio
        assert seen == {"text_encoder": ["a red ball bounces", ""], "audio_text_encoder": ["heavy rain", "music"]}
        seen["text_encoder"].clear(), seen["audio_text_encoder"].clear()
        default = pipe(**get_dummy_inputs()).audio
        assert seen["audio_text_encoder"] == ["a red ball bounces", ""]  # the audio prompt defaults to the prompt
    finally:
        for handle in handles:
            handle.remove()
    assert not np.allclose(separate, default)


def test_audio_video_guidance_reaches_the_audio_stage(pipe, monkeypatch):
    batches = []
    forward = pipe.audio_transformer.forward
    monkeypatch.setattr(pipe.audio_transformer, "forward", lambda *a, **k: batches.append(k["hidden_states"].shape[0]) or forward(*a, **k))
    guided = pipe(**get_dummy_inputs(audio_video_guidance_scale=2.0))
    assert batches == [3, 3]  # [uncond; video; full] at each of the 2 audio steps
    assert guided.metadata[0]["audio_video_guidance_scale"] == 2.0
    assert not np.allclose(guided.audio, pipe(**get_dummy_inputs()).audio)


def test_generator_list_equals_clips_one_by_one(pipe):
    prompts, seeds = ["a red ball bounces", "thunder at night"], [1, 2, 3, 4]
    batched = pipe(**get_dummy_inputs(prompt=prompts, num_videos_per_prompt=2, generator=[torch.Generator().manual_seed(s) for s in seeds]))
    assert batched.frames.shape == (4, 12, 64, 64, 3) and batched.audio.shape == (4, 1, 8000)
    assert [(m["prompt"], m["audio_prompt"], m["seed"]) for m in batched.metadata] == [
        (prompt, prompt, seed) for prompt, seed in zip(np.repeat(prompts, 2), seeds)
    ]
    for index, (prompt, seed) in enumerate(zip(np.repeat(prompts, 2), seeds)):
        single = pipe(**get_dummy_inputs(prompt=str(prompt), seed=seed))
        # the upsampler's bf16 autocast turns the videos' float32 rounding (1e-6) into up to one bf16 step
        np.testing.assert_allclose(batched.frames[index], single.frames[0], atol=BF16)
        np.testing.assert_allclose(batched.audio[index], single.audio[0], atol=1e-5)


def test_same_seed_same_clip_other_seed_other_clip(pipe):
    first, again, other = (pipe(**get_dummy_inputs(seed=seed)) for seed in (0, 0, 1))
    np.testing.assert_array_equal(first.frames, again.frames)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert np.abs(first.frames - other.frames).max() > 1e-3 and np.abs(first.audio - other.audio).max() > 1e-3


def test_output_types_and_tuple(pipe):
    array = pipe(**get_dummy_inputs())
    pt = pipe(**get_dummy_inputs(output_type="pt"))
    assert pt.frames.shape == (1, 12, 3, 64, 64) and torch.is_tensor(pt.audio)
    np.testing.assert_allclose(pt.frames.permute(0, 1, 3, 4, 2).numpy(), array.frames, atol=1e-6)
    pil = pipe(**get_dummy_inputs(output_type="pil"))
    assert len(pil.frames[0]) == 12 and pil.frames[0][0].size == (64, 64) and isinstance(pil.audio, np.ndarray)
    frames, audio = pipe(**get_dummy_inputs(return_dict=False))
    np.testing.assert_array_equal(frames, array.frames)
    np.testing.assert_array_equal(audio, array.audio)


def test_conditions_prepared_once_per_call_give_the_clip_of_per_step_preparation(pipe):
    """Issue 47: each transformer's text (and the audio model's video) is prepared once per call, every step's forward
    reads the same conditions, and the clip is the one of forwards that prepare their own at each step (the path before
    the change), to the bit. Audio video guidance on: three audio branches."""
    seen = {"transformer": [], "audio_transformer": []}
    hooks = [getattr(pipe, name).register_forward_pre_hook(lambda module, args, kwargs, name=name: seen[name].append(kwargs["conditions"]),
                                                           with_kwargs=True) for name in seen]  # fmt: skip
    inputs = dict(num_inference_steps=3, audio_video_guidance_scale=2.0)
    try:
        per_call = pipe(**get_dummy_inputs(**inputs))
        with conditions_per_step(pipe.transformer, pipe.audio_transformer):
            per_step = pipe(**get_dummy_inputs(**inputs))
    finally:
        for hook in hooks:
            hook.remove()
    for name, conditions in seen.items():  # 3 steps with the call's conditions, then 3 that prepare their own
        assert conditions[0] is not None and conditions[:3] == [conditions[0]] * 3 and conditions[3:] == [None] * 3, name
    np.testing.assert_array_equal(per_call.frames, per_step.frames)
    np.testing.assert_array_equal(per_call.audio, per_step.audio)


def test_callback_runs_in_the_video_stage(pipe):
    steps = []

    def callback(pipeline, step, timestep, callback_kwargs):
        steps.append((step, tuple(callback_kwargs["latents"].shape)))
        return {}

    pipe(**get_dummy_inputs(num_inference_steps=3, audio_num_inference_steps=2), callback_on_step_end=callback)
    assert steps == [(0, (1, 4, 3, 4, 4)), (1, (1, 4, 3, 4, 4)), (2, (1, 4, 3, 4, 4))]


def test_one_progress_bar_per_stage():
    pipe = avgen_pipeline()
    log = io.StringIO()
    pipe.set_progress_bar_config(file=log)
    pipe(**get_dummy_inputs())
    pipe(**get_dummy_inputs(upsample=False))
    text = log.getvalue()
    for desc in ("1/3 video", "2/3 upsample", "3/3 audio", "1/2 video", "2/2 audio"):
        assert desc in text


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(prompt=None), "pass prompt"),
        (dict(fps=20), "fps must be one of"),
        (dict(duration=-1.0), "duration must be a positive"),
        (dict(height=48), "height=48 exceeds 32"),
        (dict(output_type="latent"), "output_type must be one of"),
        (dict(generator=[torch.Generator()] * 2), "got 2 generators for 1 videos"),
        (dict(callback_on_step_end_tensor_inputs=["velocity"]), "callback_on_step_end_tensor_inputs"),
        # the audio's arguments fail before the video is generated
        (dict(audio_num_inference_steps=1), "num_inference_steps must be an integer >= 2"),
        (dict(audio_prompt=["rain", "wind"]), "audio_prompt must be a string or a list of 1 strings"),
        (dict(audio_negative_prompt=3), "audio_negative_prompt must be a string"),
        (dict(audio_guidance_scale=float("inf")), "guidance_scale must be a finite number"),
        (dict(audio_video_guidance_scale=0.0), "video_guidance_scale must be a finite number >= 1"),
    ],
)
def test_bad_inputs_raise_before_any_model_runs(pipe, monkeypatch, overrides, message):
    for name in MODELS:
        monkeypatch.setattr(getattr(pipe, name), "forward", lambda *a, **k: pytest.fail("a model ran before the checks"))
    with pytest.raises(ValueError, match=message):
        pipe(**get_dummy_inputs(**overrides))


def test_save_writes_the_clip_with_sound_and_provenance(pipe, tmp_path):
    output = pipe(**get_dummy_inputs(seed=7, audio_prompt="heavy rain"))
    decoded = read_video(output.save(tmp_path / "out.mp4"))
    assert decoded.frames.shape == (12, 64, 64, 3) and decoded.fps == 24
    assert decoded.audio.shape == (1, 8000) and decoded.sample_rate == SAMPLE_RATE  # 0.5 s exactly
    meta = decoded.metadata
    assert (meta["generator"], meta["pipeline"], meta["model_version"]) == ("avgen", "AVGenPipeline", "0.1.0")
    assert (meta["prompt"], meta["audio_prompt"], meta["seed"]) == ("a red ball bounces", "heavy rain", "7")
    assert meta["precision"] == inference_precision("cpu")  # the upsampler's bf16/fp32 choice


def test_save_pretrained_from_pretrained_round_trip(pipe, tmp_path, monkeypatch):
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == "AVGenPipeline"
    assert index["upsampler"] == ["avgen.models.upsampler", "SpatialUpsampler"]
    assert {"tokenizer", "scheduler", *MODELS} <= index.keys()
    weights = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix not in (".json", ".txt", ".md")]
    assert {p.parent.name for p in weights} == set(MODELS) and all(p.suffix == ".safetensors" for p in weights)

    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("from_pretrained must not unpickle"))
    loaded = AVGenPipeline.from_pretrained(tmp_path)
    monkeypatch.undo()
    loaded.set_progress_bar_config(disable=True)
    for name in MODELS:
        saved, read = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert all(torch.equal(saved[key], read[key]) for key in saved), name
    expected, result = pipe(**get_dummy_inputs()), loaded(**get_dummy_inputs())
    # equal weights; unaligned safetensors buffers may change CPU summation order (test_text_to_video.py),
    # and the upsampler's bf16 autocast turns that float32 rounding into up to one bf16 step
    np.testing.assert_allclose(result.frames, expected.frames, atol=BF16)
    np.testing.assert_allclose(result.audio, expected.audio, atol=1e-5)


def test_from_pretrained_without_a_path_loads_the_default_weights(pipe, tmp_path, monkeypatch):
    monkeypatch.setattr(text_to_audio_video, "DEFAULT_WEIGHTS", tmp_path / "tiny")
    with pytest.raises(FileNotFoundError, match="not trained yet.*make weights"):
        AVGenPipeline.from_pretrained()
    pipe.save_pretrained(tmp_path / "tiny")
    loaded = AVGenPipeline.from_pretrained()
    assert torch.equal(loaded.transformer.proj_out.weight, pipe.transformer.proj_out.weight)


def test_half_precision_folders_load_in_float32_unless_a_dtype_is_asked(tmp_path):
    """The shipped weights are fp16; diffusers' models and transformers' text encoders alike come up in
    float32 (CPUs emulate fp16, T5 overflows in it), and an explicit dtype is still honoured."""
    avgen_pipeline().to(torch.float16).save_pretrained(tmp_path)
    loaded = AVGenPipeline.from_pretrained(tmp_path)
    dtypes = {name: module.dtype for name, module in loaded.components.items() if isinstance(module, torch.nn.Module)}
    assert set(dtypes.values()) == {torch.float32}, dtypes
    assert AVGenPipeline.from_pretrained(tmp_path, dtype=torch.bfloat16).text_encoder.dtype == torch.bfloat16
