from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from avgen.clock import AVClock
from avgen.models import TemporalAutoencoder, VideoTransformer, flops_per_token

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def get_dummy_transformer(**overrides):
    config = dict(
        in_channels=4,
        num_layers=1,
        dim=32,
        ffn_dim=64,
        num_attention_heads=2,
        text_dim=12,
        pos_embed_size=(4, 3, 3),
        timestep_embedding_dim=16,
    )
    config.update(overrides)
    torch.manual_seed(0)
    return VideoTransformer(**config)


def get_dummy_inputs(batch=2, channels=4):
    generator = torch.Generator().manual_seed(1)
    mask = torch.ones(batch, 5, dtype=torch.long)
    mask[1, 3:] = 0  # the second prompt is 3 tokens long
    return dict(
        hidden_states=torch.randn(batch, channels, 3, 4, 6, generator=generator),  # 3 x 2 x 3 tokens
        encoder_hidden_states=torch.randn(batch, 5, 12, generator=generator),
        timestep=torch.rand(batch, generator=generator),
        fps=torch.tensor([24.0, 16.0])[:batch],
        encoder_attention_mask=mask,
    )


def randomize_zero_initialized(model):
    """Open the adaLN-zero gates and the output projection so every path carries signal."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model


def test_output_shape_and_zero_init():
    model = get_dummy_transformer()
    inputs = get_dummy_inputs()
    velocity = model(**inputs).sample
    assert velocity.shape == (2, 4, 3, 4, 6)
    assert not velocity.any()  # adaLN-zero: a fresh model predicts zero velocity
    assert model(**inputs, return_dict=False)[0].shape == (2, 4, 3, 4, 6)


def test_gradient_flows_to_every_parameter():
    model = randomize_zero_initialized(get_dummy_transformer())
    model(**get_dummy_inputs()).sample.square().mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.any(), name


def test_gradient_checkpointing_gives_same_gradients():
    inputs = get_dummy_inputs()
    gradients = []
    for checkpointing in (False, True):
        model = randomize_zero_initialized(get_dummy_transformer(num_layers=2))
        if checkpointing:
            model.enable_gradient_checkpointing()
        model(**inputs).sample.square().mean().backward()
        gradients.append([p.grad for p in model.parameters()])
    for plain, checkpointed in zip(*gradients):
        torch.testing.assert_close(plain, checkpointed)


@torch.no_grad()
def test_conditioning_and_text_mask():
    model = randomize_zero_initialized(get_dummy_transformer())
    inputs = get_dummy_inputs()
    velocity = model(**inputs).sample
    padded = dict(inputs, encoder_hidden_states=inputs["encoder_hidden_states"].clone())
    padded["encoder_hidden_states"][1, 3:] = 100.0  # padding is never attended to
    torch.testing.assert_close(model(**padded).sample, velocity)
    for name, value in [
        ("timestep", inputs["timestep"] + 0.1),
        ("fps", 12),
        ("encoder_hidden_states", -inputs["encoder_hidden_states"]),
    ]:
        assert not torch.allclose(model(**dict(inputs, **{name: value})).sample, velocity), name
    # a scalar time and int fps broadcast over the batch
    scalar = model(**dict(inputs, timestep=0.5, fps=24)).sample
    torch.testing.assert_close(
        scalar, model(**dict(inputs, timestep=torch.full((2,), 0.5), fps=torch.full((2,), 24))).sample
    )


def test_invalid_inputs_raise():
    model = get_dummy_transformer()
    inputs = get_dummy_inputs()
    with pytest.raises(ValueError, match="unmasked text token"):
        model(**dict(inputs, encoder_attention_mask=torch.zeros(2, 5)))
    with pytest.raises(ValueError, match="divisible by patch_size"):
        model(**dict(inputs, hidden_states=torch.zeros(2, 4, 3, 5, 6)))
    with pytest.raises(ValueError, match="exceed pos_embed_size"):
        model(**dict(inputs, hidden_states=torch.zeros(2, 4, 5, 4, 6)))


@torch.no_grad()
def test_bf16_autocast_forward():
    model = randomize_zero_initialized(get_dummy_transformer())
    inputs = get_dummy_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        velocity = model(**inputs).sample
    assert velocity.dtype == torch.bfloat16 and torch.isfinite(velocity).all()
    torch.testing.assert_close(velocity.float(), model(**inputs).sample, atol=0.05, rtol=0.05)


@torch.no_grad()
def test_editing_model_from_extra_zero_input_channels():
    """The editing model: source latents concatenated on the channel axis, new weights zero, so it starts
    out as the text-to-video model it was built from."""
    model = randomize_zero_initialized(get_dummy_transformer())
    editing = get_dummy_transformer(in_channels=8, out_channels=4)
    state = model.state_dict()
    weight = state["patch_embed.weight"]  # (D, 4, 1, 2, 2)
    state["patch_embed.weight"] = torch.cat([weight, torch.zeros_like(weight)], dim=1)  # (D, 8, 1, 2, 2)
    editing.load_state_dict(state)
    inputs = get_dummy_inputs()
    source = torch.randn_like(inputs["hidden_states"])
    edited = editing(**dict(inputs, hidden_states=torch.cat([inputs["hidden_states"], source], dim=1))).sample
    torch.testing.assert_close(edited, model(**inputs).sample)


@torch.no_grad()
def test_save_and_load_safetensors_without_unpickling(tmp_path, monkeypatch):
    model = randomize_zero_initialized(get_dummy_transformer())
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("from_pretrained called torch.load")

    monkeypatch.setattr(torch, "load", no_unpickling)
    loaded = VideoTransformer.from_pretrained(tmp_path, use_safetensors=True)
    assert loaded.config.out_channels == 4
    inputs = get_dummy_inputs()
    torch.testing.assert_close(loaded(**inputs).sample, model(**inputs).sample)


@torch.no_grad()
def test_flops_per_token_matches_counted_flops():
    model = randomize_zero_initialized(get_dummy_transformer(num_layers=2))
    inputs = get_dummy_inputs()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:  # math SDPA = counted matmuls
        model(**inputs)
    num_tokens = 3 * 2 * 3
    expected = 2 * num_tokens * flops_per_token(model.config, num_tokens, num_text_tokens=5)
    assert counter.get_total_flops() == pytest.approx(expected, rel=1e-6)
    # a step given the call's conditions: the text projection and cross-attention keys/values are not redone
    conditions = model.prepare_conditions(inputs["encoder_hidden_states"], inputs["encoder_attention_mask"])
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(**inputs, conditions=conditions)
    expected = 2 * num_tokens * flops_per_token(model.config, num_tokens, num_text_tokens=5, prepared_text=True)
    assert counter.get_total_flops() == pytest.approx(expected, rel=1e-6)


def expected_parameters(config):
    """Parameter count of the architecture, written out independently of the model code."""
    dim, ffn, text_dim, freq = config["dim"], config["ffn_dim"], config["text_dim"], config["timestep_embedding_dim"]
    patch = config["patch_size"][0] * config["patch_size"][1] * config["patch_size"][2]
    block = 4 * dim * dim + 4 * dim * dim + 3 * dim * ffn + dim + 6 * dim  # attentions, SwiGLU, norm2, table
    embeddings = config["in_channels"] * patch * dim + dim + sum(config["pos_embed_size"]) * dim + text_dim * dim + dim
    conditioning = 2 * (freq * dim + dim + dim * dim + dim) + dim * 6 * dim + 6 * dim  # time, fps, modulation
    output = 2 * dim + dim * patch * config["out_channels"] + patch * config["out_channels"]
    return config["num_layers"] * block + embeddings + conditioning + output


@pytest.mark.parametrize("preset, nominal", [("moviegen", 1e9), ("moviegen-30b", 30e9)])
def test_paper_configs_on_meta_device(preset, nominal):
    config = VideoTransformer.load_config(PIPELINES / preset / "transformer")
    with torch.device("meta"):
        model = VideoTransformer.from_config(config)
    assert all(parameter.is_meta for parameter in model.parameters())  # nothing allocated
    count = sum(parameter.numel() for parameter in model.parameters())
    assert count == expected_parameters(model.config)
    assert 0.9 * nominal < count < 1.05 * nominal
    frames, height, width = model.config.pos_embed_size
    assert frames * height * width == 32 * 48 * 48  # 16 s at 16 fps, 768 px, 8x TAE: Movie Gen's 73K tokens


def test_tiny_presets_fit_together():
    vae = TemporalAutoencoder.from_config(TemporalAutoencoder.load_config(PIPELINES / "tiny" / "vae"))
    transformer_config = VideoTransformer.load_config(PIPELINES / "tiny" / "transformer")
    assert transformer_config["in_channels"] == transformer_config["out_channels"] == vae.config.latent_channels
    latent_size = 64 // vae.spatial_compression_ratio
    patch_frames, patch_height, patch_width = transformer_config["patch_size"]
    for seconds, fps in [(10, 24), (16, 16)]:  # both Movie Gen clip options
        clock = AVClock(fps=fps, sample_rate=16000, video_time_compression=vae.temporal_compression_ratio)
        latent_frames = clock.video_latent_frames(seconds * fps)
        assert latent_frames // patch_frames <= transformer_config["pos_embed_size"][0]
    assert transformer_config["pos_embed_size"][1:] == [latent_size // patch_height, latent_size // patch_width]


def test_frame_offset_places_a_window_at_its_frame_positions():
    """A training window cut from frame 2 of a clip gets the positions of frames 2.. (the curriculum trains
    every frame position that way); an offset past the learned positions is refused."""
    model = get_dummy_transformer(pos_embed_size=(6, 2, 2)).eval()
    torch.nn.init.normal_(model.proj_out.weight)  # adaLN-zero: the output is zero at initialisation
    x, text = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 3, 12)
    with torch.no_grad():
        at_two = model(x, text, 0.5, 24, frame_offset=2).sample
        at_zero = model(x, text, 0.5, 24).sample
        model.pos_embed_frames.data[2:4] = model.pos_embed_frames.data[0:2]
        moved = model(x, text, 0.5, 24, frame_offset=2).sample
    assert not torch.allclose(at_two, at_zero)
    torch.testing.assert_close(moved, at_zero)  # the offset only selects which frame positions are added
    with pytest.raises(ValueError, match="from frame 5"):
        model(x, text, 0.5, 24, frame_offset=5)


def test_text_standardization_and_pooled_text_keep_a_trained_model_s_function():
    """An older model loads into the text_standardization + pooled_text shape (its new keys optional, at
    their neutral values); calibrate_text changes text_proj's parametrisation, not the output."""
    old = randomize_zero_initialized(get_dummy_transformer())
    new = get_dummy_transformer(text_standardization=True, pooled_text=True)
    missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
    assert set(missing) == new.optional_init_keys() == {"text_mean", "text_scale", "pooled_text_proj.weight", "pooled_text_proj.bias"}
    assert not unexpected
    inputs = get_dummy_inputs()
    # a text encoder like the shipped one: a large offset shared by every token, small per-token content
    generator = torch.Generator().manual_seed(5)
    inputs["encoder_hidden_states"] = 0.2 * inputs["encoder_hidden_states"] + 3 * torch.randn(12, generator=generator)
    with torch.no_grad():
        expected = old(**inputs).sample
        tokens = inputs["encoder_hidden_states"][inputs["encoder_attention_mask"].bool()]  # (T, 12)
        new.calibrate_text(tokens)
        torch.testing.assert_close(new(**inputs).sample, expected, atol=1e-5, rtol=1e-4)
        standardized = (tokens - new.text_mean) * new.text_scale
        torch.testing.assert_close(standardized.mean(0), torch.zeros(12), atol=1e-5, rtol=0)
        torch.testing.assert_close(standardized.std(0), torch.ones(12), atol=1e-4, rtol=0)
        new.calibrate_text(tokens * 2 + 1)  # again: composes
        torch.testing.assert_close(new(**inputs).sample, expected, atol=1e-5, rtol=1e-4)
        # the pooled path, once open, makes the output depend on the prompt's padding-free mean
        new.pooled_text_proj.weight.fill_(0.05)
        changed = new(**inputs).sample
        assert not torch.allclose(changed, expected, atol=1e-4)
        padded = dict(inputs, encoder_hidden_states=inputs["encoder_hidden_states"].clone())
        padded["encoder_hidden_states"][1, 3:] = 100.0  # behind the mask
        torch.testing.assert_close(new(**padded).sample, changed)
    with pytest.raises(ValueError, match="text_standardization=True"):
        old.calibrate_text(inputs["encoder_hidden_states"][0])


@torch.no_grad()
def test_conditions_prepared_once_give_the_per_step_velocity_exactly():
    """Issue 47: the text's projection, pooled text and every block's cross-attention keys and values prepared once
    (prepare_conditions) give bit for bit what each forward computes for itself, at every step of a call; the
    positions and the fps embedding are kept with the conditions after the first step."""
    model = randomize_zero_initialized(get_dummy_transformer(num_layers=2, text_standardization=True, pooled_text=True))
    inputs = get_dummy_inputs()
    model.calibrate_text(inputs["encoder_hidden_states"][inputs["encoder_attention_mask"].bool()])  # a non-identity standardization
    inputs["fps"] = 24  # a pipeline's fps: one number for the call
    conditions = model.prepare_conditions(inputs["encoder_hidden_states"], inputs["encoder_attention_mask"])
    assert len(conditions.keys_values) == 2 and conditions.keys_values[0][0].shape == (2, 2, 5, 16)  # (B, heads, L, d)
    assert conditions.states.shape == (2, 5, 32) and conditions.pooled.shape == (2, 32)
    for t in (0.0, 0.3, 0.9):  # three steps of one call
        per_step = model(**dict(inputs, timestep=torch.full((2,), t))).sample
        prepared = model(**dict(inputs, timestep=torch.full((2,), t), encoder_hidden_states=None), conditions=conditions).sample
        assert torch.equal(prepared, per_step), t
    assert {key[0] for key in conditions.memo} == {"positions", "fps"}
    with pytest.raises(ValueError, match="prepared for a batch of 2"):
        model(**dict(inputs, hidden_states=inputs["hidden_states"][:1]), conditions=conditions)
