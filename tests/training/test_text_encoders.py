"""A pretrained transformers encoder named by folder (here a tiny random BERT with its WordPiece tokenizer, standing
in for all-MiniLM-L6-v2) as the frozen text encoder: `avgen train t2v --option text_encoder=FOLDER`, then export,
assemble and generate with the pipeline loaded by from_pretrained."""

import json
import re

import numpy as np
import pytest
import torch
from transformers import BartConfig, BertConfig, BertModel, BertTokenizerFast, T5Config, T5EncoderModel

from avgen.models.autoencoder_video import TemporalAutoencoder
from avgen.models.text_encoder import encode_prompt, encoder_class, load_encoder_tokenizer, load_text_encoder, text_width
from avgen.models.transformer_video import VideoTransformer
from avgen.training.trainer import TrainConfig, train
from avgen.world.captions import caption
from avgen.world.spec import sample_spec

WIDTH = 24  # the tiny BERT's hidden size (all-MiniLM-L6-v2: 384)


def save_tiny_bert(folder, width=WIDTH, dropout=0.1):
    """A 1-layer random BertModel (safetensors) and a WordPiece tokenizer over the words of 200 world captions, saved
    together in `folder` as a hub checkpoint is. Dropout 0.1 as in the real checkpoints, so a test sees it is off."""
    rng = np.random.default_rng(0)
    words = sorted({w for _ in range(200) for w in re.findall(r"[a-z]+|[^\sa-z]", caption(sample_spec(rng), rng, "train").lower())})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(folder, model_max_length=512)  # from vocab.txt alone
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=width, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=2 * width, max_position_embeddings=64, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """The trainer tests' tiny preset with a transformer that reads WIDTH-wide text; its own text encoder (a T5)
    is what the option text_encoder replaces."""
    root = tmp_path_factory.mktemp("preset")
    TemporalAutoencoder(patch_size=8, dim=8, num_layers=1, latent_channels=4).save_pretrained(root / "trained_vae")
    transformer = dict(in_channels=4, num_layers=1, dim=32, ffn_dim=64, num_attention_heads=2, pos_embed_size=(64, 4, 4),
                       timestep_embedding_dim=32)
    VideoTransformer(**transformer, text_dim=WIDTH).save_config(root / "transformer")
    VideoTransformer(**transformer, text_dim=32).save_config(root / "wide" / "transformer")
    T5Config(vocab_size=384, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_heads=2, is_encoder_decoder=False).save_pretrained(
        root / "text_encoder")
    return root


def config(preset, run_dir, **changes):
    values = dict(task="t2v", run_dir=str(run_dir), preset=str(preset), max_steps=2, batch_size=2, warmup_steps=1,
                  log_every=1, eval_every=1000, checkpoint_every=1000, mixed_precision="no")
    values.update(changes)
    return TrainConfig(**values)


def test_the_encoder_class_and_width_of_each_family():
    assert encoder_class(BertConfig()) is BertModel
    assert encoder_class(T5Config()) is T5EncoderModel  # the encoder half of an encoder-decoder checkpoint
    with pytest.raises(ValueError, match="encoder-only"):
        encoder_class(BartConfig())
    assert text_width(BertConfig(hidden_size=24)) == 24 and text_width(T5Config(d_model=16)) == 16


def test_a_pretrained_encoder_loads_in_float32_from_safetensors_only(bert, tmp_path):
    encoder = load_text_encoder(bert)
    assert type(encoder) is BertModel and encoder.dtype == torch.float32 and not encoder.training
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    encoder.config.save_pretrained(pickled)
    torch.save(encoder.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):  # never unpickled
        load_text_encoder(pickled)


def test_bert_states_masks_and_the_position_limit(bert):
    tokenizer, encoder = load_encoder_tokenizer(bert), load_text_encoder(bert)
    states, mask = encode_prompt(tokenizer, encoder, ["a red ball bounces on a grassy field.", ""])
    assert states.shape == (2, mask.shape[1], WIDTH)
    assert mask[1].sum() == 2 and tokenizer.unk_token_id not in tokenizer("a red ball").input_ids  # [CLS] [SEP]
    states, mask = encode_prompt(tokenizer, encoder, ["red " * 200], max_length=256)
    assert mask.shape == (1, 64)  # cut at the encoder's 64 positions, not at max_length


def test_t2v_trains_with_a_frozen_pretrained_encoder_then_exports_assembles_and_generates(preset, bert, tmp_path):
    from avgen.pipelines import TextToVideoPipeline
    from avgen.training.export import assemble, export
    from avgen.training.tasks import build_task

    options = {"vae": str(preset / "trained_vae"), "resolution": 32, "text_encoder": str(bert), "train_text_encoder": False,
               "text_standardization": True}
    run_dir = tmp_path / "run"
    train(config(preset, run_dir, options=options, stop_at_step=1, checkpoint_every=1))  # a checkpoint holds the BERT
    train(config(preset, run_dir, options=options, stop_at_step=0, checkpoint_every=1, eval_every=2))  # resumed to the end
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "eval" not in r] == [1, 2] and "loss" in records[-1]["eval"]
    original, trained = BertModel.from_pretrained(bert), BertModel.from_pretrained(run_dir / "final" / "text_encoder")
    for (name, a), b in zip(original.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), name  # frozen
    assert not torch.equal(VideoTransformer.from_pretrained(run_dir / "final" / "transformer").text_scale, torch.ones(WIDTH))

    task = build_task(config(preset, tmp_path / "unused", options=options))
    modules = task.build()
    modules["text_encoder"].train()  # as the trainer leaves every module before a step
    first, second = (task.encode(modules, ["a red ball bounces."], "cpu")[0] for _ in range(2))
    assert torch.equal(first, second)  # a frozen encoder runs without its dropout

    weights = tmp_path / "weights"
    for name in ("transformer", "text_encoder"):
        export(run_dir, name, weights / name, dtype="fp32")
    TemporalAutoencoder.from_pretrained(preset / "trained_vae").save_pretrained(weights / "vae")
    card = (weights / "text_encoder" / "MODEL_CARD.md").read_text()
    assert f"the weights of the pretrained encoder {bert}, unchanged" in card
    assemble(weights, dtype="fp32", video_only=True)  # the tokenizer found beside the exported encoder
    assert json.loads((weights / "model_index.json").read_text())["text_encoder"] == ["transformers", "BertModel"]
    pipe = TextToVideoPipeline.from_pretrained(weights)
    assert type(pipe.text_encoder) is BertModel and pipe.text_encoder.dtype == torch.float32
    assert pipe.tokenizer("a red ball").input_ids == load_encoder_tokenizer(bert)("a red ball").input_ids
    pipe.set_progress_bar_config(disable=True)
    output = pipe("a red ball bounces.", num_frames=8, fps=8, height=32, width=32, num_inference_steps=2,
                  generator=torch.Generator().manual_seed(0))
    assert output.frames.shape == (1, 8, 32, 32, 3) and np.isfinite(output.frames).all()


def test_a_transformer_of_another_text_width_is_refused(preset, bert, tmp_path):
    options = {"vae": str(preset / "trained_vae"), "resolution": 32, "text_encoder": str(bert), "train_text_encoder": False}
    wide = tmp_path / "wide-preset"
    (wide / "transformer").mkdir(parents=True)
    (wide / "transformer" / "config.json").write_text((preset / "wide" / "transformer" / "config.json").read_text())
    with pytest.raises(ValueError, match=f"text_dim 32 != the width {WIDTH} of the text encoder"):
        train(config(wide, tmp_path / "run", options=options))
