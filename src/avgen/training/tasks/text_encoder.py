"""`avgen train text-encoder`: the text encoder alone, before (and frozen during) the transformers' training."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from avgen.models.text_encoder import load_tokenizer, text_state_statistics
from avgen.models.transformer_video import masked_mean
from avgen.training.tasks.base import EVAL_SEED, Task, preset_text_encoder
from avgen.world.captions import caption
from avgen.world.dataset import SampledStream
from avgen.world.spec import sample_spec


@dataclasses.dataclass
class TextEncoderOptions:
    mlm_weight: float = 1.0
    mask_prob: float = 0.25
    fps_tag_prob: float = 0.25
    max_text_length: int = 256
    eval_captions: int = 256


class TextEncoderTask(Task):
    """The text encoder alone, before (and frozen during) the transformers' training, as Movie Gen's are.

    Why: trained only through the video model's flow loss, the tiny T5 collapsed (96 % of every token's energy
    along one shared direction, pooled states of different captions at cosine 0.995; benchmarks/bench_text_path.py),
    so one word moved the video velocity by ~0.5 %. Two objectives on world captions keep every word visible:
    - attributes: from the masked mean of the token states, linear heads name each attribute the caption states
      (subject, colour, motion, direction, speed, background, weather, music, camera, second subject, fps tag).
      The world's ground truth is the label; this is a captioning objective run backwards (text -> attributes),
      which forces the pooled state to separate every value the video model must render.
    - masked tokens (`mlm_weight`): `mask_prob` of the tokens are replaced by <unk> (never produced by the
      byte-level BPE) and predicted from the other tokens' states, so the token states keep word identity and
      context (not only what the attribute heads ask for).
    The heads are training-only; `final/text_encoder` is a plain transformers T5EncoderModel.
    """

    Options = TextEncoderOptions
    ATTRIBUTES = {
        "subject": ("ball", "car", "person"),
        "color": ("red", "orange", "yellow", "green", "blue", "purple", "white"),
        "motion": ("bouncing", "rolling", "driving", "walking"),
        "direction": ("left", "right"),
        "speed": ("none", "slow", "fast"),
        "background": ("grassy field", "beach", "desert", "night", "city intersection"),
        "weather": ("clear", "rain", "thunderstorm", "waterfall"),
        "music": ("none", "calm piano", "upbeat"),
        "camera": ("static", "pan left", "pan right", "zoom in", "tracking"),
        "second": ("none", "ball", "car", "person"),
        "fps": ("none", "8", "12", "16", "24"),
    }
    MASK_TOKEN = "<unk>"

    def __init__(self, config):
        super().__init__(config)
        self.tokenizer = load_tokenizer(config.preset)
        self.mask_id = self.tokenizer.convert_tokens_to_ids(self.MASK_TOKEN)
        if self.mask_id is None:
            raise ValueError(f"the preset's tokenizer has no {self.MASK_TOKEN} token to mask with")
        if not 0 < self.options.mask_prob < 1:
            raise ValueError(f"mask_prob must be in (0, 1); got {self.options.mask_prob}")
        self.eval_sets = None

    @classmethod
    def attribute_labels(cls, spec, fps_tag: bool) -> torch.Tensor:
        """(len(ATTRIBUTES),) long: the index of each attribute's value in ATTRIBUTES (\"none\" where absent)."""
        values = {"subject": spec.subject.kind, "color": spec.subject.color, "motion": spec.subject.motion,
                  "direction": spec.subject.direction, "speed": spec.subject.speed or "none", "background": spec.background,
                  "weather": spec.weather, "music": spec.music, "camera": spec.camera,
                  "second": spec.second.kind if spec.second is not None else "none",
                  "fps": str(spec.fps) if fps_tag else "none"}
        return torch.tensor([cls.ATTRIBUTES[name].index(values[name]) for name in cls.ATTRIBUTES])

    def build(self):
        text_encoder = preset_text_encoder(self.config.preset, self.tokenizer)
        width = text_encoder.config.d_model
        heads = torch.nn.ModuleDict({name: torch.nn.Linear(width, len(values)) for name, values in self.ATTRIBUTES.items()})
        return {"text_encoder": text_encoder, "attribute_heads": heads,
                "token_head": torch.nn.Linear(width, text_encoder.config.vocab_size)}

    def dataset(self, seed, rank, world_size):
        return CaptionStream(seed, rank, world_size, self.options.fps_tag_prob)

    def collate(self, items):
        tokens = self.tokenizer([item["text"] for item in items], padding="longest", truncation=True,
                                max_length=self.options.max_text_length, return_tensors="pt")
        return {"input_ids": tokens.input_ids, "attention_mask": tokens.attention_mask,  # (B, L)
                "labels": torch.stack([item["labels"] for item in items])}  # (B, A)

    def attribute_logits(self, modules, states, attention_mask) -> dict[str, torch.Tensor]:
        """Each attribute head on the masked mean of the token states (B, L, D)."""
        pooled = masked_mean(states.float(), attention_mask)  # (B, D)
        return {name: head(pooled) for name, head in modules["attribute_heads"].items()}  # name -> (B, classes)

    def masked_tokens(self, modules, input_ids, attention_mask, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, vocab) at the N masked positions and their true ids (N,). EOS and padding are never masked."""
        maskable = attention_mask.bool() & (input_ids != self.tokenizer.eos_token_id)
        chosen = maskable & (torch.rand(input_ids.shape, generator=generator).to(input_ids.device) < self.options.mask_prob)
        corrupted = input_ids.masked_fill(chosen, self.mask_id)
        states = modules["text_encoder"](input_ids=corrupted, attention_mask=attention_mask).last_hidden_state  # (B, L, D)
        return modules["token_head"](states[chosen].float()), input_ids[chosen]

    def token_states(self, modules, batch) -> torch.Tensor:
        return modules["text_encoder"](input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state  # (B, L, D)

    def loss(self, modules, batch, step):
        logits = self.attribute_logits(modules, self.token_states(modules, batch), batch["attention_mask"])
        attributes = torch.stack([F.cross_entropy(logits[name], batch["labels"][:, i]) for i, name in enumerate(self.ATTRIBUTES)]).mean()
        token_logits, token_ids = self.masked_tokens(modules, batch["input_ids"], batch["attention_mask"])
        tokens = F.cross_entropy(token_logits, token_ids) if len(token_ids) else attributes.new_zeros(())
        return attributes + self.options.mlm_weight * tokens, {"attributes": attributes.item(), "tokens": tokens.item()}

    def evaluate(self, modules):
        """On `eval_captions` fixed captions of the training phrasing and as many of the held-out phrasing (seed
        outside training): attribute accuracy (mean over attributes), masked-token accuracy, and the collapse
        figures of avgen.models.text_encoder.text_state_statistics."""
        device = next(modules["text_encoder"].parameters()).device
        if self.eval_sets is None:
            count = self.options.eval_captions
            self.eval_sets = {}
            for split in ("train", "heldout"):
                stream = CaptionStream(EVAL_SEED, 0, 1, self.options.fps_tag_prob, split=split)
                rng = np.random.default_rng(EVAL_SEED)
                self.eval_sets[split] = self.to_device(self.collate([stream.sample(rng) for _ in range(count)]), device)
        results, states = {}, {}
        for split, batch in self.eval_sets.items():
            states[split] = self.token_states(modules, batch)
            logits = self.attribute_logits(modules, states[split], batch["attention_mask"])
            correct = {name: (logits[name].argmax(-1) == batch["labels"][:, i]).float().mean().item() for i, name in enumerate(self.ATTRIBUTES)}
            results[f"attribute_accuracy_{split}"] = float(np.mean(list(correct.values())))
            if split == "heldout":  # per attribute where paraphrases differ most
                results.update({f"heldout/{name}": value for name, value in correct.items()})
        batch = self.eval_sets["train"]
        token_logits, token_ids = self.masked_tokens(modules, batch["input_ids"], batch["attention_mask"], torch.Generator().manual_seed(0))
        results["token_accuracy"] = (token_logits.argmax(-1) == token_ids).float().mean().item()
        results.update(text_state_statistics([states["train"]], [batch["attention_mask"]]))
        return results


class CaptionStream(SampledStream):
    """World captions of the training phrasing (never a held-out pair) with the attributes each one names:
    {"text": str, "labels": (len(TextEncoderTask.ATTRIBUTES),) class indices}. Text only: no rendering."""

    def __init__(self, seed: int, rank: int, world_size: int, fps_tag_prob: float, split: str = "train"):
        super().__init__()
        self.seed, self.rank, self.fps_tag_prob, self.split = seed, rank, fps_tag_prob, split

    def sample(self, rng: np.random.Generator) -> dict:
        spec = sample_spec(rng, held_out=False)
        fps_tag = bool(rng.random() < self.fps_tag_prob)
        return {"text": caption(spec, rng, self.split, fps_tag), "labels": TextEncoderTask.attribute_labels(spec, fps_tag)}
