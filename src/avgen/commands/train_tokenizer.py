"""`avgen train-tokenizer OUT`: the preset's byte-level BPE (avgen.models.text_encoder.train_caption_tokenizer),
learnt from world captions and edit instructions of the training phrasing only (never held-out words or pairs),
and OUT/vocabulary.json (avgen.vocabulary), which the training copies into the pipeline folder with the tokenizer."""

from __future__ import annotations

import argparse

import numpy as np

from avgen.models.text_encoder import train_caption_tokenizer
from avgen.vocabulary import write_vocabulary
from avgen.world.captions import caption
from avgen.world.edits import sample_edit_pair
from avgen.world.spec import sample_spec


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out_dir", help="where to write the tokenizer (e.g. pipelines/tiny/tokenizer)")
    parser.add_argument("--captions", type=int, default=20000, help="training-phrasing world captions to learn from")
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    captions = [caption(sample_spec(rng, held_out=False), rng, "train", fps_tag=bool(i % 2)) for i in range(args.captions)]
    captions += [sample_edit_pair(rng, split="train", phrasing="train").instruction for _ in range(args.captions // 4)]  # the edit model's
    tokenizer = train_caption_tokenizer(captions, args.vocab_size)
    tokenizer.save_pretrained(args.out_dir)
    write_vocabulary(args.out_dir)  # the words it learnt from, beside it: the pipelines name a prompt's other words
    lengths = [len(ids) for ids in tokenizer(captions[:1000]).input_ids]
    print(f"tokenizer of {len(tokenizer)} entries written to {args.out_dir}; {np.mean(lengths):.1f} tokens per caption (max {max(lengths)})")
    return 0
