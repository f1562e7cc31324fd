"""What a model's text was: the vocabulary that comes with its weights, and the note on prompt words outside it.

The shipped models learnt from the procedural world's captions alone, so "a golden retriever running through
Paris" gives a world clip. The vocabulary is a property of the model, not of this code: `vocabulary.json` beside
the tokenizer (<model>/tokenizer/vocabulary.json), written by `write_vocabulary` where the tokenizer is trained
(`avgen train-tokenizer`, whose folder the training copies into the pipeline). It holds
  - "captions": every word of the world's captions, in the training and the held-out phrasings (the held-out
    paraphrases are the world's own test of the text encoder; the BPE spells them in known pieces);
  - "instructions": the words of the edit instructions of both phrasings (VideoEditPipeline's prompts);
  - "known": per category (subjects, colours, ... camera, edits) a label and a phrase of the training phrasing:
    the note's list and the Space's chips.
A folder without the file (weights trained on other data, the unit tests' byte tokenizer) is not checked.

Pipelines check their prompts before any compute (`checks_vocabulary` on `__call__`): a `VocabularyWarning` (a
UserWarning) names the words, or with `strict_vocabulary=True` an `UnknownWordsError` (a ValueError) is raised.
The commands print the warning as one `note: ...` line (`vocabulary_notes`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

VOCABULARY_FILE = "vocabulary.json"
SHIPPED_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"  # models in here are "the shipped <name> model"
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # letters (any script), with inner apostrophes; digits are no words
_SLOT = re.compile(r"\{[^}]*\}")  # a template's {slot}


class VocabularyWarning(UserWarning):
    """Prompt words the model was never trained on."""


class UnknownWordsError(ValueError):
    """`strict_vocabulary=True` and the prompt has words the model was never trained on."""


def words(text: str) -> list[str]:
    """The words of `text` as the check reads them: runs of letters ("Locked-off" -> "Locked", "off")."""
    return _WORD.findall(text)


# --- the world's vocabulary ---------------------------------------------------------------------------------
def _texts(table) -> list[str]:
    """Every string in a (nested) phrase table."""
    if isinstance(table, str):
        return [table]
    values = table.values() if isinstance(table, dict) else table
    return [text for value in values for text in _texts(value)]


def _vocabulary_words(texts: Iterable[str]) -> list[str]:
    return sorted({word.lower() for text in texts for word in words(_SLOT.sub(" ", text))})


def world_vocabulary(edits: bool = True) -> dict:
    """The vocabulary of a model trained on the world's captions (avgen.world.captions) and, with `edits`, its edit
    instructions (avgen.world.edits): every word their templates and phrase tables produce, in both phrasings."""
    from avgen.world import captions, spec
    from avgen.world import edits as edit_pairs

    caption_texts = _texts(captions.PHRASE_TABLES) + _texts(captions.TEMPLATES) + _texts(captions.SECOND_CLAUSES)
    caption_texts += _texts(captions.PREPOSITIONS) + list(spec.COLORS) + ["an", "FPS"]  # fix_articles' "an"; fps_tag
    train = {name: table["train"] for name, table in captions.PHRASE_TABLES.items()}
    first = lambda name: {label: phrases[0] for label, phrases in train[name].items()}  # noqa: E731
    plain = lambda phrase: " ".join(_SLOT.sub("", phrase).split())  # "woman in a {c} dress" -> "woman in a dress"  # noqa: E731
    known = {
        "subjects": {plain(phrase): "a " + plain(phrase) for phrase in first("subject").values()},
        "colours": {color: color for color in spec.COLORS},
        "motions": first("verb"),
        "directions": first("direction"),
        "speeds": first("speed"),
        "backgrounds": {label: f"{captions.PREPOSITIONS['train'][0]} {phrase}" for label, phrase in first("background").items()},
        "weather": first("weather"),
        "music": {label: phrase + "." for label, phrase in first("music").items()},
        "camera": {label: phrase + "." for label, phrase in first("camera_label").items()},
    }
    if edits:
        examples = [phrases[0].format(bg="a beach", c="blue") for phrases in edit_pairs.INSTRUCTIONS["train"].values()]
        known["edits"] = {example: example for example in examples}
    return {
        "description": "the words of the text this model was trained on (avgen.vocabulary); prompts are checked against it",
        "scope": "the procedural world only",
        "captions": _vocabulary_words(caption_texts),
        "instructions": _vocabulary_words(_texts(edit_pairs.INSTRUCTIONS)) if edits else [],
        "known": known,
    }


def write_vocabulary(folder: str | Path, vocabulary: dict | None = None) -> Path:
    """Write `vocabulary` (default: world_vocabulary(), captions and edit instructions) as <folder>/vocabulary.json,
    beside the tokenizer in `folder`."""
    path = Path(folder) / VOCABULARY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(vocabulary or world_vocabulary(), indent=1, ensure_ascii=False) + "\n")
    return path


# --- a model's vocabulary -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vocabulary:
    captions: frozenset[str]
    instructions: frozenset[str]
    known: dict  # category -> {label: a phrase of the training phrasing}
    model: str  # "the shipped tiny model"
    scope: str

    def unknown(self, texts: Iterable[str] = (), instructions: Iterable[str] = ()) -> list[str]:
        """The words of `texts` (prompts) and `instructions` (edit instructions) outside the vocabulary, each once,
        as first written."""
        found: dict[str, str] = {}
        for group, allowed in ((texts, self.captions), (instructions, self.captions | self.instructions)):
            for text in group:
                for word in words(text):
                    if word.lower() not in allowed:
                        found.setdefault(word.lower(), word)
        return list(found.values())

    def known_line(self, edits: bool = False) -> str:
        """ "Known subjects: ball, car, woman in a dress; colours: red, ...; camera: static, ..." (and the edits')."""
        parts = [f"{name}: {', '.join(labels)}" for name, labels in self.known.items() if edits or name != "edits"]
        return "Known " + "; ".join(parts) if parts else ""

    def note(self, texts: Iterable[str] = (), instructions: Iterable[str] = ()) -> str | None:
        """One line naming the unknown words and what the model knows, or None when every word is known."""
        instructions = list(instructions)
        unknown = self.unknown(texts, instructions)
        if not unknown:
            return None
        quoted = ", ".join(f'"{word}"' for word in unknown)
        return f"{self.model} knows {self.scope}; not understood: {quoted}. {self.known_line(bool(instructions))}".rstrip()


@functools.lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> Vocabulary:
    data = json.loads(Path(path).read_text())
    folder = Path(path).parent.parent  # <model>/tokenizer/vocabulary.json
    shipped = folder.resolve().parent == SHIPPED_WEIGHTS
    return Vocabulary(
        captions=frozenset(data.get("captions", ())),
        instructions=frozenset(data.get("instructions", ())),
        known={name: dict(entries) for name, entries in data.get("known", {}).items()},
        model=f"the shipped {folder.name} model" if shipped else f'the model "{folder.name}"',
        scope=data.get("scope", "the text it was trained on only"),
    )


def load_vocabulary(folder: str | Path | None) -> Vocabulary | None:
    """The vocabulary in `folder` (a tokenizer folder, or a model folder with tokenizer/), or None without one."""
    if not folder:
        return None
    for path in (Path(folder) / VOCABULARY_FILE, Path(folder) / "tokenizer" / VOCABULARY_FILE):
        if path.is_file():
            return _load(str(path), path.stat().st_mtime_ns)
    return None


def vocabulary_of(tokenizer) -> Vocabulary | None:
    """The vocabulary beside a loaded tokenizer (the folder it was loaded from), or None."""
    return load_vocabulary(getattr(tokenizer, "name_or_path", None))


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [text for text in value if isinstance(text, str)] if isinstance(value, (list, tuple)) else []


def check_vocabulary(vocabulary: Vocabulary | None, texts=(), instructions=(), strict: bool = False, stacklevel: int = 2) -> str | None:
    """Warn (VocabularyWarning) or, when `strict`, raise UnknownWordsError about unknown words; returns the note."""
    note = vocabulary.note(_strings(texts), _strings(instructions)) if vocabulary is not None else None
    if note is not None:
        if strict:
            raise UnknownWordsError(f"strict_vocabulary: {note}")
        warnings.warn(note, VocabularyWarning, stacklevel=stacklevel + 1)
    return note


_checked = contextvars.ContextVar("avgen_vocabulary_checked", default=False)


def checks_vocabulary(texts: tuple[str, ...] = ("prompt",), instructions: tuple[str, ...] = ()) -> Callable:
    """Decorate a pipeline's `__call__`: before it runs, the arguments named in `texts` (prompts) and
    `instructions` are checked against the vocabulary beside `self.tokenizer`, and `__call__` gains the keyword
    `strict_vocabulary` (False: warn; True: raise UnknownWordsError). A pipeline called by another one (a stage
    of AVGenPipeline or VideoEditPipeline) is not checked again."""

    def decorate(call: Callable) -> Callable:
        signature = inspect.signature(call)

        @functools.wraps(call)
        def wrapper(self, *args, strict_vocabulary: bool = False, **kwargs):
            if _checked.get():
                return call(self, *args, **kwargs)
            try:
                given = signature.bind_partial(self, *args, **kwargs).arguments
            except TypeError:  # the call itself will say what is wrong
                return call(self, *args, **kwargs)
            vocabulary = vocabulary_of(getattr(self, "tokenizer", None))
            pick = lambda names: [text for name in names for text in _strings(given.get(name))]  # noqa: E731
            check_vocabulary(vocabulary, pick(texts), pick(instructions), strict_vocabulary, stacklevel=2)
            token = _checked.set(True)
            try:
                return call(self, *args, **kwargs)
            finally:
                _checked.reset(token)

        strict = inspect.Parameter("strict_vocabulary", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool)
        wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), strict])
        return wrapper

    return decorate


@contextlib.contextmanager
def vocabulary_notes(report: Callable[[str], None] | None = None):
    """Within the block, each VocabularyWarning is handed to `report` as one "note: ..." line (default: printed to
    stderr), every time; other warnings show as usual."""
    report = report or (lambda line: print(line, file=sys.stderr))
    with warnings.catch_warnings():
        warnings.simplefilter("always", VocabularyWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, VocabularyWarning):
                report(f"note: {message}")
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
