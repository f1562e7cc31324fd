"""Edit pairs (docs/world.md, "Edit pairs"): a source and a target clip that share the seed and differ only in
the named attribute, with an instruction such as "make the ball blue" or "add rain".

Kinds:
    background   any background -> another one that is not night ("change the background to a beach")
    color        the main subject's colour -> another colour ("paint the car yellow")
    add_rain     clear -> rain
    remove_rain  rain -> clear
    night        any background but night -> night ("make it night")
Weather edits start from clear or rain only: the world has one weather at a time, so "add rain" to a
waterfall would also remove the waterfall, which is not what the instruction says.

Splits:
    train    neither source nor target holds a held-out subject-colour pair.
    heldout  the target's main subject IS a held-out pair. For a colour edit the source has a training
             colour and the instruction asks for the held-out one ("change her dress to green"); for the
             other kinds source and target both hold the pair (the edit itself is a seen one).
Instructions come from a train or a held-out phrasing set (`phrasing`), like the captions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from avgen.world.captions import BACKGROUND_PHRASES, SPLITS, fix_articles
from avgen.world.spec import BACKGROUNDS, COLORS, HELD_OUT_PAIRS, ClipSpec, is_held_out, sample_spec

EDIT_KINDS: tuple[str, ...] = ("background", "color", "add_rain", "remove_rain", "night")

# {bg} is a background noun phrase (from the captions' table of the same phrasing), {c} a colour.
INSTRUCTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "background": ("change the background to {bg}", "replace the background with {bg}"),
        "color ball": ("make the ball {c}", "change the colour of the ball to {c}"),
        "color car": ("paint the car {c}", "make the car {c}"),
        "color person": ("modify her clothes to a {c} dress", "change her dress to {c}"),
        "add_rain": ("add rain", "make it rain"),
        "remove_rain": ("remove the rain", "stop the rain"),
        "night": ("make it night", "turn it into night"),
    },
    "heldout": {
        "background": ("move the scene to {bg}", "swap the setting for {bg}"),
        "color ball": ("turn the ball {c}", "recolour the ball {c}"),
        "color car": ("respray the car {c}", "give the car a {c} paint job"),
        "color person": ("dress her in {c}", "put her in a {c} gown"),
        "add_rain": ("let it pour", "start a rain shower"),
        "remove_rain": ("get rid of the rain", "let the rain clear up"),
        "night": ("set the scene after dark", "switch to nighttime"),
    },
}


@dataclass(frozen=True)
class EditPair:
    source: ClipSpec
    target: ClipSpec
    instruction: str
    kind: str

    def to_dict(self) -> dict:
        return {"source": self.source.to_dict(), "target": self.target.to_dict(), "instruction": self.instruction, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> "EditPair":
        return cls(ClipSpec.from_dict(d["source"]), ClipSpec.from_dict(d["target"]), d["instruction"], d["kind"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _choose(rng: np.random.Generator, options) -> str:
    return options[rng.integers(len(options))]


def instruction(kind: str, target: ClipSpec, rng: np.random.Generator, phrasing: str = "train") -> str:
    """An instruction that turns a source into `target` by an edit of `kind`."""
    if kind not in EDIT_KINDS:
        raise ValueError(f"kind must be one of {EDIT_KINDS}; got {kind!r}")
    if phrasing not in SPLITS:
        raise ValueError(f"phrasing must be one of {SPLITS}; got {phrasing!r}")
    key = f"color {target.subject.kind}" if kind == "color" else kind
    text = _choose(rng, INSTRUCTIONS[phrasing][key])
    return fix_articles(text.format(bg=_choose(rng, BACKGROUND_PHRASES[phrasing][target.background]), c=target.subject.color))


def sample_edit_pair(
    rng: np.random.Generator, kind: str | None = None, split: str = "train", phrasing: str = "train", **spec_options
) -> EditPair:
    """A random edit pair. `spec_options` go to `sample_spec` (resolution, fps, duration, sample_rate,
    second_subject_prob)."""
    if kind is not None and kind not in EDIT_KINDS:
        raise ValueError(f"kind must be one of {EDIT_KINDS}; got {kind!r}")
    for name, value in (("split", split), ("phrasing", phrasing)):
        if value not in SPLITS:
            raise ValueError(f"{name} must be one of {SPLITS}; got {value!r}")
    kind = kind or _choose(rng, EDIT_KINDS)
    # The held-out colour edit starts from a training colour; every other held-out edit keeps the pair.
    source = sample_spec(rng, held_out=split == "heldout" and kind != "color", **spec_options)
    subject = source.subject
    if kind == "background":
        target = source.replace(background=_choose(rng, [b for b in BACKGROUNDS if b not in (source.background, "night")]))
    elif kind == "color":
        if split == "heldout":
            color = next(c for k, c in sorted(HELD_OUT_PAIRS) if k == subject.kind)
        else:
            color = _choose(rng, [c for c in COLORS if c != subject.color and not is_held_out(subject.kind, c)])
        target = source.replace(subject=replace(subject, color=color))
    elif kind == "add_rain":
        source = source.replace(weather="clear")
        target = source.replace(weather="rain")
    elif kind == "remove_rain":
        source = source.replace(weather="rain")
        target = source.replace(weather="clear")
    else:  # night
        if source.background == "night":
            source = source.replace(background=_choose(rng, [b for b in BACKGROUNDS if b != "night"]))
        target = source.replace(background="night")
    return EditPair(source, target, instruction(kind, target, rng, phrasing), kind)
