"""Text encoder: the preset's small T5 encoder or any pretrained transformers encoder, and its tokenizer.

Movie Gen concatenates three frozen encoders (UL2, ByT5, MetaCLIP). The shipped model has a 4-layer T5
encoder of its own, trained on world captions (no pretrained encoder could be downloaded at first). Its
tokenizer is a byte-level BPE learned from the world's training captions (`train_caption_tokenizer`,
`avgen train-tokenizer`, committed as pipelines/tiny/tokenizer/, 602 entries): every word of the training
phrasing is one token, and a held-out paraphrase is spelt in smaller pieces, never as an unknown word.
ByT5's byte tokenizer (`byte_tokenizer`, no vocabulary file) remains the default where a preset has no
tokenizer folder (the unit tests' tiny models); the first tiny video model trained on it learnt text
far more slowly (see train_caption_tokenizer).

Any transformers encoder can be used instead, named by folder or hub id (`load_text_encoder`; `avgen train
t2v --option text_encoder=NAME`): a sentence encoder such as all-MiniLM-L6-v2 (BertModel, 384 wide), a T5
encoder (the encoder half of a T5 / mT5 / UMT5 checkpoint), the text half of CLIP or SigLIP. Its tokenizer
comes from the same folder. The transformers see only (B, L, text_dim) hidden states (the encoder's
last_hidden_state) and a (B, L) mask, with text_dim set to the encoder's width (`text_width`: hidden_size,
called d_model in T5's config).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import BPE
import transformers
from transformers import (AutoConfig, AutoTokenizer, ByT5Tokenizer, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase,
                          PreTrainedTokenizerFast, T5Config, T5EncoderModel)

from avgen.models.transformer_video import masked_mean

# Captions of the world are at most ~220 bytes (99th percentile ~200); +1 for the EOS byte.
DEFAULT_MAX_LENGTH = 256


def tiny_text_encoder_config(d_model: int = 256, num_layers: int = 4, num_heads: int = 4, d_ff: int = 512) -> T5Config:
    """The tiny shape (pipelines/tiny/text_encoder has it with the BPE's 608 entries): 2.7M parameters over
    ByT5's 384-entry byte vocabulary."""
    return T5Config(
        vocab_size=384,  # 256 bytes + 3 special tokens, padded as ByT5 does
        d_model=d_model,
        d_kv=d_model // num_heads,
        d_ff=d_ff,
        num_layers=num_layers,
        num_heads=num_heads,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        is_encoder_decoder=False,
        use_cache=False,
    )


def build_text_encoder(config: T5Config | None = None) -> T5EncoderModel:
    return T5EncoderModel(config or tiny_text_encoder_config())


# model_type -> the class of the encoder half, for checkpoints that hold more than an encoder (AutoModel would
# build the whole encoder-decoder, or CLIP's image tower too)
ENCODER_HALVES = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel",
                  "clip": "CLIPTextModel", "siglip": "SiglipTextModel"}


def encoder_class(config: PretrainedConfig) -> type[PreTrainedModel]:
    """The transformers class that runs a text encoder of this config: the encoder half for the families of
    ENCODER_HALVES, else AutoModel's base model (BertModel for a BERT, whatever heads its checkpoint had)."""
    if config.model_type in ENCODER_HALVES:
        return getattr(transformers, ENCODER_HALVES[config.model_type])
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(f"{config.model_type} is an encoder-decoder whose encoder half avgen does not know: name an "
                         f"encoder-only model (e.g. a BERT or T5 encoder)")
    try:
        model_class = transformers.MODEL_MAPPING[type(config)]
    except KeyError:
        raise ValueError(f"transformers has no base model for a {type(config).__name__}") from None
    return model_class[0] if isinstance(model_class, tuple) else model_class


def text_width(config: PretrainedConfig) -> int:
    """The width of an encoder's hidden states, whatever its family calls it (hidden_size; d_model in T5's config)."""
    for key in ("hidden_size", "d_model"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"cannot tell the width of a {type(config).__name__}: it has neither hidden_size nor d_model")


def load_text_encoder(name_or_path: str | Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """A pretrained transformers encoder from a folder or hub id, in `dtype`, from safetensors weights only
    (pickle files are never loaded: unpickling runs code)."""
    config = AutoConfig.from_pretrained(name_or_path)
    return encoder_class(config).from_pretrained(name_or_path, use_safetensors=True, dtype=dtype)


def load_encoder_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer that comes with a pretrained encoder (the same folder or hub id)."""
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{name_or_path} has no tokenizer to go with its text encoder: {error}") from error


def train_caption_tokenizer(captions: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `captions`, in T5's conventions (pad 0, EOS 1 appended, UNK 2).

    Why the shipped models use it instead of raw bytes: a text encoder trained from scratch inside a
    diffusion loss learns slowly from bytes. The tiny video model trained on ByT5 bytes had, after 5000
    steps, the same eval flow loss with and without its caption (0.409 vs 0.413) and drew the wrong
    background for half its prompts. With BPE over the world's training captions, "intersection" or
    "purple" is one token whose embedding alone can carry the attribute, and a caption is ~25 tokens
    instead of ~110 bytes (4x less text-encoder and cross-attention work). Byte-level BPE never meets an
    unknown word: a held-out paraphrase ("automobile", "shoreline") is spelt in smaller known pieces.
    Lowercased, so "Camera" at a sentence start and "camera" inside one are the same token.
    """
    tokenizer = Tokenizer(BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )  # fmt: skip
    tokenizer.train_from_iterator(captions, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def load_tokenizer(preset: str | Path) -> PreTrainedTokenizerBase:
    """The preset's tokenizer (<preset>/tokenizer/, e.g. the world-caption BPE of pipelines/tiny), else ByT5 bytes."""
    folder = Path(preset) / "tokenizer"
    if (folder / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    return byte_tokenizer()


def byte_tokenizer() -> ByT5Tokenizer:
    """ByT5's tokenizer: pad 0, EOS 1, UNK 2, byte b -> b + 3. It is pure code, no file to load."""
    return ByT5Tokenizer()


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase,
    text_encoder: torch.nn.Module,
    prompts: list[str],
    max_length: int = DEFAULT_MAX_LENGTH,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """prompts (B strings) -> hidden states (B, L, text_dim) and attention mask (B, L) of 1/0.

    Padding goes to the longest prompt of the batch (not to max_length): attention cost follows the
    real text length. Longer prompts are truncated to max_length tokens (or fewer, where the tokenizer or
    the encoder's position table stops sooner). Any transformers encoder: its last_hidden_state is used.
    """
    device = device if device is not None else next(text_encoder.parameters()).device
    # never past what the encoder can read (BERT's 512 learned positions, CLIP's 77)
    max_length = min(max_length, tokenizer.model_max_length,
                     getattr(text_encoder.config, "max_position_embeddings", None) or max_length)
    tokens = tokenizer(
        list(prompts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    input_ids = tokens.input_ids.to(device)  # (B, L)
    attention_mask = tokens.attention_mask.to(device)  # (B, L)
    hidden_states = text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, D)
    if dtype is not None:
        hidden_states = hidden_states.to(dtype)
    return hidden_states, attention_mask


def text_state_statistics(states: list[torch.Tensor], masks: list[torch.Tensor]) -> dict[str, float]:
    """How spread the encoder's states are, over batches of states (B, L, D) with masks (B, L) of 1 = token.

    - shared_direction_energy: the share of all token energy along the tokens' mean direction (a collapsed
      encoder puts nearly all of it there: every cross-attention key then looks alike);
    - feature_std_median / mean_norm: the median per-feature std of the tokens against the norm of their mean;
    - pooled_cosine_median: the median cosine between the masked-mean states of two different texts.
    """
    tokens = torch.cat([s[m.bool()] for s, m in zip(states, masks)]).float()  # (T, D)
    mean = tokens.mean(0)
    shared = ((tokens @ mean / mean.norm()) ** 2).sum() / (tokens**2).sum()
    pooled = torch.nn.functional.normalize(torch.cat([masked_mean(s.float(), m) for s, m in zip(states, masks)]), dim=-1)
    cosine = pooled @ pooled.T  # (N, N)
    off_diagonal = cosine[~torch.eye(len(pooled), dtype=torch.bool, device=cosine.device)]
    return {"shared_direction_energy": shared.item(), "feature_std_median": tokens.std(0).median().item(),
            "mean_norm": mean.norm().item(), "pooled_cosine_median": off_diagonal.median().item()}
