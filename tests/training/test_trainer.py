"""The trainer on tiny random presets: every task takes steps, checkpoints resume exactly, bad settings fail early."""

import json
import shutil
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avgen.models.autoencoder_audio import AudioAutoencoder
from avgen.models.autoencoder_video import TemporalAutoencoder
from avgen.models.text_encoder import build_text_encoder, tiny_text_encoder_config
from avgen.models.transformer_audio import AudioTransformer
from avgen.models.transformer_video import VideoTransformer
from avgen.models.video_features import VideoFeatureEncoder
from avgen.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from avgen.training.latent_cache import LatentCacheDataset, build_latent_cache
from avgen.training.trainer import TrainConfig, learning_rate_at, train

TINY = {
    "vae": TemporalAutoencoder(patch_size=8, dim=8, num_layers=1, latent_channels=4),
    "transformer": VideoTransformer(in_channels=4, num_layers=1, dim=32, ffn_dim=64, num_attention_heads=2, text_dim=32,
                                    pos_embed_size=(64, 4, 4), timestep_embedding_dim=32),
    "audio_vae": AudioAutoencoder(latent_channels=4, dim=16, num_layers=1),
    "audio_transformer": AudioTransformer(in_channels=4, num_layers=1, dim=32, ffn_dim=64, num_attention_heads=2, text_dim=32,
                                          video_dim=16, timestep_embedding_dim=32),
    "video_encoder": VideoFeatureEncoder(block_out_channels=(4, 4, 4, 4), feature_dim=16, norm_num_groups=2),
}


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    root = tmp_path_factory.mktemp("preset")
    for name, module in TINY.items():
        module.save_config(root / name)
    tiny_text_encoder_config(d_model=32, num_layers=1, num_heads=2, d_ff=64).save_pretrained(root / "text_encoder")
    TINY["vae"].save_pretrained(root / "trained_vae")
    TINY["audio_vae"].save_pretrained(root / "trained_audio_vae")
    return root


def config(preset, run_dir, task, **changes):
    values = dict(task=task, run_dir=str(run_dir), preset=str(preset), max_steps=2, batch_size=2, warmup_steps=1,
                  log_every=1, eval_every=1000, checkpoint_every=1000, mixed_precision="no")
    values.update(changes)
    return TrainConfig(**values)


def log_steps(run_dir):
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [r["step"] for r in records if "eval" not in r]


def test_learning_rate_warms_up_then_decays():
    cfg = TrainConfig(task="vae", run_dir="x", learning_rate=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert learning_rate_at(0, cfg) == pytest.approx(0.1)
    assert learning_rate_at(9, cfg) == pytest.approx(1.0)
    assert learning_rate_at(60, cfg) == pytest.approx(0.55)
    assert learning_rate_at(110, cfg) == pytest.approx(0.1)


def test_checkpoint_round_trip_restores_weights_and_optimizer(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path, 7, {"m": model}, optimizer)
    other = torch.nn.Linear(3, 2)
    other_optimizer = torch.optim.AdamW(other.parameters(), lr=0.5)
    assert load_checkpoint(latest_checkpoint(tmp_path), {"m": other}, other_optimizer) == 7
    assert torch.equal(other.weight, model.weight)
    state, restored = optimizer.state_dict(), other_optimizer.state_dict()
    assert restored["param_groups"][0]["lr"] == 0.1
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(torch.as_tensor(restored["state"][0][key]), torch.as_tensor(state["state"][0][key]))


def test_checkpoints_keep_the_newest_and_no_partial_folder(tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"m": model}, optimizer, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-000002", "step-000003"]
    assert latest_checkpoint(tmp_path).name == "step-000003"


def test_vae_task_trains_resumes_and_exports(preset, tmp_path):
    run_dir = tmp_path / "vae"
    options = {"clip_frames": 8, "clip_seconds": 1.0, "resolution": 32}
    train(config(preset, run_dir, "vae", options=options, checkpoint_every=1))
    assert latest_checkpoint(run_dir).name == "step-000002"
    train(config(preset, run_dir, "vae", options=options, max_steps=3))  # resumes: one more step only
    assert log_steps(run_dir) == [1, 2, 3]
    assert (run_dir / "final" / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(run_dir.rglob("*.bin")) and not list(run_dir.rglob("*.pt"))


def test_vae_task_can_train_the_decoder_alone(preset, tmp_path):
    init = tmp_path / "init"
    TINY["vae"].save_pretrained(init / "vae")
    config_path = init / "vae" / "config.json"
    config_path.write_text(config_path.read_text().replace('"scaling_factor": 1.0', '"scaling_factor": 0.375'))
    options = {"clip_frames": 8, "clip_seconds": 1.0, "resolution": 32, "train_encoder": False}
    run_dir = train(config(preset, tmp_path / "vae", "vae", options=options, init_from=str(init), learning_rate=1e-2))
    trained = TemporalAutoencoder.from_pretrained(run_dir / "final" / "vae")
    for name, before in TINY["vae"].state_dict().items():
        after = trained.state_dict()[name]
        # the encoder (hence the latent space other models were trained on) is untouched; the decoder learns
        assert torch.equal(before, after) == name.startswith("encoder."), name
    # the scale the latent-space models were trained with is kept, not re-measured
    from avgen.training.export import export

    report = export(run_dir, "vae", tmp_path / "out" / "vae", calibration_clips=1)
    assert report["scaling_factor"] == 0.375 == TemporalAutoencoder.from_pretrained(tmp_path / "out" / "vae").config.scaling_factor
    assert "whose encoder this run froze" in (tmp_path / "out" / "vae" / "MODEL_CARD.md").read_text()
    with pytest.raises(ValueError, match="train_encoder"):
        train(config(preset, tmp_path / "bad", "vae", options={**options, "train_encoder": "no"}))
    with pytest.raises(ValueError, match="--init-from"):  # a frozen random encoder is no use
        train(config(preset, tmp_path / "bad", "vae", options=options))
    assert not (tmp_path / "bad").exists()


def test_vae_temporal_difference_loss_sees_a_static_reconstruction_of_a_slow_pan(preset, tmp_path):
    from avgen.training.tasks.vae import temporal_difference_loss

    # a textured strip shifting one pixel every 4 frames (a slow pan); its per-pixel error against the
    # first frame held still is small, but its frame-to-frame change is lost entirely
    texture = torch.rand(1, 3, 1, 16, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pan = torch.cat([texture[..., t // 4 : t // 4 + 32] for t in range(16)], dim=2)  # (1, 3, 16, 16, 32)
    static = pan[:, :, :1].expand_as(pan)
    assert temporal_difference_loss(pan, pan) == 0
    assert temporal_difference_loss(static, pan, strides=[4]) > 2 * temporal_difference_loss(static, pan, strides=[1])
    with pytest.raises(ValueError, match="shorter than"):
        temporal_difference_loss(pan[:, :, :4], pan[:, :, :4], strides=[4, 8])
    run_dir = tmp_path / "vae"
    options = {"clip_frames": 8, "clip_seconds": 1.0, "resolution": 32, "temporal_weight": 1.0, "temporal_strides": [1, 2]}
    train(config(preset, run_dir, "vae", options=options))
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert all(r["temporal"] > 0 for r in records if "eval" not in r)


def test_stop_at_step_ends_with_a_checkpoint_on_the_full_schedule_and_a_rerun_goes_on(preset, tmp_path):
    run_dir = tmp_path / "vae"
    options = {"clip_frames": 8, "clip_seconds": 1.0, "resolution": 32}
    train(config(preset, run_dir, "vae", options=options, max_steps=4, warmup_steps=0, stop_at_step=2, learning_rate=1.0, min_lr_ratio=0.0))
    assert log_steps(run_dir) == [1, 2] and latest_checkpoint(run_dir).name == "step-000002"
    assert not (run_dir / "final").exists()  # stopped part-way: export takes the checkpoint
    lrs = [json.loads(line)["lr"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert lrs[1] == pytest.approx(learning_rate_at(1, config(preset, run_dir, "vae", max_steps=4, warmup_steps=0, learning_rate=1.0, min_lr_ratio=0.0)))
    assert lrs[1] > 0.5  # the cosine planned for 4 steps, not decayed to its floor at step 2
    train(config(preset, run_dir, "vae", options=options, max_steps=4, warmup_steps=0, learning_rate=1.0, min_lr_ratio=0.0))
    assert log_steps(run_dir) == [1, 2, 3, 4] and (run_dir / "final" / "vae").is_dir()


def test_a_branch_goes_on_from_another_runs_checkpoint_under_changed_options(preset, tmp_path):
    options = {"clip_frames": 8, "clip_seconds": 1.0, "resolution": 32}
    schedule = dict(max_steps=4, warmup_steps=0, checkpoint_every=1)
    trunk = train(config(preset, tmp_path / "trunk", "vae", options=options, stop_at_step=2, **schedule))
    checkpoint = tmp_path / "step-000002"  # kept aside: the trunk keeps only its newest checkpoints
    shutil.copytree(trunk / "checkpoints" / "step-000002", checkpoint)
    train(config(preset, trunk, "vae", options=options, **schedule))  # the trunk goes on to step 4
    # the same options: the branch continues exactly as the trunk did from step 2
    same = train(config(preset, tmp_path / "same", "vae", options=options, branch_from=str(checkpoint), **schedule))
    assert log_steps(same) == [3, 4]
    final = lambda run: TemporalAutoencoder.from_pretrained(run / "final" / "vae").state_dict()  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(final(trunk).values(), final(same).values()))
    # changed options (what resuming the trunk refuses): from the same step, a different path
    changed = train(config(preset, tmp_path / "changed", "vae", options={**options, "moving_weight": 20, "temporal_weight": 1.0},
                           branch_from=str(checkpoint), **schedule))
    assert log_steps(changed) == [3, 4]
    assert not all(torch.equal(a, b) for a, b in zip(final(trunk).values(), final(changed).values()))
    with pytest.raises(ValueError, match="not both"):
        train(config(preset, tmp_path / "bad", "vae", options=options, branch_from=str(checkpoint), init_from=str(preset)))
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        train(config(preset, tmp_path / "bad", "vae", options=options, branch_from=str(tmp_path)))
    assert not (tmp_path / "bad").exists()


def test_the_cli_ends_a_planned_stop_with_success_and_an_interrupted_run_with_75(preset, tmp_path):
    from avgen.cli import main

    common = ["train", "vae", "--preset", str(preset), "--max-steps", "3", "--batch-size", "2", "--warmup-steps", "0",
              "--mixed-precision", "no", "--option", "clip_frames=8", "--option", "clip_seconds=1.0", "--option", "resolution=32"]
    assert main(common + ["--run-dir", str(tmp_path / "a"), "--stop-at-step", "2"]) == 0  # a recipe's stage ended as planned
    assert main(common + ["--run-dir", str(tmp_path / "b"), "--max-minutes", "0"]) == 75  # stopped by its time limit


def test_resume_refuses_changed_settings(preset, tmp_path):
    run_dir = tmp_path / "vae"
    options = {"clip_frames": 8, "clip_seconds": 1.0, "resolution": 32}
    train(config(preset, run_dir, "vae", options=options, max_steps=1))
    with pytest.raises(ValueError, match="learning_rate"):
        train(config(preset, run_dir, "vae", options=options, learning_rate=1.0))


def test_unknown_task_and_option_fail_before_anything_is_written(preset, tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        train(config(preset, tmp_path / "a", "nope"))
    with pytest.raises(ValueError, match="no option"):
        train(config(preset, tmp_path / "b", "vae", options={"clip_frame": 8}))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_task_options_are_typed_and_the_run_keeps_them_as_given(preset, tmp_path):
    from avgen.training.tasks import VideoAutoencoderOptions, build_task

    given = {"moving_weight": 20, "clip_frames": 8.0, "train_encoder": True}
    task = build_task(config(preset, tmp_path / "a", "vae", options=given))
    assert task.options == VideoAutoencoderOptions(moving_weight=20.0, clip_frames=8)
    assert type(task.options.moving_weight) is float and type(task.options.clip_frames) is int
    assert task.config.options == {"moving_weight": 20, "clip_frames": 8.0, "train_encoder": True}  # config.json's, unchanged
    for bad, match in (({"moving_weight": "x"}, "moving_weight is a number"), ({"clip_frames": 8.5}, "clip_frames is a whole number"),
                       ({"train_encoder": 1}, "train_encoder is true or false")):
        with pytest.raises(ValueError, match=match):
            build_task(config(preset, tmp_path / "a", "vae", options=bad))
    with pytest.raises(ValueError, match=r"no option\(s\) \['clip_frame'\]; it takes \[.*'moving_weight'"):
        build_task(config(preset, tmp_path / "a", "vae", options={"clip_frame": 8}))
    assert build_task(config(preset, tmp_path / "a", "t2v", options={"vae": str(preset / "trained_vae"), "latent_cache": 12})
                      ).options.latent_cache == "12"


def test_audio_vae_task(preset, tmp_path):
    run_dir = tmp_path / "audio"
    train(config(preset, run_dir, "audio-vae", options={"clip_seconds": 0.2, "source_seconds": 1.0}, eval_every=2))
    assert log_steps(run_dir) == [1, 2]
    evals = [json.loads(line)["eval"] for line in (run_dir / "log.jsonl").read_text().splitlines() if "eval" in line]
    assert set(evals[0]) == {"stft", "snr_db", "latent_std"}


def test_audio_vae_decoder_alone_keeps_the_latent_space(preset, tmp_path):
    from avgen.training.export import export

    init = tmp_path / "init"
    TINY["audio_vae"].save_pretrained(init / "audio_vae")
    config_path = init / "audio_vae" / "config.json"
    config_path.write_text(config_path.read_text().replace('"scaling_factor": 1.0', '"scaling_factor": 0.625'))
    options = {"clip_seconds": 0.2, "source_seconds": 1.0, "train_encoder": False}
    run_dir = train(config(preset, tmp_path / "audio", "audio-vae", options=options, init_from=str(init), learning_rate=1e-2))
    trained = AudioAutoencoder.from_pretrained(run_dir / "final" / "audio_vae")
    for name, before in TINY["audio_vae"].state_dict().items():
        # the encoder (the latent space the audio transformer was trained on) is untouched; the decoder learns
        assert torch.equal(before, trained.state_dict()[name]) == name.startswith("encoder."), name
    report = export(run_dir, "audio_vae", tmp_path / "out" / "audio_vae", calibration_clips=1)
    assert report["scaling_factor"] == 0.625 == AudioAutoencoder.from_pretrained(tmp_path / "out" / "audio_vae").config.scaling_factor
    with pytest.raises(ValueError, match="train_encoder"):
        train(config(preset, tmp_path / "bad", "audio-vae", options={**options, "train_encoder": 0}))
    with pytest.raises(ValueError, match="--init-from"):
        train(config(preset, tmp_path / "bad", "audio-vae", options=options))
    assert not (tmp_path / "bad").exists()


def test_t2v_task_on_the_fly_and_from_a_latent_cache(preset, tmp_path):
    vae = TemporalAutoencoder.from_pretrained(preset / "trained_vae")
    cache = build_latent_cache(vae, tmp_path / "cache", num_shards=2, shard_size=2, formats=[(1.0, 8), (2.0, 8)],
                               resolution=32, progress=False)
    build_latent_cache(vae, cache, num_shards=2, shard_size=2, formats=[(1.0, 8), (2.0, 8)], resolution=32, progress=False)
    assert sorted(p.name for p in cache.iterdir()) == ["shard-00000.safetensors", "shard-00001.safetensors"]
    items = iter(LatentCacheDataset(cache, seed=0))
    shapes = {tuple(next(items)["latents"].shape) for _ in range(8)}
    assert shapes == {(4, 2, 4, 4), (4, 4, 4, 4)}  # 8 and 16 frames at 4x, 32 px at 8x
    options = {"vae": str(preset / "trained_vae"), "latent_cache": str(cache), "resolution": 32}
    run_dir = tmp_path / "t2v"
    train(config(preset, run_dir, "t2v", options=options))
    assert log_steps(run_dir) == [1, 2]
    assert (run_dir / "final" / "text_encoder" / "model.safetensors").is_file()
    on_the_fly = {"vae": str(preset / "trained_vae"), "resolution": 32}
    train(config(preset, tmp_path / "t2v-raw", "t2v", options=on_the_fly, max_steps=1, eval_every=1))
    evals = [json.loads(line)["eval"] for line in (tmp_path / "t2v-raw" / "log.jsonl").read_text().splitlines() if "eval" in line]
    assert set(evals[0]) == {"loss", "loss_no_text"}


def test_v2a_task_with_masks_events_and_null_video(preset, tmp_path):
    options = {"audio_vae": str(preset / "trained_audio_vae"), "formats": [[1, 8], [2, 8]], "resolution": 32, "onset_weight": 2.0}
    run_dir = tmp_path / "v2a"
    train(config(preset, run_dir, "v2a", options=options, eval_every=2))
    assert log_steps(run_dir) == [1, 2]
    assert (run_dir / "final" / "video_encoder").is_dir() and not (run_dir / "final" / "event_head").exists()
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert {"flow", "events"} <= set(records[0])
    assert set(next(r["eval"] for r in records if "eval" in r)) == {"loss", "loss_null_video", "loss_onsets", "loss_onsets_null_video"}


def test_v2a_onset_weights_weigh_the_latent_steps_at_each_sync_event(preset):
    from avgen.clock import AVClock
    from avgen.training.tasks import build_task
    from avgen.world.dataset import WorldDataset

    options = {"audio_vae": str(preset / "trained_audio_vae"), "resolution": 32, "onset_weight": 4.0}
    task = build_task(config(preset, "unused", "v2a", options=options))
    stream = WorldDataset(seed=0, resolution=32, formats=[(5, 24)], sample_rate=task.audio_vae.config.sample_rate)
    rng = stream.rng()
    item = next(item for item in (stream.sample(rng) for _ in range(20)) if len(task.sync_events(item)) >= 2)
    weights = task.onset_step_weights(item)
    clock = AVClock(24, task.audio_vae.config.sample_rate, audio_hop=task.audio_vae.config.hop_length)
    assert weights.shape == (clock.audio_latent_steps(item["audio"].shape[-1]),) == (250,)
    for _, time in task.sync_events(item):  # 20 ms steps: the event's own step and the next 3 carry the extra weight
        step = int(time * 50)
        assert (weights[step : step + 4] >= 5.0).all()
    assert set(weights.unique().tolist()) <= {1.0, 5.0, 9.0, 13.0} and (weights == 1).float().mean() > 0.6
    task.options.onset_weight = 0.0
    assert torch.equal(task.onset_step_weights(item), torch.ones(250))


def test_v2a_masked_mean_skips_known_steps_and_normalises_step_weights():
    from avgen.training.tasks import VideoToAudioTask

    error = torch.arange(10.0).repeat(2, 3, 1)  # (B=2, C=3, T=10): step s has error s
    known = torch.zeros(2, 1, 10)
    known[1, :, :5] = 1  # the second sample is given its first 5 steps
    assert torch.allclose(VideoToAudioTask.masked_mean(error, known), torch.tensor([4.5, 7.0]))
    onsets = torch.zeros(2, 10)
    onsets[:, [2, 8]] = 1  # only the onset steps count: the mean of their errors, not a sum
    assert torch.allclose(VideoToAudioTask.masked_mean(error, known, onsets), torch.tensor([5.0, 8.0]))
    assert torch.allclose(VideoToAudioTask.masked_mean(torch.full((2, 3, 10), 0.3), known, 1 + 4 * onsets), torch.full((2,), 0.3))


def test_known_mask_shapes_heads_tails_and_infill():
    from avgen.training.tasks import VideoToAudioTask

    mask = VideoToAudioTask.known_mask(64, 50, prob=1.0, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (64, 1, 50)
    assert (mask.sum(dim=(1, 2)) > 0).all() and (mask.sum(dim=(1, 2)) < 50).all()
    head = mask[:, 0, 0] == 1
    tail = mask[:, 0, -1] == 1
    assert head.any() and tail.any() and (head & tail).any() and (head & ~tail).any()
    assert VideoToAudioTask.known_mask(8, 50, prob=0.0).sum() == 0


def test_export_writes_half_precision_weights_with_a_measured_scaling_factor(preset, tmp_path):
    from avgen.training.export import export

    run_dir = tmp_path / "audio"
    options = {"clip_seconds": 0.2, "source_seconds": 1.0}
    train(config(preset, run_dir, "audio-vae", options=options, max_steps=1, checkpoint_every=1))
    (run_dir / "final").rename(run_dir / "unused")  # export from the checkpoint, as for a run still going
    report = export(run_dir, "audio_vae", tmp_path / "out", calibration_clips=2)
    exported = AudioAutoencoder.from_pretrained(tmp_path / "out", torch_dtype=torch.float16)
    assert next(exported.parameters()).dtype == torch.float16
    assert exported.config.scaling_factor == pytest.approx(1 / report["latent_std"], rel=1e-4)
    assert report["scaling_factor"] != 1.0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["MODEL_CARD.md", "config.json", "diffusion_pytorch_model.safetensors"]
    card = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    assert "steps: 1 of 1" in card and "## Reproduce" in card and "## Metrics" in card
    assert f"avgen train audio-vae --run-dir {run_dir}" in card and "--option clip_seconds=0.2" in card
    assert f"scaling_factor {report['scaling_factor']}" in card


def test_the_model_card_names_the_machine_of_each_piece_of_a_run(preset, tmp_path, monkeypatch):
    from avgen.training import trainer
    from avgen.training.export import export, machine_lines

    run_dir = tmp_path / "audio"
    options = {"clip_seconds": 0.2, "source_seconds": 1.0}
    train(config(preset, run_dir, "audio-vae", options=options, max_steps=3, stop_at_step=1))
    here = json.loads((run_dir / "machines.jsonl").read_text())  # one piece so far: this machine
    assert here["step"] == 0 and here["cpu"] and here["cpus"] == os.cpu_count() and here["gpu"] is None
    assert here["precision"] == "no" and here["processes"] == 1 and set(here["cpu_bf16_units"]) <= {"amx_bf16", "avx512_bf16"}
    elsewhere = {"cpu": "AMD EPYC 7B13", "cpus": 16, "cpu_bf16_units": [], "gpu": "NVIDIA H100 80GB HBM3", "gpus": 1}
    monkeypatch.setattr(trainer, "machine", lambda device: elsewhere)
    train(config(preset, run_dir, "audio-vae", options=options, max_steps=3))  # resumes at step 1 on another machine
    train(config(preset, run_dir, "audio-vae", options=options, max_steps=3))  # nothing left to train: no line
    pieces = [json.loads(line) for line in (run_dir / "machines.jsonl").read_text().splitlines()]
    assert [p["step"] for p in pieces] == [0, 1] and pieces[1]["cpu"] == "AMD EPYC 7B13"
    export(run_dir, "audio_vae", tmp_path / "out", calibration_clips=1)
    card = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    units = f"with bf16 units ({', '.join(here['cpu_bf16_units'])})" if here["cpu_bf16_units"] else "without bf16 units"
    assert (f"- machines:\n  - {here['cpu']}, {here['cpus']} CPUs {units}, no GPU, precision no: steps 0-1\n"
            "  - AMD EPYC 7B13, 16 CPUs without bf16 units, 1 x NVIDIA H100 80GB HBM3, precision no: steps 1-3\n") in card
    assert card.index("## Evaluation") > card.index("- machines:") > card.index("## Training procedure")
    assert machine_lines([], 10) == "- machine: not recorded by the run"  # runs that kept no machines.jsonl
    one = machine_lines([{**pieces[1], "step": 0}, pieces[1]], 10)  # two pieces on one machine: one line
    assert one == "- machine: AMD EPYC 7B13, 16 CPUs without bf16 units, 1 x NVIDIA H100 80GB HBM3, precision no: steps 0-10"


def test_a_new_run_starts_from_exported_weights_and_a_resumed_one_ignores_them(preset, tmp_path):
    from avgen.training.export import export

    options = {"clip_seconds": 0.2, "source_seconds": 1.0}
    first = tmp_path / "first"
    train(config(preset, first, "audio-vae", options=options, max_steps=1))
    export(first, "audio_vae", tmp_path / "weights" / "audio_vae", dtype="fp32", calibration_clips=2)
    exported = AudioAutoencoder.from_pretrained(tmp_path / "weights" / "audio_vae")

    second = tmp_path / "second"  # zero steps: the weights it starts from are what it saves
    train(config(preset, second, "audio-vae", options=options, max_steps=0, init_from=str(tmp_path / "weights")))
    started = AudioAutoencoder.from_pretrained(second / "final" / "audio_vae")
    for (name, a), b in zip(exported.state_dict().items(), started.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(FileNotFoundError, match="holds none of the components"):
        train(config(preset, tmp_path / "third", "audio-vae", options=options, max_steps=0, init_from=str(tmp_path)))


def test_upsampler_task_learns_from_paired_resolutions(preset, tmp_path):
    from avgen.models.upsampler import SpatialUpsampler
    from avgen.training.tasks import PairedResolutions

    SpatialUpsampler(channels=8, num_blocks=1, norm_num_groups=4).save_config(preset / "upsampler")
    item = PairedResolutions(0, 0, 1, resolution=16, seconds=1.0).sample(PairedResolutions(0, 0, 1, 16, 1.0).rng())
    assert item["low"].shape[1:] == (3, 16, 16) and item["high"].shape[1:] == (3, 32, 32)
    assert len(item["low"]) == len(item["high"])
    # the two renders are the same scene: the high one, averaged down, is close to the low one
    down = F.avg_pool2d(item["high"].float(), 2)
    assert (down - item["low"].float()).abs().mean() < 20
    run_dir = tmp_path / "up"
    train(config(preset, run_dir, "upsampler", options={"resolution": 16, "clip_frames": 4, "clip_seconds": 1.0}, eval_every=2))
    evals = [json.loads(line)["eval"] for line in (run_dir / "log.jsonl").read_text().splitlines() if "eval" in line]
    assert set(evals[0]) == {"psnr", "psnr_bicubic"}


def test_edit_task_starts_as_the_text_to_video_model_and_trains(preset, tmp_path):
    from transformers import T5EncoderModel

    from avgen.training.tasks import edit_transformer_from

    transformer = TINY["transformer"]
    torch.manual_seed(0)
    for p in transformer.parameters():
        p.data.normal_(0, 0.1)
    edit = edit_transformer_from(transformer)
    assert edit.config.in_channels == 8 and edit.config.out_channels == 4
    x, source = torch.randn(2, 4, 2, 4, 4), torch.randn(2, 4, 2, 4, 4)
    text = torch.randn(2, 3, 32)
    expected = transformer(x, text, 0.5, 8).sample
    torch.testing.assert_close(edit(torch.cat([x, source], 1), text, 0.5, 8).sample, expected)  # zero-initialised source

    init = tmp_path / "init"
    transformer.save_pretrained(init / "transformer")
    T5EncoderModel(tiny_text_encoder_config(d_model=32, num_layers=1, num_heads=2, d_ff=64)).save_pretrained(init / "text_encoder")
    vae = TemporalAutoencoder.from_pretrained(preset / "trained_vae")
    formats = [(1.0, 8)]
    edits = build_latent_cache(vae, tmp_path / "edits", 1, 2, formats=formats, resolution=32, edits=True, progress=False)
    clips = build_latent_cache(vae, tmp_path / "clips", 1, 2, formats=formats, resolution=32, progress=False)
    item = next(iter(LatentCacheDataset(edits, seed=0)))
    assert item["source"].shape == item["latents"].shape and item["kind"] and item["text"]
    options = {"vae": str(preset / "trained_vae"), "init": str(init), "edit_cache": str(edits), "latent_cache": str(clips),
               "resolution": 32}
    run_dir = tmp_path / "edit"
    train(config(preset, run_dir, "edit", options=options, checkpoint_every=1))
    assert log_steps(run_dir) == [1, 2]

    from avgen.training.export import export

    export(run_dir, "edit_transformer", tmp_path / "out" / "edit_transformer")  # a transformer: no calibration
    card = (tmp_path / "out" / "edit_transformer" / "MODEL_CARD.md").read_text()
    assert f"initialised from: the text-to-video model of {init}" in card  # its init option, not "random"
    assert f"avgen cache-latents {preset / 'trained_vae'} {edits} --edits --shards 1" in card  # the pair cache is reproduced too
    (run_dir / "final").rename(run_dir / "unused")
    export(run_dir, "edit_transformer", tmp_path / "out2" / "edit_transformer")  # from the checkpoint alone
    assert VideoTransformer.from_pretrained(tmp_path / "out2" / "edit_transformer").config.in_channels == 8

    # an edit pipeline as init: its transformer is trained on as it is (no second doubling), and the card says so
    edit_init = tmp_path / "edit_init"
    edit_init.mkdir()
    (tmp_path / "out" / "edit_transformer").rename(edit_init / "transformer")
    export(run_dir, "text_encoder", edit_init / "text_encoder")
    options["init"] = str(edit_init)
    train(config(preset, tmp_path / "edit2", "edit", options=options, max_steps=1))
    export(tmp_path / "edit2", "edit_transformer", tmp_path / "out3" / "edit_transformer")
    card = (tmp_path / "out3" / "edit_transformer" / "MODEL_CARD.md").read_text()
    assert f"initialised from: the edit model of {edit_init}" in card
    continued = VideoTransformer.from_pretrained(tmp_path / "out3" / "edit_transformer")
    assert continued.config.in_channels == 8 and continued.config.out_channels == 4

    # the same edit model continued with standardized text and a frozen text encoder: the edit transformer
    # gets the new shape, calibrated on the text encoder (the text options of train.sh stage 9)
    options.update(train_text_encoder=False, text_standardization=True, pooled_text=True)
    train(config(preset, tmp_path / "edit3", "edit", options=options, max_steps=1))
    standardized = VideoTransformer.from_pretrained(tmp_path / "edit3" / "final" / "edit_transformer")
    assert standardized.config.text_standardization and standardized.config.pooled_text
    assert standardized.config.in_channels == 8 and not torch.equal(standardized.text_scale, torch.ones(32))
    frozen = T5EncoderModel.from_pretrained(tmp_path / "edit3" / "final" / "text_encoder")
    for (name, a), b in zip(T5EncoderModel.from_pretrained(edit_init / "text_encoder").state_dict().items(), frozen.state_dict().values()):
        assert torch.equal(a, b), name


def test_assemble_makes_exported_components_a_loadable_pipeline(tmp_path):
    from avgen.pipelines import AVGenPipeline
    from avgen.training.export import assemble
    from tests.pipelines.tiny import avgen_components

    components = avgen_components()
    for name, module in components.items():
        if name not in ("tokenizer", "scheduler"):
            module.to(torch.float16).save_pretrained(tmp_path / name)  # what `avgen export` writes
    (tmp_path / "upsampler").rename(tmp_path / "no-upsampler")
    (tmp_path / "empty" / "tokenizer").mkdir(parents=True)
    components["tokenizer"].save_pretrained(tmp_path / "empty" / "tokenizer")
    with pytest.raises(FileNotFoundError, match="vae"):
        assemble(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no tokenizer"):  # never silently another tokenizer
        assemble(tmp_path)
    assemble(tmp_path, tokenizer=tmp_path / "empty" / "tokenizer")
    pipe = AVGenPipeline.from_pretrained(tmp_path)
    assert pipe.upsampler is None and pipe.vae is not None
    assert json.loads((tmp_path / "model_index.json").read_text())["audio_transformer"][1] == "AudioTransformer"
    weights = {p.suffix for p in tmp_path.rglob("*") if p.is_file() and p.suffix not in (".json", ".txt")}
    assert weights == {".safetensors"}


def test_assemble_video_only_makes_a_text_to_video_pipeline(tmp_path):
    from avgen.pipelines import TextToVideoPipeline
    from avgen.training.export import assemble
    from tests.pipelines.tiny import avgen_components

    components = avgen_components()
    for name in ("text_encoder", "vae", "tokenizer"):
        components[name].save_pretrained(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="transformer"):
        assemble(tmp_path, video_only=True)
    components["transformer"].save_pretrained(tmp_path / "transformer")
    assemble(tmp_path, dtype="fp32", video_only=True)
    pipe = TextToVideoPipeline.from_pretrained(tmp_path)
    output = pipe("a red ball", num_frames=8, fps=8, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert output.frames.shape[:2] == (1, 8) and output.audio is None


def test_latent_cache_renders_in_worker_processes_with_the_same_result(preset, tmp_path):
    from avgen.training.latent_cache import read_shard

    vae = TemporalAutoencoder.from_pretrained(preset / "trained_vae")
    options = dict(num_shards=1, shard_size=2, formats=[(1.0, 8)], resolution=32, progress=False)
    build_latent_cache(vae, tmp_path / "a", **options)
    build_latent_cache(vae, tmp_path / "b", workers=2, **options)
    a, b = read_shard(tmp_path / "a" / "shard-00000.safetensors"), read_shard(tmp_path / "b" / "shard-00000.safetensors")
    assert torch.equal(a["latents"], b["latents"]) and a["specs"] == b["specs"]


def test_training_on_a_folder_of_mp4s(preset, tmp_path):
    """Users' own videos: a folder of MP4s + metadata.jsonl (here written by the world's evalset writer)."""
    from avgen.world.evalset import write_evalset

    folder = tmp_path / "videos"
    write_evalset(folder, 2, resolution=32, fps=8, duration=1.0)
    run_dir = tmp_path / "t2v-folder"
    options = {"vae": str(preset / "trained_vae"), "resolution": 32}
    train(config(preset, run_dir, "t2v", data=str(folder), options=options))
    assert log_steps(run_dir) == [1, 2]
    run_dir = tmp_path / "vae-folder"
    train(config(preset, run_dir, "vae", data=str(folder), options={"clip_frames": 8, "resolution": 32}))
    assert log_steps(run_dir) == [1, 2]


def test_assemble_an_edit_pipeline_from_its_own_models_and_the_base_pipeline(tmp_path):
    from avgen.pipelines import AVGenPipeline, VideoEditPipeline
    from avgen.training.export import assemble
    from tests.pipelines.test_video_edit import get_dummy_components as edit_components
    from tests.pipelines.tiny import avgen_pipeline

    avgen_pipeline().save_pretrained(tmp_path / "base")
    edit = edit_components()
    for name in ("transformer", "text_encoder"):
        edit[name].save_pretrained(tmp_path / "edit" / name)
    assemble(tmp_path / "edit", edit_base=tmp_path / "base")
    pipe = VideoEditPipeline.from_pretrained(tmp_path / "edit")
    assert pipe.transformer.config.in_channels == 2 * pipe.vae.config.latent_channels
    assert pipe.audio_transformer is not None  # sound can be regenerated
    base = AVGenPipeline.from_pretrained(tmp_path / "base")
    # the base's autoencoder, stored in fp16 like every assembled component
    torch.testing.assert_close(next(pipe.vae.parameters()).float(), next(base.vae.parameters()).half().float())


def test_t2v_curriculum_crops_short_windows_until_full_clips_from(preset):
    from avgen.training.tasks import build_task

    options = {"vae": str(preset / "trained_vae"), "crop_latent_frames": 3, "full_clips_from": 5}
    task = build_task(config(preset, "unused", "t2v", options=options))
    x1 = torch.arange(10.0).reshape(1, 1, 10, 1, 1).expand(2, 4, 10, 2, 2)  # (B, C, F', H', W'), frame index as value
    cropped, start = task.crop(x1, step=4)
    assert cropped.shape == (2, 4, 3, 2, 2)
    first = int(cropped[0, 0, 0, 0, 0])
    assert start == first  # the window's place in the clip, so its frame positions are the clip's
    assert torch.equal(cropped[:, :, :, 0, 0], torch.tensor([first, first + 1, first + 2.0]).expand(2, 4, 3))  # one window
    whole, start = task.crop(x1, step=5)
    assert whole is x1 and start == 0  # the full-length phase
    assert task.crop(x1[:, :, :3], step=0)[0].shape[2] == 3  # clips no longer than the window are kept whole



def test_t2v_image_stage_trains_single_frames_of_each_clip_with_its_caption(preset, monkeypatch):
    from types import SimpleNamespace

    from avgen.training.tasks import build_task, t2v

    options = {"vae": str(preset / "trained_vae"), "image_until": 4, "image_frames": 3, "joint_images": True,
               "crop_latent_frames": 2, "full_clips_from": 10}
    task = build_task(config(preset, "unused", "t2v", options=options))
    # images before image_until, then images on even steps and windows on odd ones until full_clips_from
    assert [task.image_step(step) for step in range(12)] == [True] * 4 + [True, False] * 3 + [False, False]

    seen = {}

    def transformer(x_t, text_states, t, fps, text_mask):
        seen.update(x_t=x_t, text_states=text_states, fps=fps)
        return SimpleNamespace(sample=torch.zeros_like(x_t))

    monkeypatch.setattr(t2v.flow_matching, "sample_flow_time", lambda n, *a, **k: torch.ones(n))  # x_t = the clean image
    modules = {"transformer": transformer, "text_encoder": task.build()["text_encoder"]}
    x1 = torch.arange(2 * 6.0).reshape(2, 1, 6, 1, 1).expand(2, 4, 6, 2, 2)  # clip b, frame f holds 6 b + f
    loss, logs = task.loss(modules, {"latents": x1 / task.vae.config.scaling_factor, "text": ["a red ball", "a blue car"],
                                     "fps": torch.tensor([24, 16])}, step=0)
    assert torch.isfinite(loss) and logs == {"image": 1.0}
    images = seen["x_t"]
    assert images.shape == (6, 4, 1, 2, 2)  # B * k single frames
    values = images[:, 0, 0, 0, 0].round().long().tolist()
    assert all(0 <= v < 6 for v in values[:3]) and all(6 <= v < 12 for v in values[3:])  # each from its own clip
    assert len(set(values[:3])) == 3 and len(set(values[3:])) == 3  # distinct frames of the clip
    assert seen["fps"].tolist() == [24, 24, 24, 16, 16, 16]
    assert torch.equal(seen["text_states"][0], seen["text_states"][2]) and not torch.equal(seen["text_states"][0], seen["text_states"][3])


def test_edit_curriculum_crops_target_and_source_to_the_same_window(preset):
    from avgen.training.tasks import build_task

    options = {"vae": str(preset / "trained_vae"), "crop_latent_frames": 3, "full_clips_from": 5, "edit_cache": "x",
               "latent_cache": "x"}
    task = build_task(config(preset, "unused", "edit", options=options))
    seen = {}
    task.flow_loss = lambda modules, x1, texts, fps, t, noise, source, frame_offset: seen.update(
        x1=x1, source=source, offset=frame_offset) or torch.zeros(len(x1))
    frames = torch.arange(10.0).reshape(1, 1, 10, 1, 1)
    batch = {"latents": frames.expand(2, 4, 10, 2, 2), "source": -frames.expand(2, 4, 10, 2, 2), "text": ["a", "b"],
             "fps": torch.tensor([24, 24])}
    task.loss({}, batch, step=4)
    scale = task.vae.config.scaling_factor
    assert seen["x1"].shape == seen["source"].shape == (2, 4, 3, 2, 2)
    torch.testing.assert_close(seen["source"], -seen["x1"])  # the source's window is the target's
    assert seen["x1"][0, 0, 0, 0, 0] == seen["offset"] * scale  # and the window keeps its frame positions
    task.loss({}, batch, step=5)
    assert seen["x1"].shape[2] == 10 and seen["offset"] == 0  # the full-length phase


def test_t2v_with_a_frozen_text_encoder_and_standardized_text_starts_from_an_older_export(preset, tmp_path):
    """init_from an export without text_standardization: the run calibrates the statistics on the frozen
    text encoder (step 0 is the same function), trains the transformer only, and exports the new shape."""
    from avgen.training.export import export

    options = {"vae": str(preset / "trained_vae"), "resolution": 32}
    first = tmp_path / "first"
    train(config(preset, first, "t2v", options=options, max_steps=1))
    for name in ("transformer", "text_encoder"):
        export(first, name, tmp_path / "weights" / name, dtype="fp32")
    older = VideoTransformer.from_pretrained(tmp_path / "weights" / "transformer")
    text_encoder = build_text_encoder(tiny_text_encoder_config(d_model=32, num_layers=1, num_heads=2, d_ff=64))
    text_encoder = type(text_encoder).from_pretrained(tmp_path / "weights" / "text_encoder")

    new = {**options, "train_text_encoder": False, "text_standardization": True, "pooled_text": True}
    second = tmp_path / "second"
    train(config(preset, second, "t2v", options=new, max_steps=0, init_from=str(tmp_path / "weights")))
    started = VideoTransformer.from_pretrained(second / "final" / "transformer")
    assert started.config.text_standardization and started.config.pooled_text
    assert not torch.equal(started.text_scale, torch.ones(32))  # calibrated on the text encoder's states
    generator = torch.Generator().manual_seed(0)
    inputs = dict(hidden_states=torch.randn(2, 4, 2, 4, 4, generator=generator), timestep=torch.tensor([0.2, 0.7]), fps=8,
                  encoder_hidden_states=torch.randn(2, 6, 32, generator=generator) + started.text_mean,
                  encoder_attention_mask=torch.ones(2, 6))
    with torch.no_grad():
        torch.testing.assert_close(started(**inputs).sample, older(**inputs).sample, atol=1e-5, rtol=1e-4)

    third = tmp_path / "third"
    train(config(preset, third, "t2v", options=new, max_steps=2, init_from=str(tmp_path / "weights")))
    trained = type(text_encoder).from_pretrained(third / "final" / "text_encoder")
    for (name, a), b in zip(text_encoder.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), name  # frozen
    export(third, "text_encoder", tmp_path / "third-export" / "text_encoder", dtype="fp32")
    card = (tmp_path / "third-export" / "text_encoder" / "MODEL_CARD.md").read_text()
    assert card.splitlines()[2].startswith("Frozen (not trained)") and f"{tmp_path / 'weights'}/text_encoder" in card
    assert not torch.equal(VideoTransformer.from_pretrained(third / "final" / "transformer").pooled_text_proj.weight,
                           started.pooled_text_proj.weight)


def test_init_from_an_export_of_another_shape_fails(preset, tmp_path):
    from avgen.training.trainer import load_exported_weights

    other = VideoTransformer(in_channels=4, num_layers=2, dim=32, ffn_dim=64, num_attention_heads=2, text_dim=32,
                             pos_embed_size=(64, 4, 4), timestep_embedding_dim=32)
    other.save_pretrained(tmp_path / "weights" / "transformer")
    with pytest.raises(RuntimeError, match="does not match the run's transformer: missing"):
        load_exported_weights(tmp_path / "weights", {"transformer": VideoTransformer.from_config(TINY["transformer"].config)})


def test_text_encoder_labels_are_what_each_caption_states():
    """Every attribute label of a caption stream item agrees with the world's own parse of its text (a caption may
    leave clear weather unsaid; the label is then "clear", the world's default)."""
    from avgen.training.tasks import CaptionStream, TextEncoderTask
    from avgen.world.captions import parse_caption

    stream = CaptionStream(seed=3, rank=0, world_size=1, fps_tag_prob=0.5)
    rng = np.random.default_rng(3)
    for _ in range(200):
        item = stream.sample(rng)
        labels = {name: TextEncoderTask.ATTRIBUTES[name][i] for name, i in zip(TextEncoderTask.ATTRIBUTES, item["labels"].tolist())}
        parsed = parse_caption(item["text"])
        for name in ("subject", "color", "motion", "direction", "background", "camera"):
            assert parsed[name] == labels[name], (item["text"], name)
        assert parsed.get("speed", "none") == labels["speed"] and parsed.get("weather", "clear") == labels["weather"]
        assert parsed.get("music", "none") == labels["music"], item["text"]
        assert str(parsed.get("fps", "none")) == labels["fps"], item["text"]
        assert (parsed["second"]["subject"] if "second" in parsed else "none") == labels["second"], item["text"]


def test_text_encoder_task_learns_the_attributes_and_exports_a_plain_t5_encoder(preset, tmp_path):
    from transformers import T5EncoderModel

    import shutil
    from pathlib import Path

    bpe_preset = tmp_path / "preset"  # the shipped caption BPE (words are tokens) under a tiny encoder
    shutil.copytree(Path(__file__).resolve().parents[2] / "pipelines" / "tiny" / "tokenizer", bpe_preset / "tokenizer")
    encoder_config = tiny_text_encoder_config(d_model=32, num_layers=1, num_heads=2, d_ff=64)
    encoder_config.vocab_size = 608
    encoder_config.save_pretrained(bpe_preset / "text_encoder")
    run_dir = tmp_path / "text"
    train(config(bpe_preset, run_dir, "text-encoder", max_steps=150, batch_size=16, learning_rate=3e-3, log_every=1, eval_every=150,
                 options={"eval_captions": 32}))
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    losses = [r["attributes"] for r in records if "eval" not in r]
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5]), losses  # the pooled state learns what the caption says
    evaluation = [r["eval"] for r in records if "eval" in r][-1]
    assert {"attribute_accuracy_train", "attribute_accuracy_heldout", "token_accuracy", "shared_direction_energy",
            "pooled_cosine_median", "heldout/camera"} <= set(evaluation)
    assert sorted(p.name for p in (run_dir / "final").iterdir()) == ["text_encoder"]  # the heads are training-only
    T5EncoderModel.from_pretrained(run_dir / "final" / "text_encoder")


def test_text_encoder_task_masks_only_real_tokens(preset, tmp_path):
    from avgen.training.tasks import TextEncoderTask

    task = TextEncoderTask(config(preset, tmp_path / "t", "text-encoder", options={"mask_prob": 0.5}))
    modules = task.build()
    batch = task.collate([{"text": "a red ball", "labels": torch.zeros(11, dtype=torch.long)},
                          {"text": "a blue car drives left across a beach", "labels": torch.zeros(11, dtype=torch.long)}])
    logits, ids = task.masked_tokens(modules, batch["input_ids"], batch["attention_mask"], torch.Generator().manual_seed(0))
    assert len(ids) > 0 and logits.shape == (len(ids), modules["text_encoder"].config.vocab_size)
    assert not (ids == task.tokenizer.pad_token_id).any() and not (ids == task.tokenizer.eos_token_id).any()
    with pytest.raises(ValueError, match="mask_prob"):
        TextEncoderTask(config(preset, tmp_path / "t", "text-encoder", options={"mask_prob": 1.0}))
