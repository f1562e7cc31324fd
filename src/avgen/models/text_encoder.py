"""Text encoder: a small T5 encoder from transformers, reading bytes (ByT5's tokenizer).

Movie Gen concatenates three frozen encoders (UL2, ByT5, MetaCLIP). At our scale no pretrained encoder
can be downloaded, so the shipped model trains a 4-layer T5 encoder jointly with each transformer, on
UTF-8 bytes: the ByT5 tokenizer needs no vocabulary file, never meets an unknown word (held-out
paraphrases stay encodable) and spells out "FPS-16" and colour names exactly, as ByT5 does for Movie Gen.

Any transformers encoder can be swapped in by path (`from_pretrained` of a folder with the text encoder
and its tokenizer, e.g. google/umt5-base); the transformers see only (B, L, text_dim) hidden states and
a (B, L) mask, with text_dim set to the encoder's width.
"""

from __future__ import annotations

import torch
from transformers import ByT5Tokenizer, PreTrainedTokenizerBase, T5Config, T5EncoderModel

# Captions of the world are at most ~220 bytes (99th percentile ~200); +1 for the EOS byte.
DEFAULT_MAX_LENGTH = 256


def tiny_text_encoder_config(d_model: int = 256, num_layers: int = 4, num_heads: int = 4, d_ff: int = 512) -> T5Config:
    """The shipped preset: 2.7M parameters over ByT5's 384-entry byte vocabulary."""
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
    real text length. Longer prompts are truncated to max_length tokens.
    """
    device = device if device is not None else next(text_encoder.parameters()).device
    tokens = tokenizer(
        list(prompts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    input_ids = tokens.input_ids.to(device)  # (B, L)
    attention_mask = tokens.attention_mask.to(device)  # (B, L)
    hidden_states = text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, D)
    if dtype is not None:
        hidden_states = hidden_states.to(dtype)
    return hidden_states, attention_mask
