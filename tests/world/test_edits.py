import dataclasses
import json

import numpy as np
import pytest

from avgen.world.edits import EDIT_KINDS, INSTRUCTIONS, EditPair, instruction, sample_edit_pair
from avgen.world.spec import HELD_OUT_PAIRS, ClipSpec, SubjectSpec


def _differences(source: ClipSpec, target: ClipSpec) -> set[str]:
    a, b = source.to_dict(), target.to_dict()
    changed = {key for key in a if a[key] != b[key] and key != "subject"}
    changed |= {f"subject.{key}" for key in a["subject"] if a["subject"][key] != b["subject"][key]}
    return changed


EXPECTED_CHANGE = {"background": {"background"}, "color": {"subject.color"}, "add_rain": {"weather"},
                   "remove_rain": {"weather"}, "night": {"background"}}


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_pairs_differ_only_in_the_named_attribute(split):
    rng = np.random.default_rng(0)
    for kind in EDIT_KINDS:
        for _ in range(60):
            pair = sample_edit_pair(rng, kind=kind, split=split, second_subject_prob=0.5)
            assert pair.kind == kind and pair.source.seed == pair.target.seed
            assert _differences(pair.source, pair.target) == EXPECTED_CHANGE[kind], pair
            if kind == "add_rain":
                assert (pair.source.weather, pair.target.weather) == ("clear", "rain")
            if kind == "remove_rain":
                assert (pair.source.weather, pair.target.weather) == ("rain", "clear")
            if kind == "night":
                assert pair.source.background != "night" and pair.target.background == "night"
            if kind == "background":
                assert pair.target.background != "night"


def test_train_pairs_never_hold_a_held_out_pair():
    rng = np.random.default_rng(1)
    pairs = [sample_edit_pair(rng, second_subject_prob=0.5) for _ in range(1500)]
    assert {pair.kind for pair in pairs} == set(EDIT_KINDS)
    assert not any(pair.source.has_held_out_pair() or pair.target.has_held_out_pair() for pair in pairs)


def test_heldout_targets_are_held_out_pairs():
    rng = np.random.default_rng(2)
    targets = set()
    for _ in range(300):
        pair = sample_edit_pair(rng, split="heldout")
        subject = pair.target.subject
        assert (subject.kind, subject.color) in HELD_OUT_PAIRS
        if pair.kind == "color":  # the instruction asks for the unseen composition from a seen one
            assert not pair.source.has_held_out_pair()
            targets.add((subject.kind, subject.color))
    assert targets == HELD_OUT_PAIRS


def test_instructions_name_the_target():
    rng = np.random.default_rng(3)
    spec = ClipSpec(SubjectSpec("person", "blue", "walking", "left"), background="city intersection")
    texts = {instruction("color", spec.replace(subject=dataclasses.replace(spec.subject, color="red")), rng) for _ in range(40)}
    assert texts == {"modify her clothes to a red dress", "change her dress to red"}
    texts = {instruction("background", spec, rng) for _ in range(40)}
    assert "change the background to a busy intersection" in texts
    car = ClipSpec(SubjectSpec("car", "orange", "driving", "left", "slow"))
    assert {instruction("color", car, rng, phrasing="heldout") for _ in range(40)} == {"respray the car orange", "give the car an orange paint job"}
    assert {instruction("night", spec, rng) for _ in range(40)} == set(INSTRUCTIONS["train"]["night"])


def test_instruction_phrasings_are_disjoint_and_all_used():
    for key in INSTRUCTIONS["train"]:
        assert not set(INSTRUCTIONS["train"][key]) & set(INSTRUCTIONS["heldout"][key])
    for phrasing in ("train", "heldout"):
        rng = np.random.default_rng(4)
        texts = " | ".join(sample_edit_pair(rng, phrasing=phrasing).instruction for _ in range(800))
        for options in INSTRUCTIONS[phrasing].values():
            for option in options:
                assert option.split("{")[0].strip() in texts, option


def test_pairs_are_json_round_trips_and_deterministic():
    pair = sample_edit_pair(np.random.default_rng(5), kind="color", resolution=32, fps=8, duration=2.0)
    assert EditPair.from_dict(json.loads(pair.to_json())) == pair
    assert sample_edit_pair(np.random.default_rng(5), kind="color", resolution=32, fps=8, duration=2.0) == pair
    assert (pair.target.resolution, pair.target.fps, pair.target.duration) == (32, 8, 2.0)


def test_bad_arguments_are_refused():
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match="kind"):
        sample_edit_pair(rng, kind="zoom")
    with pytest.raises(ValueError, match="split"):
        sample_edit_pair(rng, split="test")
    with pytest.raises(ValueError, match="phrasing"):
        sample_edit_pair(rng, phrasing="test")
