"""VideoToAudioPipeline on tiny random components: shapes and exact lengths, determinism, the video
input forms, errors before compute, save/load, callbacks, long-form windows, known audio."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler

from avgen.clock import AVClock
from avgen.flow_matching import linear_quadratic_sigmas
from avgen.models import AudioAutoencoder, AudioTransformer, VideoFeatureEncoder
from avgen.models.text_encoder import build_text_encoder, byte_tokenizer, tiny_text_encoder_config
from avgen.muxer import read_video, write_video
from avgen.outputs import AVGenOutput
from avgen.pipelines.video_to_audio import VideoToAudioPipeline
from avgen.profiling import conditions_per_step

SAMPLE_RATE, HOP = 16000, 320  # 50 latent steps per second


def get_dummy_components(max_positions=64):
    torch.manual_seed(0)
    audio_vae = AudioAutoencoder(latent_channels=4, dim=16, num_layers=1, scaling_factor=0.5).eval()  # != 1: a missing division shows
    audio_transformer = AudioTransformer(
        in_channels=4, num_layers=1, dim=32, ffn_dim=64, num_attention_heads=2, text_dim=32, video_dim=8,
        max_positions=max_positions, timestep_embedding_dim=16,
    ).eval()  # fmt: skip
    # adaLN-zero makes a fresh model predict velocity 0 whatever its inputs; open it so that text, video,
    # positions and windows change the output (else most tests could not fail)
    with torch.no_grad():
        for parameter in (*audio_transformer.modulation.parameters(), *audio_transformer.proj_out.parameters()):
            parameter.normal_(0, 0.3)
    video_encoder = VideoFeatureEncoder(frame_size=16, block_out_channels=(8, 8), feature_dim=8, norm_num_groups=4).eval()
    text_encoder = build_text_encoder(tiny_text_encoder_config(d_model=32, num_layers=1, num_heads=2, d_ff=64)).eval()
    return dict(
        tokenizer=byte_tokenizer(),
        text_encoder=text_encoder,
        audio_vae=audio_vae,
        audio_transformer=audio_transformer,
        video_encoder=video_encoder,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


def get_pipeline(**overrides):
    pipe = VideoToAudioPipeline(**get_dummy_components(**overrides))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def dummy_frames(num_frames=12, batch=None, seed=0):
    """A white square moving right over random noise, uint8 (F, 32, 32, 3) or (B, F, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, (batch or 1, num_frames, 32, 32, 3), dtype=np.uint8)
    for index in range(num_frames):
        frames[:, index, 10:18, 2 * index : 2 * index + 8] = 255
    return frames if batch else frames[0]


def get_dummy_inputs(seed=0, **overrides):
    inputs = dict(video=dummy_frames(), fps=24, prompt="with rain", num_inference_steps=2, guidance_scale=3.0,
                  generator=torch.Generator().manual_seed(seed), output_type="np")  # fmt: skip
    inputs.update(overrides)
    return inputs


@pytest.fixture(scope="module")
def pipe():
    return get_pipeline()


def test_output_shapes_lengths_and_metadata(pipe):
    frames = dummy_frames()
    output = pipe(**get_dummy_inputs(video=frames))
    assert isinstance(output, AVGenOutput)
    assert output.audio.shape == (1, 1, 8000)  # 12 frames at 24 fps = 0.5 s at 16 kHz
    assert output.audio.dtype == np.float32 and np.abs(output.audio).max() <= 1 and output.audio.std() > 0
    np.testing.assert_array_equal(output.frames, frames[None])  # the input video, untouched
    assert (output.fps, output.sample_rate) == (24, SAMPLE_RATE)
    meta = output.metadata[0]
    assert meta["generator"] == "avgen" and meta["prompt"] == "with rain" and meta["seed"] == "0"
    assert (meta["steps"], meta["guidance"], meta["video_guidance"]) == ("2", "3.0", "1.0") and "avgen_version" in meta


@pytest.mark.parametrize("num_frames, fps", [(7, 25), (5, 8), (10, 30)])
def test_audio_length_and_latent_steps_come_from_the_clock(pipe, num_frames, fps):
    clock = AVClock(fps, SAMPLE_RATE, audio_hop=HOP)
    samples = clock.num_samples(num_frames)  # 4480, 10000, 5333: mostly not a multiple of the hop
    video = dummy_frames(num_frames)
    assert pipe(**get_dummy_inputs(video=video, fps=fps)).audio.shape == (1, 1, samples)
    latents = pipe(**get_dummy_inputs(video=video, fps=fps, output_type="latent"))
    assert latents.audio.shape == (1, 4, clock.audio_latent_steps(samples)) and latents.sample_rate is None


def test_output_type_pt_and_tuple(pipe):
    output = pipe(**get_dummy_inputs(output_type="pt"))
    reference = pipe(**get_dummy_inputs()).audio
    assert torch.is_tensor(output.audio) and output.frames.shape == (1, 12, 3, 32, 32) and output.frames.dtype == torch.float32
    np.testing.assert_allclose(output.audio.numpy(), reference, atol=1e-6)
    (audio,) = pipe(**get_dummy_inputs(return_dict=False))
    np.testing.assert_array_equal(audio, reference)
    # "latent" stops before the VAE: decoding those latents (unscaled) gives the audio
    latents = pipe(**get_dummy_inputs(output_type="latent")).audio
    with torch.no_grad():
        decoded = pipe.audio_vae.decode(latents / pipe.audio_vae.config.scaling_factor, num_samples=8000).sample.clamp(-1, 1)
    np.testing.assert_allclose(decoded.numpy(), reference, atol=1e-6)


def test_determinism_and_generators(pipe):
    first = pipe(**get_dummy_inputs(seed=1)).audio
    np.testing.assert_array_equal(first, pipe(**get_dummy_inputs(seed=1)).audio)
    assert not np.allclose(first, pipe(**get_dummy_inputs(seed=2)).audio)
    # one generator per waveform: waveform n is what a single run with generator n makes
    both = pipe(**get_dummy_inputs(generator=[torch.Generator().manual_seed(s) for s in (2, 1)], num_waveforms_per_prompt=2))
    assert both.audio.shape == (2, 1, 8000) and both.frames.shape == (2, 12, 32, 32, 3)
    np.testing.assert_allclose(both.audio[1], first[0], atol=1e-5)
    assert [m["seed"] for m in both.metadata] == ["2", "1"]


def test_batches_of_videos_and_prompts(pipe):
    videos = dummy_frames(batch=2)
    output = pipe(**get_dummy_inputs(video=videos, prompt=["with rain", "calm piano music"], num_waveforms_per_prompt=2))
    assert output.audio.shape == (4, 1, 8000)
    assert [m["prompt"] for m in output.metadata] == ["with rain", "with rain", "calm piano music", "calm piano music"]
    np.testing.assert_array_equal(output.frames[2], videos[1])
    # one video, several prompts: the video is shared; the text changes the sound
    shared = pipe(**get_dummy_inputs(prompt=["with rain", "calm piano music"])).audio
    assert shared.shape == (2, 1, 8000) and not np.allclose(shared[0], shared[1])


def test_guidance_runs_the_text_and_the_negative_prompt_in_one_batch(pipe, monkeypatch):
    batches, times = [], []
    forward = pipe.audio_transformer.forward

    def spy(*args, **kwargs):
        batches.append(kwargs["hidden_states"].shape[0])
        times.append(kwargs["timestep"].tolist())
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.audio_transformer, "forward", spy)
    guided = pipe(**get_dummy_inputs()).audio
    unguided = pipe(**get_dummy_inputs(guidance_scale=1.0)).audio
    assert batches == [2, 2, 1, 1]
    # the model sees flow time t = 1 - sigma (0 = noise) of the linear-quadratic schedule (avgen.flow_matching)
    expected = [1 - sigma for sigma in linear_quadratic_sigmas(2)]
    np.testing.assert_allclose([step[0] for step in times[2:]], expected, atol=1e-6)
    assert times[0] == [0.0, 0.0]
    assert not np.allclose(guided, unguided)
    assert not np.allclose(guided, pipe(**get_dummy_inputs(negative_prompt="wind")).audio)
    # guidance extrapolates from the negative prompt to the text: nothing to extrapolate when they are equal
    same = pipe(**get_dummy_inputs(negative_prompt="with rain")).audio
    np.testing.assert_allclose(same, pipe(**get_dummy_inputs(guidance_scale=1.0)).audio, atol=1e-5)


def test_video_guidance_adds_a_null_video_branch_combined_as_instructpix2pix(pipe, monkeypatch):
    calls = []
    forward = pipe.audio_transformer.forward

    def spy(*args, **kwargs):
        output = forward(*args, **kwargs)
        calls.append((kwargs, output[0]))
        return output

    monkeypatch.setattr(pipe.audio_transformer, "forward", spy)
    off = pipe(**get_dummy_inputs(video_guidance_scale=1.0)).audio
    np.testing.assert_array_equal(off, pipe(**get_dummy_inputs()).audio)  # 1 is the default: exactly the two branches
    calls.clear()
    guided = pipe(**get_dummy_inputs(video_guidance_scale=2.5)).audio
    assert [kwargs["hidden_states"].shape[0] for kwargs, _ in calls] == [3, 3]
    kwargs, velocity = calls[0]
    features = kwargs["video_features"]  # (3, F, D): [null; video; video]
    null = pipe.audio_transformer.null_video_features
    torch.testing.assert_close(features[0], null.expand_as(features[0]))
    torch.testing.assert_close(features[1], features[2])
    assert not torch.allclose(features[1], features[0])
    text = kwargs["encoder_hidden_states"]  # [negative; negative; prompt]
    torch.testing.assert_close(text[0], text[1])
    assert not torch.allclose(text[1], text[2])
    assert not np.allclose(guided, off)
    # the first step's combination, from its three branches: v_u + 2.5 (v_v - v_u) + 3 (v_f - v_v)
    uncond, video, full = velocity.float().chunk(3)
    combined = uncond + 2.5 * (video - uncond) + 3.0 * (full - video)
    latents = kwargs["hidden_states"][:1].float()
    sigmas = linear_quadratic_sigmas(2)
    expected = latents + (sigmas[1] - sigmas[0]) * -combined  # the scheduler's first Euler step in sigma
    seen = []
    pipe(**get_dummy_inputs(video_guidance_scale=2.5, callback_on_step_end=lambda p, i, t, k: seen.append(k["latents"].clone()) or {}))
    torch.testing.assert_close(seen[0], expected, atol=1e-5, rtol=1e-5)
    # with text guidance off, the form keeps a text scale of 1: the same three branches
    calls.clear()
    pipe(**get_dummy_inputs(guidance_scale=1.0, video_guidance_scale=2.0))
    assert [kwargs["hidden_states"].shape[0] for kwargs, _ in calls] == [3, 3]


def test_video_as_path_array_tensor_and_pil_agree(pipe, tmp_path):
    path = write_video(tmp_path / "clip.mp4", dummy_frames(), 24)
    decoded = read_video(path).frames  # what the file holds after H.264
    from_path = pipe(**get_dummy_inputs(video=str(path), fps=None))
    # a file's frames are returned as the model saw them: decoded and shrunk to the encoder's 16 px one at a time
    shrunk = F.interpolate(torch.from_numpy(decoded).permute(0, 3, 1, 2).float() / 255, size=(16, 16), mode="bilinear", antialias=True)
    np.testing.assert_array_equal(from_path.frames[0], (shrunk.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy())
    assert from_path.fps == 24
    from_array = pipe(**get_dummy_inputs(video=decoded)).audio
    np.testing.assert_array_equal(from_path.audio, from_array)
    tensor = torch.from_numpy(decoded).permute(0, 3, 1, 2)[None].float() / 255  # (1, F, 3, H, W)
    np.testing.assert_allclose(pipe(**get_dummy_inputs(video=tensor)).audio, from_array, atol=1e-5)
    images = [PIL.Image.fromarray(frame) for frame in decoded]
    np.testing.assert_array_equal(pipe(**get_dummy_inputs(video=images)).audio, from_array)
    # the video matters: other frames, other sound
    assert not np.allclose(pipe(**get_dummy_inputs(video=dummy_frames(seed=5)[:, ::-1].copy())).audio, from_array)


def test_use_video_false_gives_the_null_video_text_only_sound(pipe, monkeypatch):
    with_video = pipe(**get_dummy_inputs()).audio
    seen = []
    forward = pipe.audio_transformer.forward

    def spy(*args, **kwargs):
        seen.append(kwargs["video_features"])
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.audio_transformer, "forward", spy)
    text_only = pipe(**get_dummy_inputs(use_video=False)).audio  # with guidance: both branches get the null video
    assert seen == [None, None] and text_only.shape == with_video.shape
    assert not np.allclose(text_only, with_video)
    # the pictures no longer matter, only the length and fps they give
    other = dummy_frames(seed=5)[:, ::-1].copy()
    np.testing.assert_array_equal(pipe(**get_dummy_inputs(video=other, use_video=False)).audio, text_only)


def test_video_features_in_chunks_equal_the_whole_clip(pipe):
    frames = dummy_frames(num_frames=23, batch=2)
    whole = pipe.encode_video(frames, chunk_frames=100)
    assert whole.shape == (2, 23, 8)
    for chunk_frames in (1, 4, 22):
        torch.testing.assert_close(pipe.encode_video(frames, chunk_frames=chunk_frames), whole, atol=1e-5, rtol=1e-5)
    # and the pipeline's resize is the encoder's own (frames at 32x32, the encoder's size is 16)
    video = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 255 * 2 - 1  # (B, 3, F, H, W)
    torch.testing.assert_close(pipe.video_encoder(video), whole, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(video="missing.mp4", fps=None), "no such file"),
        (dict(video=dummy_frames().astype(np.float32)), "must be uint8"),
        (dict(video=dummy_frames()[..., :2]), "must be uint8"),
        (dict(video=torch.zeros(12, 3, 32, 32)), r"\(B, F, 3, H, W\)"),
        (dict(video=torch.full((1, 12, 3, 32, 32), 2.0)), r"in \[0, 1\]"),
        (dict(video=[]), "PIL images"),
        (dict(video=dummy_frames()[:0]), "empty"),
        (dict(fps=None), "fps is required"),
        (dict(fps=23.976), "fps must be one of"),
        (dict(prompt_embeds=torch.zeros(1, 3, 32)), "not both"),
        (dict(negative_prompt="x", negative_prompt_embeds=torch.zeros(1, 3, 32)), "not both"),
        (dict(prompt=None, prompt_embeds=torch.zeros(1, 3, 5)), r"prompt_embeds must be \(B, L, 32\)"),
        (dict(prompt=["a", "b", "c"], video=dummy_frames(batch=2)), "2 videos and 3 prompts"),
        (dict(output_type="pil"), "output_type"),
        (dict(callback_on_step_end_tensor_inputs=["noise"]), "callback_on_step_end_tensor_inputs"),
        (dict(generator=[torch.Generator()] * 3), "3 generators for 1 waveforms"),
        (dict(num_inference_steps=1), "num_inference_steps"),
        (dict(guidance_scale="3"), "guidance_scale must be a finite number"),
        (dict(video_guidance_scale=0.5), "video_guidance_scale must be a finite number >= 1"),
        (dict(video_guidance_scale=float("nan")), "video_guidance_scale must be a finite number >= 1"),
        (dict(video_guidance_scale=2.0, use_video=False), "needs use_video=True"),
        (dict(latents=torch.zeros(1, 4, 24)), r"latents must be \(1, 4, 25\)"),
        (dict(audio=np.zeros(9000, np.float32)), "1..8000 samples"),
        (dict(audio=np.full(800, 1.5, np.float32)), r"in \[-1, 1\]"),
        (dict(audio_mask=np.ones(10)), "without audio"),
        (dict(window_seconds=2.0), "window_seconds"),
        (dict(window_seconds=0.2, overlap_seconds=0.2), "overlap_seconds"),
    ],
)
def test_bad_inputs_raise_before_any_compute(pipe, monkeypatch, overrides, message):
    def refuse(*args, **kwargs):
        raise AssertionError("computed before the inputs were checked")

    for model in (pipe.text_encoder, pipe.video_encoder, pipe.audio_transformer, pipe.audio_vae):
        monkeypatch.setattr(model, "forward", refuse)
    with pytest.raises(ValueError, match=message):
        pipe(**get_dummy_inputs(**overrides))


def test_unreadable_and_unsupported_files(pipe, tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="cannot read"):
        pipe(**get_dummy_inputs(video=garbage, fps=None))
    path = write_video(tmp_path / "clip.mp4", dummy_frames(), 12)
    with pytest.raises(ValueError, match="contradicts the 12 fps"):
        pipe(**get_dummy_inputs(video=path, fps=24))


def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "model")
    files = [path.name for path in (tmp_path / "model").rglob("*") if path.is_file()]
    assert any(name.endswith(".safetensors") for name in files)
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")) for name in files)
    loaded = VideoToAudioPipeline.from_pretrained(tmp_path / "model")
    loaded.set_progress_bar_config(disable=True)
    for name in ("text_encoder", "audio_vae", "audio_transformer", "video_encoder"):
        saved, read = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert saved.keys() == read.keys() and all(torch.equal(saved[key], read[key]) for key in saved), name
    public = lambda config: {key: value for key, value in config.items() if not key.startswith("_")}  # noqa: E731
    assert type(loaded.tokenizer) is type(pipe.tokenizer) and public(loaded.scheduler.config) == public(pipe.scheduler.config)
    # The weights are identical (above); the output only to float rounding, because transformers leaves the
    # text encoder's tensors in the safetensors buffer at addresses that are not 64-byte aligned, and CPU
    # kernels then sum in another order (cloning the tensors makes the output bit-identical).
    np.testing.assert_allclose(loaded(**get_dummy_inputs()).audio, pipe(**get_dummy_inputs()).audio, atol=1e-6, rtol=0)


def test_callback_sees_and_replaces_latents(pipe):
    seen = []

    def callback(pipeline, step, timestep, callback_kwargs):
        seen.append((step, tuple(callback_kwargs["latents"].shape), tuple(callback_kwargs["prompt_embeds"].shape[::2])))
        return {"latents": torch.zeros_like(callback_kwargs["latents"])} if step == 1 else {}

    output = pipe(**get_dummy_inputs(output_type="latent", callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"]))
    assert seen == [(0, (1, 4, 25), (2, 32)), (1, (1, 4, 25), (2, 32))]  # (2, ...): text and negative, guided
    assert not output.audio.any()  # the replacement at the last step is what came out


def test_long_form_windows_stay_bounded_and_see_their_frames(monkeypatch):
    pipe = get_pipeline(max_positions=16)  # 0.32 s windows; the clip has 25 steps
    calls = []
    forward = pipe.audio_transformer.forward

    def spy(*args, **kwargs):
        calls.append((kwargs["hidden_states"].shape[-1], kwargs["audio_step_offset"], kwargs["video_features"].shape[1]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.audio_transformer, "forward", spy)
    output = pipe(**get_dummy_inputs())
    assert output.audio.shape == (1, 1, 8000) and np.isfinite(output.audio).all()
    # windows of 16 steps overlapping by 4 -> [0, 16) and [9, 25), twice (2 steps); the whole clip's 12
    # frames go to each, the transformer gathers a window's frames from its offset
    assert calls == [(16, 0, 12), (16, 9, 12)] * 2
    with pytest.raises(ValueError, match="exceed max_positions"):  # what a single window would do
        forward(torch.zeros(1, 4, 25), 0.5, torch.zeros(1, 3, 32))

    # a long clip (6 s, 300 steps) with 16-step windows: the transformer never sees more than 16 steps
    calls.clear()
    long_output = pipe(**get_dummy_inputs(video=dummy_frames(48), fps=8, guidance_scale=1.0))
    assert long_output.audio.shape == (1, 1, 96000)
    assert max(steps for steps, _, _ in calls) == 16 and len(calls) == 2 * 25


def test_conditions_prepared_once_per_call_give_the_sound_of_per_step_preparation():
    """Issue 47: the text of the three guidance branches and each window's video are prepared once per call (a
    window's video at its first step), and the sound, with windows and known audio, is bit for bit that of forwards
    preparing their own at every step."""
    pipe = get_pipeline(max_positions=16)  # windows [0, 16) and [9, 25)
    seen = []
    hook = pipe.audio_transformer.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["conditions"]), with_kwargs=True)
    given = np.linspace(-0.5, 0.5, 4000, dtype=np.float32)  # the first 0.25 s is known
    inputs = dict(video_guidance_scale=2.0, audio=given, num_inference_steps=3)
    try:
        per_call = pipe(**get_dummy_inputs(**inputs)).audio
    finally:
        hook.remove()
    assert len(seen) == 2 * 3 and all(conditions is seen[0] for conditions in seen)
    assert len(seen[0].memo) == 2  # one projected video per window
    with conditions_per_step(pipe.audio_transformer):
        np.testing.assert_array_equal(pipe(**get_dummy_inputs(**inputs)).audio, per_call)


def test_window_at_least_the_clip_is_the_single_window_path(pipe):
    single = pipe(**get_dummy_inputs()).audio  # max_positions 64 >= 25 steps
    np.testing.assert_array_equal(pipe(**get_dummy_inputs(window_seconds=0.5)).audio, single)  # exactly 25 steps
    windowed = pipe(**get_dummy_inputs(window_seconds=0.2, overlap_seconds=0.04)).audio  # 10-step windows
    assert windowed.shape == single.shape and not np.allclose(windowed, single)


def test_known_audio_is_kept_and_the_rest_generated(pipe):
    rng = np.random.default_rng(0)
    given = np.clip(0.3 * rng.standard_normal(4000), -1, 1).astype(np.float32)  # the first 0.25 s of 0.5 s
    output = pipe(**get_dummy_inputs(audio=given, output_type="latent"))
    # steps 0..11 lie inside the given samples (12 * 320 = 3840 <= 4000); step 12 straddles the end
    vae = pipe.audio_vae
    with torch.no_grad():
        known = vae.encode(F.pad(torch.from_numpy(given), (0, 4000))[None, None]).latent_dist.mode() * vae.config.scaling_factor
    torch.testing.assert_close(output.audio[..., :12], known[..., :12])
    assert not torch.allclose(output.audio[..., 12:], known[..., 12:], atol=1e-2)
    # infilling: a mask with a gap; the steps in the gap are generated, the ones around it kept
    mask = np.ones(8000, np.float32)
    mask[3000:5000] = 0
    given = np.clip(0.3 * rng.standard_normal(8000), -1, 1).astype(np.float32)
    infilled = pipe(**get_dummy_inputs(audio=given, audio_mask=mask, output_type="latent")).audio
    with torch.no_grad():
        known = vae.encode(torch.from_numpy(given * mask)[None, None]).latent_dist.mode() * vae.config.scaling_factor
    kept = [step for step in range(25) if mask[step * 320 : (step + 1) * 320].all()]  # 0..8 and 16..24
    assert kept == [*range(9), *range(16, 25)]
    torch.testing.assert_close(infilled[..., kept], known[..., kept])
    assert not torch.allclose(infilled[..., 9:16], known[..., 9:16], atol=1e-2)
    assert pipe(**get_dummy_inputs(audio=given, audio_mask=mask)).audio.shape == (1, 1, 8000)


def test_output_saves_the_input_video_with_the_new_sound(pipe, tmp_path):
    frames = dummy_frames()
    output = pipe(**get_dummy_inputs(video=frames))
    path = output.save(tmp_path / "out.mp4")
    decoded = read_video(path)
    assert len(decoded.frames) == 12 and decoded.audio.shape == (1, 8000) and decoded.sample_rate == SAMPLE_RATE
    assert decoded.metadata["generator"] == "avgen" and decoded.metadata["prompt"] == "with rain"
    assert Path(path).stat().st_size > 0
