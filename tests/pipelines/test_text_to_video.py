import json

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

import avgen
from avgen.flow_matching import linear_quadratic_sigmas
from avgen.models import TemporalAutoencoder, VideoTransformer
from avgen.models.text_encoder import build_text_encoder, byte_tokenizer, tiny_text_encoder_config
from avgen.outputs import AVGenOutput
from avgen.pipelines import TextToVideoPipeline
from avgen.profiling import conditions_per_step

TEXT_DIM = 32


def get_dummy_components(transformer_class=VideoTransformer, **pipeline_config):
    """8x in space, 4x in time, 4 latent channels; 32x32 frames are 2x2 tokens; 8 latent frames = 32 frames."""
    torch.manual_seed(0)
    vae = TemporalAutoencoder(
        latent_channels=4,
        patch_size=8,
        temporal_patch_size=4,
        dim=16,
        num_layers=1,
        scaling_factor=0.5,  # != 1, so a missing division before decoding shows
    ).eval()
    transformer = transformer_class(
        in_channels=4,
        num_layers=2,
        dim=32,
        ffn_dim=64,
        num_attention_heads=2,
        text_dim=TEXT_DIM,
        pos_embed_size=(8, 2, 2),
        timestep_embedding_dim=16,
    ).eval()
    # adaLN-zero starts the output projection and modulation at zero: a fresh model predicts velocity 0 and
    # would ignore prompt, time and fps. Random values make every input matter.
    with torch.no_grad():
        for name, parameter in transformer.named_parameters():
            if name.startswith(("proj_out", "modulation")):
                parameter.normal_(0, 0.3)
    text_encoder = build_text_encoder(tiny_text_encoder_config(d_model=TEXT_DIM, num_layers=1, num_heads=2, d_ff=64))
    components = dict(
        tokenizer=byte_tokenizer(),
        text_encoder=text_encoder.eval(),
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )
    return components | pipeline_config


def get_pipeline(**kwargs):
    pipe = TextToVideoPipeline(**get_dummy_components(**kwargs))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def get_dummy_inputs(seed=0, **overrides):
    inputs = dict(
        prompt="a red ball bounces",
        num_frames=9,  # 3 latent frames; the last is cropped to 1 of its 4 frames
        num_inference_steps=2,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(seed),
    )
    return inputs | overrides


@pytest.fixture(scope="module")
def pipe():
    return get_pipeline()


# --- shapes and output types -------------------------------------------------------------------------


def test_default_size_is_what_the_transformer_covers(pipe):
    assert (pipe.default_height, pipe.default_width) == (32, 32)  # 2 tokens x patch 2 x 8
    assert pipe.resolve_num_frames(None, None, 24) == 240  # Movie Gen's default, 10 s at 24 fps
    assert pipe.resolve_num_frames(None, None, 16) == 256  # the other option, 16 s at 16 fps
    assert pipe.resolve_num_frames(None, 0.5, 24) == 12
    assert pipe.resolve_num_frames(7, None, 24) == 7


def test_output_types(pipe):
    output = pipe(**get_dummy_inputs(output_type="np"))
    assert isinstance(output, AVGenOutput) and output.audio is None and output.fps == 24
    frames = output.frames
    assert isinstance(frames, np.ndarray) and frames.shape == (1, 9, 32, 32, 3)
    assert frames.min() >= 0 and frames.max() <= 1 and frames.std() > 0

    pt = pipe(**get_dummy_inputs(output_type="pt")).frames
    assert isinstance(pt, torch.Tensor) and pt.shape == (1, 9, 3, 32, 32)
    np.testing.assert_allclose(pt.permute(0, 1, 3, 4, 2).numpy(), frames, atol=1e-6)

    pil = pipe(**get_dummy_inputs(output_type="pil")).frames
    assert len(pil) == 1 and len(pil[0]) == 9 and isinstance(pil[0][0], PIL.Image.Image)
    assert pil[0][0].size == (32, 32)

    latent = pipe(**get_dummy_inputs(output_type="latent")).frames
    assert latent.shape == (1, 4, 3, 4, 4)  # (B, C, ceil(9 / 4), 32 / 8, 32 / 8)

    (tuple_frames,) = pipe(**get_dummy_inputs(return_dict=False))
    np.testing.assert_array_equal(tuple_frames, frames)


def test_duration_fps_and_size(pipe):
    output = pipe(**get_dummy_inputs(num_frames=None, duration=0.75, fps=16, height=16, width=32))
    assert output.frames.shape == (1, 12, 16, 32, 3)  # 0.75 s at 16 fps
    assert output.fps == 16


def test_fps_conditions_the_transformer(pipe):
    at_24 = pipe(**get_dummy_inputs(fps=24, output_type="latent")).frames
    at_16 = pipe(**get_dummy_inputs(fps=16, output_type="latent")).frames
    assert not torch.allclose(at_24, at_16)


def test_metadata(pipe):
    output = pipe(**get_dummy_inputs(prompt=["a", "b"], num_videos_per_prompt=2))
    assert output.num_videos == 4
    assert [m["prompt"] for m in output.metadata] == ["a", "a", "b", "b"]
    for entry in output.metadata:
        assert entry["generator"] == "avgen" and entry["model_version"] == avgen.__version__
        assert entry["seed"] == 0 and entry["num_inference_steps"] == 2 and entry["guidance_scale"] == 3.0
    generators = [torch.Generator().manual_seed(s) for s in (5, 6)]
    output = pipe(**get_dummy_inputs(generator=generators, num_videos_per_prompt=2))
    assert [m["seed"] for m in output.metadata] == [5, 6]
    output = pipe(**get_dummy_inputs(generator=None))
    assert "seed" not in output.metadata[0]


# --- the sampler --------------------------------------------------------------------------------------


class OracleTransformer(VideoTransformer):
    """Predicts the exact velocity (x1 - x_t) / (1 - t) toward a constant clip x1 = the first text value.

    Euler on a straight path is exact, so correct time and sign conventions land precisely on x1, and
    guidance lands on x1_negative + g * (x1_positive - x1_negative).
    """

    calls: list

    def forward(self, hidden_states, encoder_hidden_states, timestep, fps, encoder_attention_mask=None, **kwargs):
        self.calls.append(dict(timestep=timestep.clone(), fps=fps, batch=hidden_states.shape[0]))
        target = encoder_hidden_states[:, 0, 0].reshape(-1, 1, 1, 1, 1)
        velocity = (target - hidden_states) / (1 - timestep).reshape(-1, 1, 1, 1, 1)
        return (velocity,)


def oracle_pipeline():
    pipe = get_pipeline(transformer_class=OracleTransformer)
    pipe.transformer.calls = []
    return pipe


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_sampler_follows_the_flow_convention_and_guidance(guidance_scale):
    pipe = oracle_pipeline()
    positive, negative = torch.full((1, 3, TEXT_DIM), 2.0), torch.full((1, 5, TEXT_DIM), -1.0)
    latents = pipe(
        prompt_embeds=positive,
        negative_prompt_embeds=negative,
        num_frames=9,
        fps=16,
        num_inference_steps=4,
        guidance_scale=guidance_scale,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
    ).frames
    expected = -1.0 + guidance_scale * (2.0 - -1.0) if guidance_scale > 1 else 2.0
    torch.testing.assert_close(latents, torch.full_like(latents, expected), atol=1e-4, rtol=1e-4)

    calls = pipe.transformer.calls
    times = [float(call["timestep"][0]) for call in calls]
    np.testing.assert_allclose(times, 1 - np.array(linear_quadratic_sigmas(4)), atol=1e-6)  # t = 0 first
    assert all(call["fps"] == 16 for call in calls)
    # guidance batches [negative; positive] into one forward; without it there is one branch
    assert all(call["batch"] == (2 if guidance_scale > 1 else 1) for call in calls)


def test_negative_prompt_default_is_empty_string_and_matters(pipe):
    default = pipe(**get_dummy_inputs(output_type="latent")).frames
    empty = pipe(**get_dummy_inputs(negative_prompt="", output_type="latent")).frames
    other = pipe(**get_dummy_inputs(negative_prompt="blurry", output_type="latent")).frames
    torch.testing.assert_close(default, empty, rtol=0, atol=0)
    assert not torch.allclose(default, other)
    # guidance <= 1 ignores the negative prompt
    no_guidance = pipe(**get_dummy_inputs(guidance_scale=1.0, output_type="latent")).frames
    no_guidance_other = pipe(**get_dummy_inputs(guidance_scale=1.0, negative_prompt="blurry", output_type="latent"))
    torch.testing.assert_close(no_guidance, no_guidance_other.frames, rtol=0, atol=0)
    assert not torch.allclose(no_guidance, default)


def test_prompt_conditions_the_output(pipe):
    a = pipe(**get_dummy_inputs(prompt="a red ball", output_type="latent")).frames
    b = pipe(**get_dummy_inputs(prompt="thunder at night", output_type="latent")).frames
    assert not torch.allclose(a, b)


def test_batched_prompts_match_single_prompts(pipe):
    """Padding prompts of different lengths in one batch (and to the negative's length) must not change them."""
    prompts = ["a", "a much longer prompt about a river"]
    generators = [torch.Generator().manual_seed(s) for s in (1, 2)]
    batched = pipe(**get_dummy_inputs(prompt=prompts, generator=generators, output_type="latent")).frames
    for index, (prompt, seed) in enumerate(zip(prompts, (1, 2))):
        single = pipe(**get_dummy_inputs(prompt=prompt, seed=seed, output_type="latent")).frames
        torch.testing.assert_close(batched[index : index + 1], single, atol=1e-5, rtol=1e-5)


def test_prompt_embeds_path(pipe):
    from_text = pipe(**get_dummy_inputs(output_type="latent")).frames
    with torch.no_grad():
        embeds, mask, negative, negative_mask = pipe.encode_prompt("a red ball bounces", "")
    from_embeds = pipe(
        **get_dummy_inputs(prompt=None, output_type="latent"),
        prompt_embeds=embeds,
        prompt_attention_mask=mask,
        negative_prompt_embeds=negative,
        negative_prompt_attention_mask=negative_mask,
    ).frames
    torch.testing.assert_close(from_text, from_embeds, rtol=0, atol=0)
    # without masks every token counts; these embeddings have no padding, so the result is the same
    no_masks = pipe(
        **get_dummy_inputs(prompt=None, output_type="latent"), prompt_embeds=embeds, negative_prompt_embeds=negative
    ).frames
    torch.testing.assert_close(from_text, no_masks, rtol=0, atol=0)
    assert "prompt" not in pipe(**get_dummy_inputs(prompt=None), prompt_embeds=embeds).metadata[0]


def test_given_latents_are_used(pipe):
    latents = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    a = pipe(**get_dummy_inputs(generator=None, latents=latents, output_type="latent")).frames
    b = pipe(**get_dummy_inputs(seed=3, output_type="latent")).frames  # the same noise from a generator
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert "seed" not in pipe(**get_dummy_inputs(latents=latents)).metadata[0]


# --- determinism, batches, generators ------------------------------------------------------------------


def test_same_seed_same_output_and_different_seed_differs(pipe):
    first = pipe(**get_dummy_inputs(seed=0)).frames
    second = pipe(**get_dummy_inputs(seed=0)).frames
    other = pipe(**get_dummy_inputs(seed=1)).frames
    np.testing.assert_array_equal(first, second)
    assert np.abs(first - other).max() > 1e-3


def test_generator_list_and_num_videos_per_prompt(pipe):
    generators = [torch.Generator().manual_seed(s) for s in (0, 1, 0, 1)]
    output = pipe(**get_dummy_inputs(prompt=["a", "b"], num_videos_per_prompt=2, generator=generators))
    frames = output.frames
    assert frames.shape == (4, 9, 32, 32, 3)
    # videos of one prompt differ (different noise); the same noise under another prompt differs too
    assert np.abs(frames[0] - frames[1]).max() > 1e-3
    assert np.abs(frames[0] - frames[2]).max() > 1e-3
    # each video equals the single-prompt run with its own generator
    for index, (prompt, seed) in enumerate([("a", 0), ("a", 1), ("b", 0), ("b", 1)]):
        single = pipe(**get_dummy_inputs(prompt=prompt, seed=seed)).frames
        np.testing.assert_allclose(frames[index], single[0], atol=1e-5)


def test_num_videos_per_prompt_with_one_generator(pipe):
    frames = pipe(**get_dummy_inputs(num_videos_per_prompt=3)).frames
    assert frames.shape == (3, 9, 32, 32, 3)
    assert np.abs(frames[0] - frames[1]).max() > 1e-3


# --- decoding ------------------------------------------------------------------------------------------


def test_decode_uses_scaling_factor_and_temporal_tiles():
    pipe = get_pipeline(vae_tile_latent_frames=2, vae_tile_overlap=1)
    inputs = get_dummy_inputs(num_frames=14)  # 4 latent frames: tiles [0, 2), [1, 3), [2, 4)
    latents = pipe(**inputs | dict(generator=torch.Generator().manual_seed(0), output_type="latent")).frames
    video = pipe(**inputs | dict(generator=torch.Generator().manual_seed(0), output_type="pt")).frames
    with torch.no_grad():
        tiled = pipe.vae.decode(latents / 0.5, num_frames=14, tile_latent_frames=2, tile_overlap=1).sample
        untiled = pipe.vae.decode(latents / 0.5, num_frames=14).sample
    expected = (tiled / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4)  # (B, F, 3, H, W) in [0, 1]
    torch.testing.assert_close(video, expected, atol=1e-6, rtol=0)
    assert (untiled - tiled).abs().max() > 1e-4  # the tiles make a difference, so the test sees them


# --- callbacks -----------------------------------------------------------------------------------------


def test_callback_on_step_end_sees_and_modifies_tensors(pipe):
    seen = []

    def callback(pipeline, step, timestep, callback_kwargs):
        seen.append((step, float(timestep), sorted(callback_kwargs)))
        assert pipeline is pipe
        return {"latents": torch.zeros_like(callback_kwargs["latents"])}

    latents = pipe(
        **get_dummy_inputs(output_type="latent", num_inference_steps=3),
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents", "prompt_embeds", "negative_prompt_embeds"],
    ).frames
    assert [s[0] for s in seen] == [0, 1, 2]
    assert seen[0][1] == 1000.0  # the scheduler's first timestep: sigma 1 = pure noise
    assert seen[0][2] == ["latents", "negative_prompt_embeds", "prompt_embeds"]
    assert torch.count_nonzero(latents) == 0  # the last step's replacement is what comes out


def test_text_replaced_by_a_callback_is_prepared_again(pipe):
    """The text is prepared once per call (issue 47), and again when a callback replaces it: the latents are those of
    forwards that prepare their own text at every step."""
    def louder(pipeline, step, timestep, callback_kwargs):
        return {"prompt_embeds": 2 * callback_kwargs["prompt_embeds"]} if step == 0 else {}

    seen = []
    hook = pipe.transformer.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["conditions"]), with_kwargs=True)
    inputs = dict(output_type="latent", num_inference_steps=3, callback_on_step_end=louder, callback_on_step_end_tensor_inputs=["prompt_embeds"])
    try:
        per_call = pipe(**get_dummy_inputs(**inputs)).frames
    finally:
        hook.remove()
    assert seen[1] is seen[2] and seen[0] is not seen[1]  # prepared at the start, and after the replacement at step 0
    with conditions_per_step(pipe.transformer):
        per_step = pipe(**get_dummy_inputs(**inputs)).frames
    assert torch.equal(per_call, per_step)
    assert not torch.equal(per_call, pipe(**get_dummy_inputs(output_type="latent", num_inference_steps=3)).frames)


def test_callback_can_interrupt(pipe):
    def callback(pipeline, step, timestep, callback_kwargs):
        pipeline._interrupt = True
        return {}

    forwards = []
    handle = pipe.transformer.register_forward_hook(lambda *args: forwards.append(1))
    try:
        pipe(**get_dummy_inputs(num_inference_steps=4), callback_on_step_end=callback)
    finally:
        handle.remove()
    assert len(forwards) == 1


# --- check_inputs: every error before any compute ------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(fps=20), "fps must be one of"),
        (dict(num_frames=9, duration=1.0), "num_frames or duration, not both"),
        (dict(num_frames=0), "num_frames must be a positive integer"),
        (dict(num_frames=None, duration=-1.0), "duration must be a positive"),
        (dict(num_frames=33), "too long"),  # 9 latent frames > 8 positions
        (dict(num_frames=None), "too long"),  # the default, 10 s at 24 fps, needs 60 latent frames
        (dict(height=24), "height must be a positive multiple of 16"),
        (dict(width=20), "width must be a positive multiple of 16"),
        (dict(height=48), "height=48 exceeds 32"),
        (dict(num_inference_steps=1), "num_inference_steps must be an integer >= 2"),
        (dict(num_videos_per_prompt=0), "num_videos_per_prompt must be a positive integer"),
        (dict(max_sequence_length=0), "max_sequence_length must be a positive integer"),
        (dict(output_type="mp4"), "output_type must be one of"),
        (dict(callback_on_step_end_tensor_inputs=["velocity"]), "callback_on_step_end_tensor_inputs must be in"),
        (dict(prompt_embeds=torch.zeros(1, 3, TEXT_DIM)), "prompt or prompt_embeds, not both"),
        (dict(prompt=None), "pass prompt or prompt_embeds"),
        (dict(prompt=3), "prompt must be a string or a list of strings"),
        (dict(prompt=[]), "prompt is an empty list"),
        (dict(negative_prompt="x", negative_prompt_embeds=torch.zeros(1, 3, TEXT_DIM)), "negative_prompt or"),
        (dict(negative_prompt=["x", "y"]), "list of 1 strings"),
        (dict(negative_prompt=5), "negative_prompt must be a string"),
        (dict(prompt_attention_mask=torch.ones(1, 3)), "prompt_attention_mask goes with prompt_embeds"),
        (
            dict(negative_prompt_attention_mask=torch.ones(1, 3)),
            "negative_prompt_attention_mask goes with negative_prompt_embeds",
        ),
        (dict(prompt=None, prompt_embeds=torch.zeros(1, 3, 7)), r"prompt_embeds must be a \(B, L, 32\) tensor"),
        (
            dict(prompt=None, prompt_embeds=torch.zeros(1, 3, TEXT_DIM), prompt_attention_mask=torch.ones(1, 4)),
            r"prompt_attention_mask must be \(1, 3\)",
        ),
        (
            dict(prompt=["a", "b"], negative_prompt_embeds=torch.zeros(1, 3, TEXT_DIM)),
            "negative_prompt_embeds has batch size 1, but there are 2 prompts",
        ),
        (dict(negative_prompt_embeds=torch.zeros(1, 3, 8)), r"negative_prompt_embeds must be a \(B, L, 32\)"),
        (
            dict(negative_prompt_embeds=torch.zeros(1, 3, TEXT_DIM), negative_prompt_attention_mask=torch.ones(2, 3)),
            r"negative_prompt_attention_mask must be \(1, 3\)",
        ),
        (dict(generator=[torch.Generator()] * 3), "got 3 generators for 1 videos"),
        (dict(latents=torch.zeros(1, 4, 2, 4, 4)), r"latents must have shape \(1, 4, 3, 4, 4\)"),
    ],
)
def test_check_inputs_errors(pipe, overrides, message):
    calls = []
    handle = pipe.text_encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        with pytest.raises(ValueError, match=message):
            pipe(**get_dummy_inputs(**overrides))
    finally:
        handle.remove()
    assert not calls  # raised before any compute


# --- saving and loading ----------------------------------------------------------------------------------


def test_save_pretrained_from_pretrained_round_trip(tmp_path, monkeypatch):
    pipe = get_pipeline(vae_tile_latent_frames=3)
    expected = pipe(**get_dummy_inputs()).frames
    pipe.save_pretrained(tmp_path)

    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["vae"] == ["avgen.models.autoencoder_video", "TemporalAutoencoder"]
    assert index["transformer"] == ["avgen.models.transformer_video", "VideoTransformer"]
    assert index["vae_tile_latent_frames"] == 3
    weights = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix not in (".json", ".txt", ".md")]
    assert weights and all(p.suffix == ".safetensors" for p in weights), weights
    assert {p.parent.name for p in weights} == {"text_encoder", "vae", "transformer"}

    def no_unpickling(*args, **kwargs):
        raise AssertionError("from_pretrained must not unpickle anything")

    monkeypatch.setattr(torch, "load", no_unpickling)
    loaded = TextToVideoPipeline.from_pretrained(tmp_path, use_safetensors=True)
    monkeypatch.undo()
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.vae_tile_latent_frames == 3
    assert isinstance(loaded.vae, TemporalAutoencoder) and isinstance(loaded.transformer, VideoTransformer)
    for name in ("text_encoder", "vae", "transformer"):
        original, restored = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert original.keys() == restored.keys()
        assert all(torch.equal(original[key], restored[key]) for key in original), name
    # equal weights, but safetensors' memory-mapped tensors are not 64-byte aligned, so a CPU kernel may take
    # another SIMD path: equal to float32 rounding, not always bit for bit
    np.testing.assert_allclose(loaded(**get_dummy_inputs()).frames, expected, atol=1e-5, rtol=0)
