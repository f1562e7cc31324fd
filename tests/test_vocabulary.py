"""The vocabulary that comes with the weights (avgen.vocabulary): the shipped folders hold the one derived from the
world's captions; none of the world's own captions or instructions, in either phrasing, raises a note; out-of-world
prompts are named, word by word, in one line; the pipelines warn before they compute (or raise with
strict_vocabulary=True), once per call, and a folder without the file is not checked."""

import json
import warnings

import numpy as np
import pytest
import torch

from avgen.cli import main
from avgen.pipelines.text_to_audio_video import DEFAULT_WEIGHTS
from avgen.vocabulary import (
    VOCABULARY_FILE,
    UnknownWordsError,
    VocabularyWarning,
    load_vocabulary,
    world_vocabulary,
    write_vocabulary,
)
from avgen.world.captions import caption
from avgen.world.edits import sample_edit_pair
from avgen.world.spec import sample_spec
from tests.pipelines.tiny import avgen_pipeline

SHIPPED = (DEFAULT_WEIGHTS, DEFAULT_WEIGHTS.parent / "tiny-edit")
OUT_OF_WORLD = {
    "a golden retriever running through Paris": ["golden", "retriever", "running", "Paris"],
    "A red dragon flies over a castle": ["dragon", "flies", "castle"],
    "a cat sleeps on a sofa, jazz music": ["cat", "sleeps", "sofa", "jazz"],
    "Sunset over the ocean, drone shot": ["Sunset", "ocean", "drone"],
    "an astronaut rides a horse on the moon": ["astronaut", "rides", "horse", "moon"],
}


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda folder: folder.name)
def test_the_shipped_folders_hold_the_worlds_vocabulary(folder):
    """Written by world_vocabulary(); regenerate with write_vocabulary(<folder>/tokenizer) when the captions change."""
    assert json.loads((folder / "tokenizer" / VOCABULARY_FILE).read_text()) == world_vocabulary()


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_no_note_on_the_worlds_own_captions_and_instructions(split):
    vocabulary = load_vocabulary(DEFAULT_WEIGHTS)
    rng = np.random.default_rng(0)
    captions = [caption(sample_spec(rng, held_out=bool(i % 2)), rng, split, fps_tag=bool(i % 3 == 0)) for i in range(3000)]
    instructions = [sample_edit_pair(rng, phrasing=split).instruction for _ in range(1000)]
    assert vocabulary.unknown(captions, instructions) == []
    assert all(vocabulary.note([text]) is None for text in captions[:20])  # 20 world prompts: silence


def test_out_of_world_prompts_are_named_word_by_word():
    vocabulary = load_vocabulary(DEFAULT_WEIGHTS)
    for prompt, unknown in OUT_OF_WORLD.items():
        assert vocabulary.unknown([prompt]) == unknown
        note = vocabulary.note([prompt])
        assert note.startswith("the shipped tiny model knows the procedural world only; not understood: " + ", ".join(f'"{w}"' for w in unknown))
        assert "Known subjects: ball, car, woman in a dress; colours: red," in note and "\n" not in note
        assert "edits:" not in note  # the edit examples only for instructions
    assert "edits: change the background to a beach" in vocabulary.note([], ["make the dog golden"])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The tiny random AVGenPipeline saved with the world's vocabulary beside its (byte) tokenizer."""
    folder = tmp_path_factory.mktemp("vocabulary") / "model"
    avgen_pipeline(with_upsampler=False).save_pretrained(folder)
    write_vocabulary(folder / "tokenizer")
    return folder


def test_the_pipeline_warns_once_before_computing_or_raises_when_strict(model):
    from avgen.pipelines import AVGenPipeline

    pipe = AVGenPipeline.from_pretrained(model)
    pipe.set_progress_bar_config(disable=True)
    calls = []
    pipe.transformer.register_forward_pre_hook(lambda *args: calls.append("transformer"))
    fast = dict(duration=0.5, fps=24, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(UnknownWordsError, match='not understood: "golden", "retriever"'):
        pipe("a golden retriever", strict_vocabulary=True, **fast)
    assert calls == []  # raised before any compute

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe("a golden retriever", audio_prompt="jazz", **fast)
    notes = [str(w.message) for w in caught if w.category is VocabularyWarning]
    assert len(notes) == 1 and '"golden", "retriever", "jazz"' in notes[0]  # the stages do not repeat it
    assert calls  # it did compute after the warning

    # 20 world prompts, held-in and held-out phrasings, in one strict call: no complaint
    rng = np.random.default_rng(1)
    prompts = [caption(sample_spec(rng), rng, ("train", "heldout")[i % 2]) for i in range(20)]
    pipe(prompts, strict_vocabulary=True, generate_audio=False, **fast)
    # the stage on its own (Foley) checks its prompt too
    with pytest.warns(VocabularyWarning, match='"jazz"'):
        pipe.video_to_audio(torch.rand(1, 12, 3, 32, 32), fps=24, prompt="jazz", num_inference_steps=2)


def test_a_folder_without_the_file_is_not_checked(tmp_path):
    pipe = avgen_pipeline(with_upsampler=False)  # the byte tokenizer: no folder, no vocabulary
    with warnings.catch_warnings():
        warnings.simplefilter("error", VocabularyWarning)
        pipe("a golden retriever", duration=0.5, num_inference_steps=2, generate_audio=False, strict_vocabulary=True)
    assert load_vocabulary(tmp_path) is None


def test_the_commands_print_one_note_line(model, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    argv = ["generate", "a golden retriever running through Paris", "-o", str(out), "--model", str(model)]
    assert main([*argv, "--steps", "2", "--duration", "0.5", "--no-audio"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: the model \"model\" knows the procedural world only; not understood: "
                     f"\"golden\", \"retriever\", \"running\", \"Paris\". {load_vocabulary(model).known_line()}"]  # fmt: skip
    assert main(["foley", str(out), "-o", str(tmp_path / "sound.mp4"), "--model", str(model), "--steps", "2", "--prompt", "jazz"]) == 0
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")][0].endswith(load_vocabulary(model).known_line())
