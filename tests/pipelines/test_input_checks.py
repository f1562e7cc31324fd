"""Issue 45, item 3, for the Python API: text that is not valid Unicode, a blank prompt or instruction, a guidance
scale that is NaN, infinite or not a number, an infinite duration and a generator that is not a torch.Generator are
refused by every pipeline's check_inputs with a ValueError that starts with the argument's name, before any model
runs (every component's forward is made to fail). The rules themselves live in avgen.validation, shared with the
commands (tests/commands/test_argument_errors.py)."""

import pytest
import torch

from avgen import validation
from tests.pipelines import test_text_to_audio_video, test_text_to_video, test_video_edit, test_video_to_audio
from tests.pipelines.tiny import avgen_pipeline

NOT_UTF8 = "a red \udcff ball"  # what Python's argv makes of the byte 0xff (surrogateescape)
SURROGATE = "a red \ud800 ball"  # a lone surrogate, as a str can hold it
NOT_FINITE = [float("nan"), float("inf"), -float("inf"), "5", True, None]

# name -> (a pipeline, its good inputs, its text arguments, its guidance arguments)
PIPELINES = {
    "text_to_video": (test_text_to_video.get_pipeline, test_text_to_video.get_dummy_inputs, ["prompt", "negative_prompt"], ["guidance_scale"]),
    "avgen": (
        avgen_pipeline, test_text_to_audio_video.get_dummy_inputs,
        ["prompt", "negative_prompt", "audio_prompt", "audio_negative_prompt"],
        ["guidance_scale", "audio_guidance_scale", "audio_video_guidance_scale"],
    ),
    "video_to_audio": (test_video_to_audio.get_pipeline, test_video_to_audio.get_dummy_inputs, ["prompt", "negative_prompt"], ["guidance_scale", "video_guidance_scale"]),
    "video_edit": (  # "add rain" regenerates the sound, so the audio arguments are checked too
        lambda: test_video_edit.get_pipeline(with_audio=True),
        lambda **overrides: test_video_edit.get_dummy_inputs(**{"prompt": "add rain", **overrides}),
        ["prompt", "negative_prompt", "audio_prompt"],
        ["guidance_scale", "video_guidance_scale", "audio_guidance_scale"],
    ),
}  # fmt: skip
WHAT_TO_MAKE = ["text_to_video", "avgen", "video_edit"]  # their prompt says what to make: it may not be blank


def cases():
    """(pipeline, overrides, the start of the error) for every bad input of every pipeline."""
    for name, (_, _, texts, guidances) in PIPELINES.items():
        for argument in texts:
            yield name, {argument: NOT_UTF8}, f"{argument} must be valid Unicode text"
            yield name, {argument: SURROGATE}, f"{argument} must be valid Unicode text"
        yield name, {"prompt": ["a red ball", SURROGATE]}, "prompt[1] must be valid Unicode text"
        for argument in guidances:
            for value in NOT_FINITE:
                if value is None and argument == "audio_guidance_scale" and name == "video_edit":
                    continue  # None: VideoToAudioPipeline's default
                yield name, {argument: value}, f"{argument} must be a finite number"
        yield name, {"generator": 42}, "generator must be a torch.Generator"
        yield name, {"generator": [42]}, "generator must be a torch.Generator"
    for name in WHAT_TO_MAKE:
        yield name, {"prompt": ""}, "prompt is empty"
        yield name, {"prompt": " \t\n"}, "prompt is only whitespace"
    yield "text_to_video", {"prompt": ["a red ball", ""]}, "prompt[1] is empty"
    yield "text_to_video", {"num_frames": None, "duration": float("inf")}, "duration must be a positive number"
    yield "avgen", {"duration": float("inf")}, "duration must be a positive number"


@pytest.fixture(scope="module")
def pipes():
    return {name: make() for name, (make, *_) in PIPELINES.items()}


@pytest.mark.parametrize("name, overrides, start", list(cases()))
def test_bad_input_is_refused_by_name_before_any_model_runs(pipes, monkeypatch, name, overrides, start):
    pipe = pipes[name]
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            monkeypatch.setattr(component, "forward", lambda *a, **k: pytest.fail("a model ran before the checks"))
    with pytest.raises(ValueError) as error:
        pipe(**PIPELINES[name][1](**overrides))
    assert str(error.value).startswith(start), str(error.value)


def test_a_blank_negative_or_audio_prompt_is_allowed(pipes):
    """Only the prompt that says what to make must hold words: "" is the unconditional text elsewhere."""
    pipe = pipes["video_to_audio"]
    output = pipe(**test_video_to_audio.get_dummy_inputs(prompt="", negative_prompt=" "))
    assert output.audio.shape[0] == 1


@pytest.mark.parametrize("seed, ok", [(0, True), (2**64 - 1, True), (2**64, False), (-1, False), (1.0, False), (True, False)])
def test_one_seed_rule_for_every_command(seed, ok):
    if ok:
        assert validation.check_seed("--seed", seed) == seed
        torch.Generator().manual_seed(seed)  # every accepted seed is one torch takes
    else:
        with pytest.raises(ValueError, match=r"^--seed must be an integer in \[0, 2\*\*64\)"):
            validation.check_seed("--seed", seed)
