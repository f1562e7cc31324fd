import pytest
import torch

from avgen.clock import AVClock
from avgen.models import TemporalAutoencoder, outlier_penalty_loss


def get_dummy_vae(**overrides):
    """4x in time, 4x4 in space, 4 latent channels, two blocks a side: the preset's structure, small."""
    config = dict(latent_channels=4, patch_size=4, temporal_patch_size=4, dim=16, num_layers=2)
    config.update(overrides)
    torch.manual_seed(0)
    return TemporalAutoencoder(**config).eval()


def get_dummy_video(frames=9, batch=1):
    generator = torch.Generator().manual_seed(1)
    return torch.rand(batch, 3, frames, 16, 16, generator=generator) * 2 - 1


def test_compression_ratios_and_clock():
    vae = get_dummy_vae()
    assert vae.temporal_compression_ratio == 4
    assert vae.spatial_compression_ratio == 4
    clock = AVClock(fps=24, sample_rate=16000, video_time_compression=vae.temporal_compression_ratio)
    assert clock.video_latent_frames(9) == 3


@torch.no_grad()
def test_shapes_with_frame_count_not_divisible_by_temporal_factor():
    vae = get_dummy_vae()
    video = get_dummy_video(frames=9)
    posterior = vae.encode(video).latent_dist
    assert posterior.mean.shape == (1, 4, 3, 4, 4)  # 9 frames padded to 12 -> 3 latent frames
    assert posterior.sample().shape == (1, 4, 3, 4, 4)
    assert vae.decode(posterior.mode()).sample.shape == (1, 3, 12, 16, 16)
    assert vae.decode(posterior.mode(), num_frames=9).sample.shape == (1, 3, 9, 16, 16)
    assert vae(video).sample.shape == video.shape
    # the padding repeats the last frame
    padded = torch.cat([video, video[:, :, -1:].repeat(1, 1, 3, 1, 1)], dim=2)
    torch.testing.assert_close(vae.encode(padded).latent_dist.mean, posterior.mean)


def test_invalid_inputs_raise():
    vae = get_dummy_vae()
    with pytest.raises(ValueError, match="divisible by 4"):
        vae.encode(torch.zeros(1, 3, 4, 18, 16))
    with pytest.raises(ValueError, match="decode to"):
        vae.decode(torch.zeros(1, 4, 3, 4, 4), num_frames=8)  # 3 latent frames are 9..12 frames
    with pytest.raises(ValueError, match="tile_overlap"):
        vae.decode(torch.zeros(1, 4, 6, 4, 4), tile_latent_frames=2, tile_overlap=2)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        TemporalAutoencoder(kernel_size=4)
    with pytest.raises(ValueError, match="patch_size must be at least 1"):
        TemporalAutoencoder(patch_size=0)


@torch.no_grad()
def test_tiled_decode_blends_exactly():
    """With temporal convs set to the identity each latent frame decodes on its own, so any tiling must
    reproduce the untiled decode exactly: this checks the tile bounds and the cross-fade weights."""
    vae = get_dummy_vae()
    for block in vae.decoder.blocks:  # depthwise (D, 1, 3, 1, 1): the middle tap only
        torch.nn.init.zeros_(block.temporal.weight)
        block.temporal.weight.data[:, 0, 1] = 1
        torch.nn.init.zeros_(block.temporal.bias)
    z = torch.randn(1, 4, 10, 4, 4, generator=torch.Generator().manual_seed(2))
    full = vae.decode(z).sample
    for tile, overlap in [(4, 2), (3, 1), (3, 0), (9, 5)]:
        tiled = vae.decode(z, tile_latent_frames=tile, tile_overlap=overlap, num_frames=38).sample
        torch.testing.assert_close(tiled, full[:, :, :38], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_tiled_decode_approaches_untiled():
    """Random weights use the whole temporal receptive field (about 10 latent frames here); the tiled
    decode gets closer as tiles and overlaps grow, and is the untiled one when a tile covers the clip."""
    vae = get_dummy_vae()
    z = torch.randn(1, 4, 12, 4, 4, generator=torch.Generator().manual_seed(2))
    full = vae.decode(z).sample
    errors = [
        (vae.decode(z, tile_latent_frames=tile, tile_overlap=overlap).sample - full).abs().mean()
        for tile, overlap in [(4, 1), (6, 3), (9, 6)]
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05 * full.std()
    torch.testing.assert_close(vae.decode(z, tile_latent_frames=12).sample, full)


@torch.no_grad()
def test_tiled_decode_activation_size_is_bounded():
    """The largest activation inside the decoder depends on the tile, not on the clip length."""
    vae = get_dummy_vae()
    largest = []
    hooks = [m.register_forward_hook(lambda m, i, o: largest.append(o.numel())) for m in vae.decoder.modules()]

    def peak(latent_frames, tile):
        largest.clear()
        vae.decode(torch.randn(1, 4, latent_frames, 4, 4), tile_latent_frames=tile, tile_overlap=1)
        return max(largest)

    assert peak(6, tile=3) == peak(24, tile=3)
    assert peak(24, tile=None) == 8 * peak(6, tile=3)  # untiled grows with the clip
    for hook in hooks:
        hook.remove()


def test_outlier_penalty_loss():
    z = torch.rand(2, 4, 3, 4, 4) * 2 - 1  # uniform: every point within sqrt(3) std of the mean
    assert outlier_penalty_loss(z, r=3.0) == 0
    spiked = z.clone()
    spiked[0, :, 1, 2, 2] = 50.0
    spiked.requires_grad_(True)
    loss = outlier_penalty_loss(spiked, r=3.0)
    assert loss > 0
    loss.backward()
    assert spiked.grad[0, :, 1, 2, 2].abs().sum() > 0  # it pulls the outlier in


def test_gradient_flows_to_every_parameter():
    vae = get_dummy_vae().train()
    video = get_dummy_video(frames=8)
    posterior = vae.encode(video).latent_dist
    reconstruction = vae.decode(posterior.sample(generator=torch.Generator().manual_seed(0))).sample
    loss = (reconstruction - video).abs().mean() + 1e-6 * posterior.kl().sum(-1).mean()
    loss = loss + outlier_penalty_loss(posterior.mean)
    loss.backward()
    for name, parameter in vae.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


@torch.no_grad()
def test_bf16_autocast_forward():
    vae = get_dummy_vae()
    video = get_dummy_video(frames=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reconstruction = vae(video).sample
    assert reconstruction.shape == video.shape and torch.isfinite(reconstruction).all()
    torch.testing.assert_close(reconstruction.float(), vae(video).sample, atol=0.1, rtol=0.1)


@torch.no_grad()
def test_save_and_load_safetensors_without_unpickling(tmp_path, monkeypatch):
    vae = get_dummy_vae(scaling_factor=0.7)
    vae.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("from_pretrained called torch.load")

    monkeypatch.setattr(torch, "load", no_unpickling)
    loaded = TemporalAutoencoder.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.config.scaling_factor == 0.7
    video = get_dummy_video(frames=8)
    torch.testing.assert_close(loaded(video).sample, vae(video).sample)


def test_posterior_starts_nearly_deterministic():
    from avgen.models.autoencoder_video import INITIAL_LOGVAR

    posterior = get_dummy_vae().encode(torch.randn(1, 3, 4, 16, 16)).latent_dist
    assert abs(posterior.logvar.mean().item() - INITIAL_LOGVAR) < 1.0
