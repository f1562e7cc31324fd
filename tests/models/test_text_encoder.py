"""The text encoder's tokenizers: the preset's world-caption BPE and the ByT5 byte fallback."""

import json
from pathlib import Path

import numpy as np
import pytest
from transformers import T5Config

from avgen.models.text_encoder import build_text_encoder, byte_tokenizer, encode_prompt, load_tokenizer, train_caption_tokenizer
from avgen.world.captions import caption
from avgen.world.spec import sample_spec

PRESET = Path(__file__).resolve().parents[2] / "pipelines" / "tiny"


def test_shipped_tokenizer_spells_training_words_whole_and_held_out_words_in_pieces():
    tokenizer = load_tokenizer(PRESET)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)  # T5's conventions
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("A purple ball rolls left. Camera pans left.").input_ids)
    assert tokens == ["Ġa", "Ġpurple", "Ġball", "Ġrolls", "Ġleft", ".", "Ġcamera", "Ġpans", "Ġleft", ".", "</s>"]
    held_out = tokenizer("a yellow automobile cruises along the shoreline").input_ids
    assert tokenizer.unk_token_id not in held_out and len(held_out) > 8  # known pieces, never unknown
    assert tokenizer("").input_ids == [1]  # the empty prompt (unconditional branch) is EOS alone
    config = json.loads((PRESET / "text_encoder" / "config.json").read_text())
    assert len(tokenizer) <= config["vocab_size"]


def test_caption_tokenizer_is_deterministic_and_encodes_a_batch(tmp_path):
    rng = np.random.default_rng(0)
    captions = [caption(sample_spec(rng), rng, "train") for _ in range(200)]
    first, second = train_caption_tokenizer(captions, 400), train_caption_tokenizer(captions, 400)
    assert first.get_vocab() == second.get_vocab()
    first.save_pretrained(tmp_path / "tokenizer")
    loaded = load_tokenizer(tmp_path)
    assert loaded(captions[:3]).input_ids == first(captions[:3]).input_ids
    encoder = build_text_encoder(T5Config(vocab_size=len(loaded), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                          is_encoder_decoder=False, use_cache=False))
    states, mask = encode_prompt(loaded, encoder, captions[:3] + [""])
    assert states.shape[:2] == mask.shape and mask.sum(dim=1)[-1] == 1


def test_a_preset_without_a_tokenizer_reads_bytes(tmp_path):
    assert type(load_tokenizer(tmp_path)) is type(byte_tokenizer())


def test_a_tokenizer_larger_than_the_vocabulary_is_refused():
    from avgen.training.tasks import check_vocabulary

    encoder = build_text_encoder(T5Config(vocab_size=300, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                          is_encoder_decoder=False, use_cache=False))
    with pytest.raises(ValueError, match="384 entries"):
        check_vocabulary(byte_tokenizer(), encoder)
