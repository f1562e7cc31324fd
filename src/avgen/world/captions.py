"""Captions of world clips, and the parser that reads the prompted attributes back out of any caption.

A caption is built from a template and phrase tables (synonyms), e.g.
    "A red ball bounces to the left across a grassy field during a thunderstorm. Tracking shot. Calm piano music."
    "Pan left over a desert as a blue car drives fast to the right, engine roaring, upbeat music playing."
It always names the main subject with its colour, motion and direction (and speed for the car), the
background and the camera (so that camera adherence is measurable), the music when there is some, and
the second subject when there is one. Clear weather is stated half of the time, so that "nothing said"
also means clear; any other weather is always stated. "No music" is never said.

Two disjoint paraphrase sets: `split="train"` (the training captions) and `split="heldout"` (used only
for evaluation: other templates, other synonyms for every attribute, other clause orders). Only the
colour names and single words like "left" are shared, since they are the vocabulary itself.

FPS: Movie Gen puts the frame rate in the prompt ("FPS-16"). avgen's pipelines take fps as their own
input, so captions carry no fps by default; `fps_tag=True` prefixes "FPS-24. " the Movie Gen way.

`parse_caption` is keyword-based rather than template-based, so it reads every caption of both splits
and reasonable free text ("a woman walking left at night"); attributes it does not find are absent.
"""

from __future__ import annotations

import re

import numpy as np

from avgen.world.spec import ClipSpec, SubjectSpec

SPLITS: tuple[str, ...] = ("train", "heldout")

# Slots of a template:
#   {S}/{s} subject with its article, capitalised/not   {V} finite verb phrase   {I} participle phrase
#   {B} background with a preposition   {b} background noun phrase   {W} " " + weather or ""
#   {W_} ", " + weather or ""   {X} the second subject's clause or ""   {F} ", " + a sound detail or ""
#   {CL} camera label   {CC} camera clause   {CV} camera lead-in   {M} " " + music sentence or ""
#   {MT} ", " + trailing music phrase or ""
TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": (
        "{S} {V} {B}{W}{X}. {CL}.{M}",
        "{CL}. {S} {V} {B}{W}{X}.{M}",  # the camera label prefixed, as Movie Gen does
        "{CV} {b} as {s} {V}{W_}{X}{F}{MT}.",
        "{S} {V} {B}{W} as {CC}{X}.{M}",
        "{S} {I} {B}{W}{X}{F}. {CL}.{M}",  # a noun phrase, as many video captions are
    ),
    "heldout": (
        "{CL}: {s} {I} {B}{W}{X}{MT}.",
        "{Bcap}{W_}, {s} {V}{X}{F}. {CL}.{M}",
        "We see {s} {I} {B}{W}{X}{F}, while {CC}.{M}",
        "{CV} {b}, where {s} {V}{W}{X}{F}{MT}.",
    ),
}

# {c} is the colour.
SUBJECT_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"ball": ("{c} ball",), "car": ("{c} car",), "person": ("woman in a {c} dress", "woman wearing a {c} dress")},
    "heldout": {"ball": ("{c} rubber ball",), "car": ("{c} automobile", "{c} sedan"), "person": ("lady in a {c} gown", "woman dressed in {c}")},
}
VERBS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"bouncing": ("bounces",), "rolling": ("rolls",), "driving": ("drives",), "walking": ("walks",)},
    "heldout": {"bouncing": ("hops",), "rolling": ("trundles",), "driving": ("cruises",), "walking": ("strolls",)},
}
PARTICIPLES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"bouncing": ("bouncing",), "rolling": ("rolling",), "driving": ("driving",), "walking": ("walking",)},
    "heldout": {"bouncing": ("hopping",), "rolling": ("trundling",), "driving": ("cruising",), "walking": ("strolling",)},
}
# Direction = where the subject goes in the frame: "left" means toward the left edge.
DIRECTION_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"left": ("to the left", "left", "leftward"), "right": ("to the right", "right", "rightward")},
    "heldout": {"left": ("from right to left", "toward the left edge"), "right": ("from left to right", "toward the right edge")},
}
SPEED_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"slow": ("slowly",), "fast": ("fast", "quickly")},
    "heldout": {"slow": ("at a leisurely pace", "unhurriedly"), "fast": ("at high speed", "rapidly")},
}
BACKGROUND_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {  # noun phrases
    "train": {
        "grassy field": ("a grassy field", "a meadow"),
        "beach": ("a beach", "a sandy beach"),
        "desert": ("a desert", "desert sand dunes"),
        "night": ("a landscape at night", "a dark, starry night"),
        "city intersection": ("a city intersection", "a busy intersection"),
    },
    "heldout": {
        "grassy field": ("a lawn", "open grassland"),
        "beach": ("the seashore", "a sandy shoreline"),
        "desert": ("arid dunes", "a barren expanse of dunes"),
        "night": ("a landscape after dark", "a moonless plain under the stars"),
        "city intersection": ("a downtown crossroads", "a crosswalk downtown"),
    },
}
PREPOSITIONS: dict[str, tuple[str, ...]] = {"train": ("across", "over"), "heldout": ("along", "through")}
WEATHER_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "clear": ("under a clear sky", "in clear weather"),
        "rain": ("in the rain", "in heavy rain"),
        "thunderstorm": ("during a thunderstorm", "in a thunderstorm"),
        "waterfall": ("beside a waterfall", "next to a waterfall"),
    },
    "heldout": {
        "clear": ("in fair weather", "under cloudless skies"),
        "rain": ("amid a steady downpour", "as rain pours down"),
        "thunderstorm": ("amid thunder and lightning", "as a storm rages"),
        "waterfall": ("by a roaring cascade", "near a tumbling waterfall"),
    },
}
MUSIC_SENTENCES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"calm piano": ("Calm piano music", "Soft piano music plays"), "upbeat": ("Upbeat music", "Energetic music plays")},
    "heldout": {
        "calm piano": ("A soothing piano melody accompanies the scene", "Gentle piano tune"),
        "upbeat": ("A lively dance tune accompanies the scene", "Peppy, rhythmic music"),
    },
}
MUSIC_TRAILS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"calm piano": ("calm piano music playing",), "upbeat": ("upbeat music playing",)},
    "heldout": {"calm piano": ("set to a soothing piano melody",), "upbeat": ("set to a lively dance tune",)},
}
CAMERA_LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "static": ("Static shot", "Fixed camera"),
        "pan left": ("Pan left", "Camera pans left"),
        "pan right": ("Pan right", "Camera pans right"),
        "zoom in": ("Zoom in", "Camera zooms in"),
        "tracking": ("Tracking shot", "Camera tracks the subject"),
    },
    "heldout": {
        "static": ("Locked-off shot", "Stationary camera"),
        "pan left": ("Camera swings left", "Camera sweeps left"),
        "pan right": ("Camera swings right", "Camera sweeps right"),
        "zoom in": ("Push-in shot", "Camera moves closer"),
        "tracking": ("Following shot", "Camera moves along with the subject"),
    },
}
CAMERA_CLAUSES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "static": ("the camera stays still",),
        "pan left": ("the camera pans to the left",),
        "pan right": ("the camera pans to the right",),
        "zoom in": ("the camera zooms in",),
        "tracking": ("the camera tracks along",),
    },
    "heldout": {
        "static": ("the view stays fixed",),
        "pan left": ("the view swings left",),
        "pan right": ("the view swings right",),
        "zoom in": ("the camera pushes in",),
        "tracking": ("the camera follows along",),
    },
}
CAMERA_LEADS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "static": ("Static shot of",),
        "pan left": ("Pan left over",),
        "pan right": ("Pan right over",),
        "zoom in": ("Zoom in on",),
        "tracking": ("Tracking shot of",),
    },
    "heldout": {
        "static": ("A locked-off view of",),
        "pan left": ("The camera sweeps left across",),
        "pan right": ("The camera sweeps right across",),
        "zoom in": ("The camera pushes in on",),
        "tracking": ("A following shot of",),
    },
}
# {np} is the second subject with its article, {v}/{i} its finite/participle verb phrase.
SECOND_CLAUSES: dict[str, tuple[str, ...]] = {
    "train": (", while {np} {v} in the background", ", and {np} {v} in the distance"),
    "heldout": (", with {np} {i} farther away", "; far behind, {np} {v}"),
}
# The main subject's sound (only when there is no second subject, so it cannot be misattributed).
# A rolling ball never leaves the floor and makes no sound, so it gets no detail.
SOUND_DETAILS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"ball": ("thudding at every landing",), "car fast": ("engine roaring",), "car slow": ("engine humming",), "person": ("footsteps tapping",)},
    "heldout": {"ball": ("thumping on each landing",), "car fast": ("motor screaming",), "car slow": ("motor purring",), "person": ("heels clicking",)},
}

# Every phrase table, by name (the tests check coverage and train/held-out disjointness over these).
PHRASE_TABLES: dict[str, dict] = {
    "subject": SUBJECT_PHRASES, "verb": VERBS, "participle": PARTICIPLES, "direction": DIRECTION_PHRASES,
    "speed": SPEED_PHRASES, "background": BACKGROUND_PHRASES, "weather": WEATHER_PHRASES,
    "music": MUSIC_SENTENCES, "music_trail": MUSIC_TRAILS, "camera_label": CAMERA_LABELS,
    "camera_clause": CAMERA_CLAUSES, "camera_lead": CAMERA_LEADS, "sound": SOUND_DETAILS,
}
CLEAR_STATED_PROB = 0.5  # clear weather is said this often, so that "nothing said" also means clear
SOUND_DETAIL_PROB = 0.5


def _choose(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]


def fix_articles(text: str) -> str:
    """"a orange ball" -> "an orange ball" (phrases are written with "a" whatever the colour)."""
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _verb_phrase(subject: SubjectSpec, rng: np.random.Generator, split: str, verbs: dict) -> str:
    """Verb + direction (+ speed for the car, before or after the direction)."""
    words = [_choose(rng, verbs[split][subject.motion]), _choose(rng, DIRECTION_PHRASES[split][subject.direction])]
    if subject.speed is not None:
        speed = _choose(rng, SPEED_PHRASES[split][subject.speed])
        words.insert(1 + int(rng.integers(2)), speed)
    return " ".join(words)


def _subject_phrase(subject: SubjectSpec, rng: np.random.Generator, split: str) -> str:
    return "a " + _choose(rng, SUBJECT_PHRASES[split][subject.kind]).format(c=subject.color)


def _sound_detail(subject: SubjectSpec) -> str | None:
    if subject.kind == "car":
        return f"car {subject.speed}"
    if subject.kind == "ball":
        return "ball" if subject.motion == "bouncing" else None
    return "person"


def caption(spec: ClipSpec, rng: np.random.Generator, split: str = "train", fps_tag: bool = False) -> str:
    """A caption of `spec` from the `split` paraphrase set ("train" or "heldout").

    Deterministic given the rng state. fps_tag=True prefixes "FPS-{fps}. " (Movie Gen style)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    main = spec.subject
    background = _choose(rng, BACKGROUND_PHRASES[split][spec.background])
    weather = None
    if spec.weather != "clear" or rng.random() < CLEAR_STATED_PROB:
        weather = _choose(rng, WEATHER_PHRASES[split][spec.weather])
    second = ""
    if spec.second is not None:
        second = _choose(rng, SECOND_CLAUSES[split]).format(
            np=_subject_phrase(spec.second, rng, split),
            v=_verb_phrase(spec.second, rng, split, VERBS),
            i=_verb_phrase(spec.second, rng, split, PARTICIPLES),
        )
    detail = _sound_detail(main)
    sound = ""
    if spec.second is None and detail is not None and rng.random() < SOUND_DETAIL_PROB:
        sound = ", " + _choose(rng, SOUND_DETAILS[split][detail])
    music, music_trail = "", ""
    if spec.music != "none":
        music = " " + _choose(rng, MUSIC_SENTENCES[split][spec.music]) + "."
        music_trail = ", " + _choose(rng, MUSIC_TRAILS[split][spec.music])
    subject = _subject_phrase(main, rng, split)
    background_pp = _choose(rng, PREPOSITIONS[split]) + " " + background
    text = _choose(rng, TEMPLATES[split]).format(
        S=_capitalise(subject),
        s=subject,
        V=_verb_phrase(main, rng, split, VERBS),
        I=_verb_phrase(main, rng, split, PARTICIPLES),
        B=background_pp,
        Bcap=_capitalise(background_pp),
        b=background,
        W=" " + weather if weather else "",
        W_=", " + weather if weather else "",
        X=second,
        F=sound,
        CL=_choose(rng, CAMERA_LABELS[split][spec.camera]),
        CC=_choose(rng, CAMERA_CLAUSES[split][spec.camera]),
        CV=_choose(rng, CAMERA_LEADS[split][spec.camera]),
        M=music,
        MT=music_trail,
    )
    text = fix_articles(text)
    return f"FPS-{spec.fps}. {text}" if fps_tag else text


def _subject_attributes(subject: SubjectSpec) -> dict:
    attributes = {"subject": subject.kind, "color": subject.color, "motion": subject.motion, "direction": subject.direction}
    if subject.speed is not None:
        attributes["speed"] = subject.speed
    return attributes


def caption_attributes(spec: ClipSpec, fps_tag: bool = False) -> dict:
    """The attributes every caption of `spec` names, in `parse_caption`'s format. (A caption may leave
    clear weather unsaid, in which case its parse has no "weather".)"""
    attributes = _subject_attributes(spec.subject)
    attributes.update(background=spec.background, weather=spec.weather, camera=spec.camera)
    if spec.music != "none":
        attributes["music"] = spec.music
    if spec.second is not None:
        attributes["second"] = _subject_attributes(spec.second)
    if fps_tag:
        attributes["fps"] = spec.fps
    return attributes


# --- parsing ---------------------------------------------------------------------------------------
# Keyword patterns per attribute value, over lower-cased text. Within a category the first value (in
# table order) with a match wins, e.g. "thunder and rain" is a thunderstorm; then every match of the
# category is blanked out, so that e.g. the "left" of "pan left" is not read as the subject's direction.
_CAMERA = {
    "pan left": (r"\bpan(?:s|ning|ned)?\s+(?:to\s+the\s+)?left\b", r"\b(?:swing|sweep)(?:s|ing)?\s+(?:to\s+the\s+)?left\b"),
    "pan right": (r"\bpan(?:s|ning|ned)?\s+(?:to\s+the\s+)?right\b", r"\b(?:swing|sweep)(?:s|ing)?\s+(?:to\s+the\s+)?right\b"),
    "zoom in": (r"\bzoom(?:s|ing|ed)?\s+in\b", r"\bpush(?:es|ing)?[\s-]in\b", r"\bmoves\s+closer\b"),
    "tracking": (r"\btrack(?:s|ing)\b(?:\s+(?:the\s+subject|along))?", r"\bfollow(?:s|ing)?\s+(?:along|shot)\b", r"\bmoves\s+along\s+with\s+the\s+subject\b"),
    "static": (r"\bstatic\b", r"\bfixed\s+camera\b", r"\bstill\s+camera\b", r"\bstays\s+(?:still|fixed)\b", r"\blocked-off\b", r"\bstationary\b"),
}
_MUSIC = {
    "calm piano": (r"\bpiano\b", r"\bcalm\s+music\b"),
    "upbeat": (r"\bupbeat\b", r"\benergetic\b", r"\blively\b", r"\bpeppy\b", r"\bdance\s+(?:tune|music)\b"),
}
_WEATHER = {
    "thunderstorm": (r"\bthunder(?:storms?)?\b", r"\blightning\b", r"\bstorms?\b"),
    "waterfall": (r"\bwaterfalls?\b", r"\bcascad(?:e|es|ing)\b"),
    "rain": (r"\brain(?:s|ing|y|fall)?\b", r"\bdownpour\b"),
    "clear": (r"\bclear\s+(?:sky|skies|day|weather)\b", r"\bfair\s+weather\b", r"\bcloudless\b", r"\bsunny\b"),
}
_BACKGROUND = {
    "city intersection": (r"\bintersections?\b", r"\bcrossroads\b", r"\bcrosswalks?\b", r"\bcity\b", r"\bdowntown\b", r"\bstreets?\b"),
    "beach": (r"\bbeach(?:es)?\b", r"\bsea(?:shore)?\b", r"\bshore(?:line)?\b", r"\bocean\b", r"\bcoast\b"),
    "desert": (r"\bdeserts?\b", r"\bdunes?\b", r"\barid\b"),
    "grassy field": (r"\bgrass(?:y|land)?\b", r"\bmeadows?\b", r"\blawns?\b", r"\bfields?\b"),
    "night": (r"\bnight(?:time)?\b", r"\bafter\s+dark\b", r"\bstar(?:s|ry|lit)\b"),
}
_MOTION = {
    "bouncing": (r"\bbounc(?:e|es|ing)\b", r"\bhop(?:s|ping)?\b"),
    "rolling": (r"\broll(?:s|ing)?\b", r"\btrundl(?:e|es|ing)\b"),
    "driving": (r"\bdriv(?:e|es|ing)\b", r"\bcruis(?:e|es|ing)\b"),
    "walking": (r"\bwalk(?:s|ing)?\b", r"\bstroll(?:s|ing)?\b"),
}
_SPEED = {
    "slow": (r"\bslow(?:ly)?\b", r"\bleisurely\b", r"\bunhurriedly\b"),
    "fast": (r"\bfast\b", r"\bquickly\b", r"\brapidly\b", r"\bhigh\s+speed\b"),
}
_COLOR = r"(?P<color>red|orange|yellow|green|blue|purple|white)"
_SUBJECT = {
    "ball": rf"\b(?:{_COLOR}(?:-colou?red)?\s+)?(?:(?:rubber|toy|bouncy)\s+)?balls?\b",
    "car": rf"\b(?:{_COLOR}(?:-colou?red)?\s+)?(?:(?:sports|toy)\s+)?(?:cars?|automobiles?|sedans?|vehicles?)\b",
    "person": rf"\b(?:woman|lady|girl|person)\b(?:\s+(?:in|wearing|dressed\s+in|clad\s+in)\s+(?:an?\s+)?{_COLOR}\b)?",
}
_DIRECTION_FROM_TO = r"\bfrom\s+(?:the\s+)?(?:left|right)\s+to\s+(?:the\s+)?(left|right)\b"
_DIRECTION = r"\b(left|right)(?:wards?)?\b"
_FPS = (r"\bfps[-\s]?(\d+)\b", r"\b(\d+)\s*fps\b")


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _take(text: str, table: dict[str, tuple[str, ...]]) -> tuple[str | None, str]:
    """(first value of `table` with a match, text with every match of the table blanked out)."""
    found = None
    for value, patterns in table.items():
        for pattern in patterns:
            for match in re.finditer(pattern, text):
                found = found or value
                text = _blank(text, *match.span())
    return found, text


def _earliest(text: str, table: dict[str, tuple[str, ...]]) -> str | None:
    """The value whose match comes first in `text` (within one subject's words)."""
    hits = [(match.start(), value) for value, patterns in table.items() for pattern in patterns for match in re.finditer(pattern, text)]
    return min(hits)[1] if hits else None


def _direction(text: str) -> str | None:
    match = re.search(_DIRECTION_FROM_TO, text) or re.search(_DIRECTION, text)
    return match.group(1) if match else None


def _mentions(text: str) -> list[tuple[int, int, str, str | None]]:
    """Subject mentions (start, end, kind, colour) in reading order, one per kind (its first)."""
    found = [(m.start(), m.end(), kind, m.group("color")) for kind, pattern in _SUBJECT.items() for m in re.finditer(pattern, text)]
    mentions, kinds = [], set()
    for mention in sorted(found):
        if mention[2] not in kinds:
            kinds.add(mention[2])
            mentions.append(mention)
    return mentions


def parse_caption(text: str) -> dict:
    """Recover the prompted attributes of a caption (either split) or of reasonable free text.

    Returns a flat dict with the keys found among: subject (kind), color, motion, direction, speed,
    background, weather, music, camera, fps, and second (a dict of the same subject keys). The main
    subject is the first one mentioned; each subject's motion, direction and speed are read from the
    words between its mention and the next subject's."""
    work = text.lower()
    attributes: dict = {}
    for pattern in _FPS:
        match = re.search(pattern, work)
        if match:
            attributes["fps"] = int(match.group(1))
            work = _blank(work, *match.span())
            break
    # Scene words first, blanked, so that what is left around each subject is its own motion words.
    for key, table in (("camera", _CAMERA), ("music", _MUSIC), ("weather", _WEATHER), ("background", _BACKGROUND)):
        value, work = _take(work, table)
        if value is not None:
            attributes[key] = value
    mentions = _mentions(work)
    for index, (_, end, kind, color) in enumerate(mentions[:2]):
        words = work[end : mentions[index + 1][0] if index + 1 < len(mentions) else len(work)]
        subject = {"subject": kind, "color": color, "motion": _earliest(words, _MOTION), "direction": _direction(words)}
        if kind == "car":
            subject["speed"] = _earliest(words, _SPEED)
        subject = {key: value for key, value in subject.items() if value is not None}
        if index == 0:
            attributes.update(subject)
        else:
            attributes["second"] = subject
    return attributes
