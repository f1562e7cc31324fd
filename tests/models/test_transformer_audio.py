from fractions import Fraction
from pathlib import Path

import pytest
import torch

from avgen.long_form import multidiffusion_velocity, plan_windows, triangle_weights
from avgen.models.autoencoder_audio import AudioAutoencoder
from avgen.models.transformer_audio import AudioTransformer

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
# 24 fps at 16 kHz with hop 320: 50 latent steps per second, a frame lasts 2.08 steps


def get_dummy_transformer(**overrides):
    config = dict(in_channels=4, num_layers=1, dim=32, ffn_dim=64, num_attention_heads=2, text_dim=12, video_dim=6, max_positions=40, timestep_embedding_dim=16)
    config.update(overrides)
    torch.manual_seed(0)
    return AudioTransformer(**config)


def get_dummy_inputs(batch=2, steps=25, frames=12):
    generator = torch.Generator().manual_seed(1)
    mask = torch.ones(batch, 5, dtype=torch.long)
    mask[-1, 3:] = 0  # the last prompt is 3 tokens long
    return dict(
        hidden_states=torch.randn(batch, 4, steps, generator=generator),  # 0.5 s of latents
        timestep=torch.rand(batch, generator=generator),
        encoder_hidden_states=torch.randn(batch, 5, 12, generator=generator),
        encoder_attention_mask=mask,
        video_features=torch.randn(batch, frames, 6, generator=generator),  # 0.5 s at 24 fps
        fps=24,
    )


def randomize_zero_initialized(model, only=None):
    """Open the adaLN-zero gates and the output projection (or only the named parameters)."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not parameter.any() and (only is None or name in only):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model


def test_output_shape_and_zero_init():
    model = get_dummy_transformer()
    velocity = model(**get_dummy_inputs()).sample
    assert velocity.shape == (2, 4, 25)
    assert not velocity.any()  # adaLN-zero: a fresh model predicts zero velocity


def test_gradient_flows_to_every_parameter():
    model = randomize_zero_initialized(get_dummy_transformer())
    inputs = get_dummy_inputs()
    video_features = inputs["video_features"].requires_grad_()
    known = dict(known_latents=torch.randn(2, 4, 25), known_mask=(torch.arange(25) < 10).float().expand(2, 1, 25))
    loss = model(**inputs, **known).sample.square().mean()
    loss = loss + model(**dict(inputs, video_features=None)).sample.square().mean()  # the null video path
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.any(), name
    assert video_features.grad.any()  # the video encoder can be trained through the audio loss


def test_frame_indices_are_the_frames_at_step_centres():
    model = get_dummy_transformer()
    for fps in (8, 12, 16, 24, 25, 30):
        frames = 2 * fps  # a 2 s clip: 100 steps
        indices = model.video_frame_indices(100, frames, fps)
        expected = [int(Fraction(2 * step + 1, 100) * fps) for step in range(100)]  # floor(centre * fps)
        assert indices.tolist() == expected
        # a window starting at step 30 gathers the same frames as the whole clip does there
        assert model.video_frame_indices(40, frames, fps, audio_step_offset=30).tolist() == expected[30:70]
    with pytest.raises(ValueError, match="outside the 25 steps"):
        model.video_frame_indices(26, 12, 24)


@torch.no_grad()
def test_a_video_spike_at_frame_k_moves_exactly_the_steps_inside_frame_k():
    """Fresh blocks (closed self-attention gate) keep tokens independent; only the output projection is
    opened. A spike in the features of frame k must change exactly the steps whose centres fall in frame k,
    computed here from first principles: centre of step j = (j + 0.5) * 320 / 16000 s, frame k = [k, k + 1) / 24 s."""
    model = randomize_zero_initialized(get_dummy_transformer(), only={"proj_out.weight", "proj_out.bias"})
    inputs = get_dummy_inputs(batch=1)
    inputs["video_features"].zero_()
    reference = model(**inputs).sample
    for frame in (0, 5, 11):
        spiked = inputs["video_features"].clone()
        spiked[0, frame] = 10.0
        changed = (model(**dict(inputs, video_features=spiked)).sample - reference).abs().amax(dim=1)[0] > 1e-6  # (T,)
        expected = [frame <= (step + 0.5) * 320 / 16000 * 24 < frame + 1 for step in range(25)]
        assert changed.tolist() == expected and any(expected)


@torch.no_grad()
def test_per_sample_fps_and_null_video():
    model = randomize_zero_initialized(get_dummy_transformer())
    inputs = get_dummy_inputs()
    inputs["video_features"] = torch.randn(2, 16, 6)  # 16 frames: 0.67 s at 24 fps, 1 s at 16 fps
    mixed = model(**dict(inputs, fps=torch.tensor([24, 16]))).sample
    torch.testing.assert_close(mixed[:1], model(**dict(inputs, fps=24)).sample[:1])
    torch.testing.assert_close(mixed[1:], model(**dict(inputs, fps=16)).sample[1:])
    null = model(**dict(inputs, video_features=None)).sample
    assert not torch.allclose(null, mixed)
    replaced = inputs["video_features"].clone()
    replaced[:] = model.null_video_features  # CFG dropout in feature space is the same as passing None
    torch.testing.assert_close(model(**dict(inputs, video_features=replaced)).sample, null)


@torch.no_grad()
def test_masked_conditioning():
    model = randomize_zero_initialized(get_dummy_transformer())
    inputs = get_dummy_inputs()
    generate = model(**inputs).sample
    known_latents = torch.randn(2, 4, 25)
    none_known = model(**inputs, known_latents=known_latents, known_mask=torch.zeros(2, 1, 25)).sample
    torch.testing.assert_close(none_known, generate)  # mask 0 everywhere = plain generation
    for name, mask in [("extend forward", torch.arange(25) < 10), ("extend backward", torch.arange(25) >= 15), ("infill", (torch.arange(25) < 5) | (torch.arange(25) >= 20))]:
        velocity = model(**inputs, known_latents=known_latents, known_mask=mask.float().expand(2, 1, 25)).sample
        assert velocity.shape == (2, 4, 25) and not torch.allclose(velocity, generate), name
    with pytest.raises(ValueError, match="together"):
        model(**inputs, known_latents=known_latents)
    with pytest.raises(ValueError, match="known_mask"):
        model(**inputs, known_latents=known_latents, known_mask=torch.zeros(2, 25))


def test_invalid_inputs_raise():
    model = get_dummy_transformer()
    inputs = get_dummy_inputs()
    with pytest.raises(ValueError, match="unmasked text token"):
        model(**dict(inputs, encoder_attention_mask=torch.zeros(2, 5)))
    with pytest.raises(ValueError, match="exceed max_positions"):
        model(**dict(inputs, hidden_states=torch.zeros(2, 4, 41)))
    with pytest.raises(ValueError, match="fps is needed"):
        model(**dict(inputs, fps=None))
    with pytest.raises(ValueError, match="fps must be one of"):
        model(**dict(inputs, fps=20))
    with pytest.raises(ValueError, match=r"video_features must be \(B=2, F, 6\)"):
        model(**dict(inputs, video_features=torch.zeros(2, 12, 7)))


@torch.no_grad()
def test_bf16_autocast_forward():
    model = randomize_zero_initialized(get_dummy_transformer())
    inputs = get_dummy_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        velocity = model(**inputs).sample
    assert velocity.dtype == torch.bfloat16 and torch.isfinite(velocity).all()
    torch.testing.assert_close(velocity.float(), model(**inputs).sample, atol=0.05, rtol=0.05)


def test_gradient_checkpointing_gives_same_gradients():
    gradients = []
    for checkpointing in (False, True):
        model = randomize_zero_initialized(get_dummy_transformer(num_layers=2))
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(**get_dummy_inputs()).sample.square().mean().backward()
        gradients.append([p.grad for p in model.parameters()])
    for plain, checkpointed in zip(*gradients):
        torch.testing.assert_close(plain, checkpointed)


@torch.no_grad()
def test_save_and_load_safetensors(tmp_path):
    model = randomize_zero_initialized(get_dummy_transformer())
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = AudioTransformer.from_pretrained(tmp_path, use_safetensors=True)
    inputs = get_dummy_inputs()
    torch.testing.assert_close(loaded(**inputs).sample, model(**inputs).sample)


def test_presets():
    vae = AudioAutoencoder.load_config(PIPELINES / "tiny" / "audio_vae")
    tiny = AudioTransformer.load_config(PIPELINES / "tiny" / "audio_transformer")
    assert (tiny["in_channels"], tiny["sample_rate"], tiny["hop_length"]) == (vae["latent_channels"], vae["sample_rate"], vae["hop_length"])
    # 5 s windows, the length of the v2a task's training clips; longer audio is sampled by multi-diffusion
    from avgen.training.tasks import VideoToAudioOptions

    assert tiny["max_positions"] * vae["hop_length"] == 5 * vae["sample_rate"]
    assert {seconds for seconds, _ in VideoToAudioOptions().formats} == {5}
    config = AudioTransformer.load_config(PIPELINES / "moviegen" / "audio_transformer")
    with torch.device("meta"):
        model = AudioTransformer.from_config(config)
    assert model.config.num_layers == 36 and model.config.sample_rate / model.config.hop_length == 25  # Movie Gen Audio
    assert 11e9 < sum(parameter.numel() for parameter in model.parameters()) < 14e9  # "13B"


# --- long form (avgen.long_form) -----------------------------------------------------------------------


@pytest.mark.parametrize("total, window, overlap", [(10, 16, 4), (16, 16, 4), (17, 16, 4), (100, 16, 4), (3000, 800, 100)])
def test_plan_windows_cover_with_bounded_size_and_enough_overlap(total, window, overlap):
    windows = plan_windows(total, window, overlap)
    assert windows[0].start == 0 and windows[-1].stop == total
    assert all(w.stop - w.start == min(window, total) for w in windows)
    assert all(a.stop - b.start >= overlap for a, b in zip(windows, windows[1:]))


def test_sixty_seconds_plan_is_windows_of_bounded_size():
    steps = 60 * 50  # 60 s at 50 latent steps per second
    windows = plan_windows(steps, window=800, overlap=100)
    assert max(w.stop - w.start for w in windows) == 800 and len(windows) == 5


def test_weights_sum_to_one_everywhere():
    x = torch.zeros(1, 2, 100)
    windows = plan_windows(100, 16, 4)
    torch.testing.assert_close(multidiffusion_velocity(lambda x, window: torch.ones_like(x), x, windows), torch.ones_like(x))
    assert (triangle_weights(5) == torch.tensor([1.0, 2, 3, 2, 1])).all()


def test_windowed_prediction_of_a_position_independent_model_equals_the_unwindowed_one():
    torch.manual_seed(0)
    mix = torch.nn.Conv1d(3, 3, kernel_size=1)  # acts on each step alone
    x = torch.randn(2, 3, 100)
    with torch.no_grad():
        whole = mix(x)
        windowed = multidiffusion_velocity(lambda x, window: mix(x), x, plan_windows(100, 16, 4))
    torch.testing.assert_close(windowed, whole)


@torch.no_grad()
def test_windowed_transformer_sees_the_right_frames():
    """Each window gathers the video frames of its own steps (audio_step_offset = window.start): with
    self-attention closed (fresh blocks) the model is per-step up to positions, so windows whose positions
    are all equal give the unwindowed result exactly."""
    model = randomize_zero_initialized(get_dummy_transformer(max_positions=50), only={"proj_out.weight", "proj_out.bias"})
    model.pos_embed.zero_()
    inputs = get_dummy_inputs(steps=50, frames=24)  # 1 s
    whole = model(**inputs).sample
    x = inputs.pop("hidden_states")
    windowed = multidiffusion_velocity(
        lambda x, window: model(x, **inputs, audio_step_offset=window.start).sample, x, plan_windows(50, 16, 4)
    )
    torch.testing.assert_close(windowed, whole)


@torch.no_grad()
@pytest.mark.parametrize("video", ["features", "null"])
def test_conditions_prepared_once_give_the_per_step_velocity_exactly(video):
    """Issue 47: the text's projection and every block's cross-attention keys and values, prepared once per call,
    and each window's video (kept at its first step) give bit for bit what each forward computes for itself, at
    every step and window of a windowed call, with known audio too."""
    model = randomize_zero_initialized(get_dummy_transformer(num_layers=2, max_positions=50))
    inputs = get_dummy_inputs(steps=50, frames=24)  # 1 s, sampled in windows of 16 steps
    if video == "null":
        inputs["video_features"] = None
    conditions = model.prepare_conditions(inputs["encoder_hidden_states"], inputs["encoder_attention_mask"], inputs["video_features"], 24)
    x = inputs.pop("hidden_states")
    known = dict(known_latents=torch.randn(2, 4, 50), known_mask=(torch.arange(50) < 20).float().expand(2, 1, 50))
    windows = plan_windows(50, 16, 4)
    for t in (0.1, 0.7):
        def velocity(prepared):
            def window_velocity(x, window):
                text_and_video = dict(encoder_hidden_states=None, encoder_attention_mask=None, video_features=None, fps=None) if prepared else {}
                window_known = {name: value[..., window] for name, value in known.items()}
                return model(x, **dict(inputs, timestep=t, **text_and_video), **window_known, audio_step_offset=window.start,
                             conditions=conditions if prepared else None).sample
            return multidiffusion_velocity(window_velocity, x, windows)

        assert torch.equal(velocity(prepared=True), velocity(prepared=False)), t
    assert len(conditions.memo) == len({(w.stop - w.start, w.start) for w in windows})  # one video conditioning per window
    with pytest.raises(ValueError, match="batch of 2"):
        model(x[:1, :, :16], 0.5, None, conditions=conditions)
