"""Issue 45, item 4: a pipeline folder is checked before anything loads. A missing component folder is named by its
own path; a model with only pickle weights (.bin) is refused, never unpickled; weights cut short or holding NaN or
infinite values are refused naming the file and the tensor. `avgen generate` reports each with exit 2."""

import json
import re
import shutil

import pytest
import torch
from diffusers import DiffusionPipeline
from safetensors.torch import load_file, save_file

from avgen.cli import main
from avgen.pipelines import AVGenPipeline
from avgen.pipelines.text_to_audio_video import resolve_weights
from tests.pipelines.tiny import avgen_pipeline

WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loading") / "model"
    avgen_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture
def folder(saved, tmp_path):
    """A copy of the saved pipeline, for a test to break."""
    return shutil.copytree(saved, tmp_path / "model")


def set_value(file, value):
    """Put `value` into the first floating-point tensor of a safetensors file."""
    tensors = load_file(file)
    key = next(key for key in sorted(tensors) if tensors[key].is_floating_point())
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = value
    save_file(tensors, file)
    return key


@pytest.fixture
def nothing_loads(monkeypatch):
    """diffusers' loader fails the test if reached: the checks must come first."""
    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", classmethod(lambda *a, **k: pytest.fail("loaded")))


def test_a_missing_component_folder_is_named(folder, nothing_loads):
    shutil.rmtree(folder / "transformer")
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(str(folder / 'transformer'))} is missing: .*lists the component 'transformer'"):
        AVGenPipeline.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(str(folder / 'transformer'))} is missing"):
        resolve_weights(folder)  # what the commands and the Space call first


def test_pickle_weights_are_refused_not_unpickled(folder, nothing_loads):
    weights = folder / "transformer" / WEIGHTS
    torch.save(load_file(weights), folder / "transformer" / "diffusion_pytorch_model.bin")
    weights.unlink()
    with pytest.raises(FileNotFoundError, match=r"transformer has no \.safetensors weights; found only diffusion_pytorch_model\.bin \(pickle"):
        AVGenPipeline.from_pretrained(folder)


@pytest.mark.parametrize("component, file_name, value", [
    ("transformer", WEIGHTS, float("nan")),
    ("audio_vae", WEIGHTS, float("inf")),
    ("text_encoder", "model.safetensors", -float("inf")),  # a transformers model
])  # fmt: skip
def test_weights_holding_nan_or_inf_are_refused_naming_the_file(folder, nothing_loads, component, file_name, value):
    key = set_value(folder / component / file_name, value)
    with pytest.raises(ValueError) as error:
        AVGenPipeline.from_pretrained(folder)
    assert str(error.value) == f"{folder / component / file_name} holds NaN or infinite values (tensor {key!r}): these weights are corrupt"


def test_bfloat16_weights_are_scanned_too(folder, nothing_loads):
    weights = folder / "vae" / WEIGHTS
    tensors = {key: value.to(torch.bfloat16) if value.is_floating_point() else value for key, value in load_file(weights).items()}
    save_file(tensors, weights)
    set_value(weights, float("nan"))
    with pytest.raises(ValueError, match="holds NaN or infinite values"):
        AVGenPipeline.from_pretrained(folder)


def test_weights_cut_short_are_refused_naming_the_file(folder, nothing_loads):
    weights = folder / "vae" / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ValueError, match=f"^{re.escape(str(weights))} cannot be read as safetensors weights"):
        AVGenPipeline.from_pretrained(folder)


def test_a_component_passed_in_is_not_read_from_the_folder(folder, saved):
    """foley passes transformer=None, ...: those folders may be broken or absent."""
    shutil.rmtree(folder / "transformer")
    pipe = AVGenPipeline.from_pretrained(folder, transformer=None)
    assert pipe.transformer is None and pipe.vae is not None


def test_generate_reports_broken_weights_with_exit_2_before_loading(folder, tmp_path, nothing_loads, capsys):
    set_value(folder / "transformer" / WEIGHTS, float("nan"))
    code = main(["generate", "a red ball", "-o", str(tmp_path / "out.mp4"), "--model", str(folder)])
    assert code == 2 and "holds NaN or infinite values" in capsys.readouterr().err
    shutil.rmtree(folder / "vae")
    code = main(["generate", "a red ball", "-o", str(tmp_path / "out.mp4"), "--model", str(folder)])
    assert code == 2 and f"{folder / 'vae'} is missing" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


def test_a_model_index_that_is_not_json_is_named(folder, nothing_loads):
    (folder / "model_index.json").write_text("{not json")
    with pytest.raises(ValueError, match="model_index.json is not valid JSON"):
        AVGenPipeline.from_pretrained(folder)


def test_the_saved_pipeline_loads(saved):
    pipe = AVGenPipeline.from_pretrained(saved)
    assert set(json.loads((saved / "model_index.json").read_text())) >= {"transformer", "vae", "text_encoder"}
    assert pipe.transformer is not None
