from pathlib import Path

import pytest
import torch

from avgen.clock import AVClock
from avgen.models.autoencoder_audio import AudioAutoencoder, kl_loss, multi_resolution_stft_loss

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


def get_dummy_vae(**overrides):
    config = dict(latent_channels=4, hop_length=8, ratios=(2, 4), num_filters=4)
    config.update(overrides)
    torch.manual_seed(0)
    return AudioAutoencoder(**config)


@pytest.mark.parametrize("num_samples", [64, 63, 57])
def test_shapes_and_lengths_follow_the_clock(num_samples):
    vae = get_dummy_vae()
    audio = torch.randn(2, 1, num_samples)
    posterior = vae.encode(audio).latent_dist
    steps = AVClock(fps=24, sample_rate=16000, audio_hop=vae.config.hop_length).audio_latent_steps(num_samples)
    assert posterior.mean.shape == posterior.logvar.shape == (2, 4, steps)
    assert vae.decode(posterior.mode()).sample.shape == (2, 1, steps * 8)
    assert vae.decode(posterior.mode(), num_samples=num_samples).sample.shape == (2, 1, num_samples)
    reconstruction, _ = vae(audio)
    assert reconstruction.shape == audio.shape


def test_invalid_inputs_raise():
    vae = get_dummy_vae()
    with pytest.raises(ValueError, match="product of ratios"):
        get_dummy_vae(hop_length=16)
    with pytest.raises(ValueError, match=r"must be \(B, 1, S\)"):
        vae.encode(torch.randn(2, 64))
    with pytest.raises(ValueError, match="decode to 33..40 samples"):
        vae.decode(torch.randn(1, 4, 5), num_samples=41)


def test_losses_and_gradient_flow():
    vae = get_dummy_vae()
    audio = torch.randn(2, 1, 2048)
    assert multi_resolution_stft_loss(audio, audio) == pytest.approx(0.0, abs=1e-6)
    assert multi_resolution_stft_loss(0.5 * audio, audio) > 0.1
    reconstruction, posterior = vae(audio)
    kl = kl_loss(posterior)
    assert kl.shape == (2,) and (kl >= 0).all()
    (multi_resolution_stft_loss(reconstruction, audio, fft_sizes=(64, 256)) + kl.mean()).backward()
    for name, parameter in vae.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


@torch.no_grad()
def test_bf16_autocast_forward():
    vae = get_dummy_vae()
    audio = torch.randn(1, 1, 256)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reconstruction, _ = vae(audio, sample_posterior=False)
    assert torch.isfinite(reconstruction).all()
    torch.testing.assert_close(reconstruction.float(), vae(audio, sample_posterior=False)[0], atol=0.05, rtol=0.05)


@torch.no_grad()
def test_save_and_load_safetensors(tmp_path):
    vae = get_dummy_vae(scaling_factor=0.7)
    vae.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = AudioAutoencoder.from_pretrained(tmp_path, use_safetensors=True)
    assert loaded.config.scaling_factor == 0.7 and loaded.config.hop_length == 8
    audio = torch.randn(1, 1, 64)
    torch.testing.assert_close(loaded(audio, sample_posterior=False)[0], vae(audio, sample_posterior=False)[0])


def test_tiny_preset():
    config = AudioAutoencoder.load_config(PIPELINES / "tiny" / "audio_vae")
    vae = AudioAutoencoder.from_config(config)
    clock = AVClock(fps=24, sample_rate=vae.config.sample_rate, audio_hop=vae.config.hop_length)
    assert clock.audio_latent_rate() == vae.latent_rate == 50
    assert clock.audio_latent_steps(clock.num_samples(240)) == 500  # 10 s at 24 fps


def test_posterior_starts_nearly_deterministic():
    from avgen.models.autoencoder_video import INITIAL_LOGVAR

    vae = AudioAutoencoder(num_filters=4, latent_channels=4)
    posterior = vae.encode(torch.randn(1, 1, 3200) * 0.1).latent_dist
    assert abs(posterior.logvar.mean().item() - INITIAL_LOGVAR) < 1.0


def test_output_depends_on_the_input_at_initialisation():
    # with PyTorch's default init the ~20 unnormalised convs lost the input and every clip decoded alike
    torch.manual_seed(0)
    vae = AudioAutoencoder(num_filters=8, latent_channels=4)
    quiet, loud = torch.randn(1, 1, 3200) * 0.01, torch.randn(1, 1, 3200) * 0.3
    with torch.no_grad():
        out_quiet, out_loud = vae(quiet, sample_posterior=False)[0], vae(loud, sample_posterior=False)[0]
    assert out_loud.std() > 5 * out_quiet.std()
