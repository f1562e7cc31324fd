from pathlib import Path

import pytest
import torch

from avgen.models.video_features import VideoFeatureEncoder

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def get_dummy_encoder():
    torch.manual_seed(0)
    return VideoFeatureEncoder(frame_size=16, block_out_channels=(8, 8), feature_dim=12, norm_num_groups=4)


def test_one_feature_per_frame_at_any_input_size():
    encoder = get_dummy_encoder()
    for height in (16, 24):
        assert encoder(torch.rand(2, 3, 7, height, height) * 2 - 1).shape == (2, 7, 12)
    with pytest.raises(ValueError, match=r"\(B, 3, F, H, W\)"):
        encoder(torch.rand(2, 7, 3, 16, 16))


@torch.no_grad()
def test_a_one_frame_flash_changes_only_its_neighbourhood():
    """Every frame is seen (no temporal stride): a flash in frame k changes features k-1..k+2 only
    (k-1 and k+1 through the centred temporal conv, k+1 also through its frame difference)."""
    encoder = get_dummy_encoder()
    video = torch.zeros(1, 3, 12, 16, 16)
    flashed = video.clone()
    flashed[:, :, 5] = 1.0
    changed = (encoder(flashed) - encoder(video)).abs().amax(dim=-1)[0] > 1e-5  # (F,)
    assert changed.tolist() == [index in (4, 5, 6, 7) for index in range(12)]


def test_gradient_flows_and_bf16():
    encoder = get_dummy_encoder()
    video = torch.rand(1, 3, 4, 16, 16)
    encoder(video).square().mean().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.any(), name
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(encoder(video)).all()


@torch.no_grad()
def test_save_and_load_safetensors(tmp_path):
    encoder = get_dummy_encoder()
    encoder.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = VideoFeatureEncoder.from_pretrained(tmp_path, use_safetensors=True)
    video = torch.rand(1, 3, 3, 16, 16)
    torch.testing.assert_close(loaded(video), encoder(video))


def test_tiny_preset_feeds_the_audio_transformer():
    encoder_config = VideoFeatureEncoder.load_config(PIPELINES / "tiny" / "video_encoder")
    transformer_config = VideoFeatureEncoder.load_config(PIPELINES / "tiny" / "audio_transformer")
    assert encoder_config["feature_dim"] == transformer_config["video_dim"]
    assert encoder_config["frame_size"] == 64  # the default model's native resolution
