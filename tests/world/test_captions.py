import re

import numpy as np
import pytest

from avgen.world import captions
from avgen.world.captions import PHRASE_TABLES, SPLITS, TEMPLATES, caption, caption_attributes, parse_caption
from avgen.world.spec import BACKGROUNDS, CAMERAS, COLORS, MUSICS, SUBJECTS, WEATHERS, ClipSpec, SubjectSpec, sample_spec


def _specs(seed, n, second_subject_prob=0.3):
    rng = np.random.default_rng(seed)
    return [(sample_spec(rng, held_out=bool(i % 4 == 0), second_subject_prob=second_subject_prob), rng) for i in range(n)]


def _expected(spec, text, fps_tag):
    expected = caption_attributes(spec, fps_tag)
    if spec.weather == "clear" and "weather" not in parse_caption(text):
        del expected["weather"]  # clear weather may go unsaid
    return expected


@pytest.mark.parametrize("split", SPLITS)
def test_parse_recovers_every_attribute(split):
    for i, (spec, rng) in enumerate(_specs(seed=1 if split == "train" else 2, n=2000)):
        fps_tag = i % 5 == 0
        text = caption(spec, rng, split, fps_tag=fps_tag)
        assert parse_caption(text) == _expected(spec, text, fps_tag), text


def test_clear_weather_is_sometimes_said_and_other_weather_always():
    said = {True: 0, False: 0}
    for spec, rng in _specs(seed=3, n=400):
        text = caption(spec.replace(weather="clear"), rng)
        said["weather" in parse_caption(text)] += 1
        assert parse_caption(caption(spec.replace(weather="rain"), rng))["weather"] == "rain"
    assert said[True] > 100 and said[False] > 100


def test_every_vocabulary_item_appears():
    seen = {key: set() for key in ("subject", "color", "motion", "direction", "speed", "background", "weather", "music", "camera")}
    for split in SPLITS:
        for spec, rng in _specs(seed=4, n=600):
            for key, value in parse_caption(caption(spec, rng, split)).items():
                if key in seen:
                    seen[key].add(value)
    assert seen["subject"] == set(SUBJECTS) and seen["color"] == set(COLORS)
    assert seen["motion"] == {"bouncing", "rolling", "driving", "walking"} and seen["direction"] == {"left", "right"}
    assert seen["speed"] == {"slow", "fast"} and seen["background"] == set(BACKGROUNDS)
    assert seen["weather"] == set(WEATHERS) and seen["camera"] == set(CAMERAS)
    assert seen["music"] == set(MUSICS) - {"none"}


def _phrases(split):
    """Every phrase of a split's tables, as (table name, phrase)."""
    for name, table in PHRASE_TABLES.items():
        for options in table[split].values():
            for phrase in options:
                yield name, phrase


def _pattern(phrase):
    """A phrase as a regex over captions: {c} is any colour; the article may have become "an"."""
    escaped = re.escape(phrase).replace(r"\{c\}", "(?:" + "|".join(COLORS) + ")")
    return re.compile(re.sub(r"\ba\\ ", r"an?\\ ", escaped), re.IGNORECASE)


@pytest.mark.parametrize("split", SPLITS)
def test_every_phrase_and_template_is_used(split, monkeypatch):
    templates = []
    choose = captions._choose

    def recording_choose(rng, options):
        chosen = choose(rng, options)
        if options is TEMPLATES[split]:
            templates.append(chosen)
        return chosen

    monkeypatch.setattr(captions, "_choose", recording_choose)
    texts = " | ".join(caption(spec, rng, split) for spec, rng in _specs(seed=5, n=1500))
    assert set(templates) == set(TEMPLATES[split])
    unused = [(name, phrase) for name, phrase in _phrases(split) if not _pattern(phrase).search(texts)]
    assert not unused
    for second_clause in captions.SECOND_CLAUSES[split]:  # the fixed words around {np} {v}/{i}
        assert all(part.strip(" ,;") in texts for part in re.split(r"\{\w+\}", second_clause) if part.strip(" ,;"))


def test_train_and_heldout_paraphrases_are_disjoint():
    # 1. No phrase or template is in both sets.
    for name, table in PHRASE_TABLES.items():
        for value in table["train"]:
            assert not set(table["train"][value]) & set(table["heldout"][value]), (name, value)
    assert not set(TEMPLATES["train"]) & set(TEMPLATES["heldout"])
    assert not set(captions.SECOND_CLAUSES["train"]) & set(captions.SECOND_CLAUSES["heldout"])
    assert not set(captions.PREPOSITIONS["train"]) & set(captions.PREPOSITIONS["heldout"])
    # 2. No held-out phrase of two words or more ever shows up in a train caption, and vice versa.
    texts = {split: " | ".join(caption(spec, rng, split) for spec, rng in _specs(seed=6, n=1500)) for split in SPLITS}
    for split, other in (("heldout", "train"), ("train", "heldout")):
        leaks = [phrase for _, phrase in _phrases(split) if len(phrase.split()) >= 2 and _pattern(phrase).search(texts[other])]
        assert not leaks, (split, leaks)
    # 3. For one spec, hundreds of captions of each split never coincide.
    spec = sample_spec(np.random.default_rng(7), second_subject_prob=1.0)
    rng = np.random.default_rng(8)
    train = {caption(spec, rng, "train") for _ in range(300)}
    heldout = {caption(spec, rng, "heldout") for _ in range(300)}
    assert len(train) > 50 and len(heldout) > 50 and not train & heldout


def test_captions_are_deterministic_given_the_seed():
    spec = sample_spec(np.random.default_rng(0), second_subject_prob=1.0)
    for split in SPLITS:
        first = [caption(spec, np.random.default_rng(seed), split) for seed in range(20)]
        again = [caption(spec, np.random.default_rng(seed), split) for seed in range(20)]
        assert first == again and len(set(first)) > 5


def test_examples_of_the_world_spec_read_back():
    storm = ClipSpec(SubjectSpec("ball", "red", "bouncing", "right"), weather="thunderstorm", camera="tracking", music="calm piano")
    assert parse_caption("A red ball bounces across a grassy field during a thunderstorm. Tracking shot. Calm piano music.") == {
        "subject": "ball", "color": "red", "motion": "bouncing", "background": "grassy field", "weather": "thunderstorm",
        "camera": "tracking", "music": "calm piano",
    }  # no direction said, so none parsed
    assert caption_attributes(storm)["camera"] == "tracking"
    assert parse_caption("Pan left over a desert road as a blue car drives by fast, engine roaring, upbeat music playing.") == {
        "subject": "car", "color": "blue", "motion": "driving", "speed": "fast", "background": "desert", "camera": "pan left",
        "music": "upbeat",
    }


def test_parse_tolerates_free_text():
    assert parse_caption("a woman walking left at night") == {"subject": "person", "motion": "walking", "direction": "left", "background": "night"}
    assert parse_caption("FPS-16: a lady in purple strolls to the right on the beach, zoom in") == {
        "fps": 16, "subject": "person", "color": "purple", "motion": "walking", "direction": "right", "background": "beach",
        "camera": "zoom in",
    }
    assert parse_caption("A yellow car, 24 fps, drives slowly from right to left; a white ball rolls right") == {
        "fps": 24, "subject": "car", "color": "yellow", "motion": "driving", "speed": "slow", "direction": "left",
        "second": {"subject": "ball", "color": "white", "motion": "rolling", "direction": "right"},
    }
    assert parse_caption("rain and thunder over a city") == {"weather": "thunderstorm", "background": "city intersection"}
    assert parse_caption("") == {} and parse_caption("a nice video") == {}


def test_fps_tag_is_the_movie_gen_prefix():
    spec = ClipSpec(SubjectSpec("car", "red", "driving", "left", "fast"), fps=16, duration=16.0)
    text = caption(spec, np.random.default_rng(0), fps_tag=True)
    assert text.startswith("FPS-16. ") and parse_caption(text)["fps"] == 16
    assert "fps" not in parse_caption(caption(spec, np.random.default_rng(0)))


def test_articles_agree_with_the_colour():
    spec = ClipSpec(SubjectSpec("person", "orange", "walking", "left"))
    texts = [caption(spec, np.random.default_rng(seed)) for seed in range(30)]
    assert not any(re.search(r"\ba orange\b", text, re.IGNORECASE) for text in texts)


def test_bad_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        caption(sample_spec(np.random.default_rng(0)), np.random.default_rng(0), split="test")
