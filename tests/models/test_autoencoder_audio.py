import math
from pathlib import Path

import pytest
import torch

from avgen.clock import AVClock
from avgen.models.autoencoder_audio import AudioAutoencoder, _istft, _stft, kl_loss, multi_resolution_stft_loss

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
HOP, N_FFT = 8, 32


def get_dummy_vae(**overrides):
    config = dict(latent_channels=4, hop_length=HOP, n_fft=N_FFT, dim=16, num_layers=1)
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
    assert vae.decode(posterior.mode()).sample.shape == (2, 1, steps * HOP)
    assert vae.decode(posterior.mode(), num_samples=num_samples).sample.shape == (2, 1, num_samples)
    reconstruction, _ = vae(audio)
    assert reconstruction.shape == audio.shape


def test_invalid_config_and_inputs_raise():
    vae = get_dummy_vae()
    with pytest.raises(ValueError, match="larger than hop_length"):
        get_dummy_vae(n_fft=HOP)  # no overlap: the summed window is 0 at frame starts
    with pytest.raises(ValueError, match="by an even number"):
        get_dummy_vae(n_fft=31)
    with pytest.raises(ValueError, match="audio_channels must be 1"):
        get_dummy_vae(audio_channels=2)
    with pytest.raises(ValueError, match="num_layers must be >= 1"):
        get_dummy_vae(num_layers=0)
    with pytest.raises(ValueError, match=r"must be \(B, 1, S\)"):
        vae.encode(torch.randn(2, 64))
    with pytest.raises(ValueError, match=r"z must be \(B, 4, T\)"):
        vae.decode(torch.randn(1, 3, 5))
    with pytest.raises(ValueError, match="decode to 33..40 samples"):
        vae.decode(torch.randn(1, 4, 5), num_samples=41)
    with pytest.raises(ValueError, match="decode to 33..40 samples"):
        vae.decode(torch.randn(1, 4, 5), num_samples=32)


def test_default_n_fft_is_four_hops():
    vae = AudioAutoencoder(latent_channels=4, hop_length=10, dim=16, num_layers=1)
    assert vae.config.n_fft is None and vae.n_fft == 40
    assert vae.encoder.conv_in.in_channels == 21 and vae.decoder.out.out_features == 2 * 21


@pytest.mark.parametrize("num_samples", [80, 77])
def test_istft_inverts_stft(num_samples):
    audio = torch.randn(3, num_samples)
    spectrum = _stft(audio, N_FFT, HOP)
    assert spectrum.shape == (3, N_FFT // 2 + 1, -(-num_samples // HOP)) and spectrum.dtype == torch.complex64
    reconstruction = _istft(spectrum, N_FFT, HOP, num_samples)
    assert reconstruction.shape == audio.shape
    assert (reconstruction - audio).abs().max() < 1e-4
    # and it is not the identity on anything: a changed spectrum gives other audio
    assert (_istft(spectrum * 0.5, N_FFT, HOP, num_samples) - audio).abs().max() > 0.1


def test_decoder_head_turns_exact_log_magnitude_and_phase_back_into_the_audio():
    vae = get_dummy_vae()
    audio = torch.randn(2, 1, 75) * 0.5
    spectrum = _stft(audio[:, 0], N_FFT, HOP)  # (B, bins, T)
    h = torch.cat([spectrum.abs().clamp_min(1e-12).log(), spectrum.angle()], dim=1)  # what a perfect decoder outputs
    torch.testing.assert_close(vae._to_audio(h, num_samples=75), audio, atol=1e-4, rtol=0)


@pytest.mark.parametrize("step", [0, 3, 6, 9])
def test_latent_step_t_is_centred_on_its_hop(step):
    # an impulse inside samples [t * hop, (t + 1) * hop) weighs most in STFT frame t (AVClock's convention)
    for offset in (1, HOP // 2, HOP - 1):
        audio = torch.zeros(1, 10 * HOP)
        audio[0, step * HOP + offset] = 1.0
        energy = _stft(audio, N_FFT, HOP).abs().square().sum(dim=1)[0]  # (T,)
        assert energy.argmax().item() == step


@torch.no_grad()
def test_receptive_field_is_bounded_so_pieces_encode_alike():
    vae = get_dummy_vae(num_layers=2)
    audio = torch.randn(1, 1, 60 * HOP)
    whole = vae.encode(audio).latent_dist.mean  # (1, C, 60)
    piece = vae.encode(audio[..., 20 * HOP :]).latent_dist.mean  # steps 20..59
    # frames reach 1.5 steps; 3 convs of kernel 7 reach 9 more: steps >= 20 + 11 agree
    torch.testing.assert_close(piece[..., 11:], whole[..., 31:], atol=1e-5, rtol=1e-5)
    assert (piece[..., 0] - whole[..., 20]).abs().max() > 1e-3  # near the cut they differ (the test can fail)


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


def test_a_few_training_steps_reduce_the_loss():
    vae = get_dummy_vae(dim=32, num_layers=2)
    t = torch.arange(1024) / 16000
    audio = torch.stack([0.5 * torch.sin(2 * torch.pi * 440 * t), 0.3 * torch.sin(2 * torch.pi * 1500 * t)])[:, None]
    optimizer = torch.optim.Adam(vae.parameters(), lr=3e-3)

    def loss_now():
        reconstruction, posterior = vae(audio, sample_posterior=False)
        return multi_resolution_stft_loss(reconstruction, audio, fft_sizes=(64, 256)) + 1e-4 * kl_loss(posterior).mean()

    with torch.no_grad():
        before = loss_now().item()
    for _ in range(30):
        optimizer.zero_grad()
        loss_now().backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_now().item()
    assert after < 0.7 * before, (before, after)


@torch.no_grad()
def test_bf16_autocast_forward():
    vae = get_dummy_vae()
    audio = torch.randn(1, 1, 256) * 0.3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reconstruction, posterior = vae(audio, sample_posterior=False)
        decoded = vae.decode(posterior.mode(), num_samples=256).sample
    assert reconstruction.dtype == decoded.dtype == torch.float32  # the inverse STFT ran in float32
    assert torch.isfinite(reconstruction).all()
    reference = vae(audio, sample_posterior=False)[0]
    assert reference.abs().max() > 1e-3
    torch.testing.assert_close(reconstruction, reference, atol=0.05 * reference.abs().max().item(), rtol=0.05)


@torch.no_grad()
def test_half_precision_weights_run():
    vae = get_dummy_vae().to(torch.bfloat16)
    audio = torch.randn(1, 1, 64)
    z = vae.encode(audio.to(torch.bfloat16)).latent_dist.mode()
    assert z.dtype == torch.bfloat16
    assert torch.isfinite(vae.decode(z, num_samples=64).sample).all()


@torch.no_grad()
def test_save_and_load_safetensors(tmp_path):
    vae = get_dummy_vae(scaling_factor=0.7)
    vae.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = AudioAutoencoder.from_pretrained(tmp_path, use_safetensors=True)
    assert loaded.config.scaling_factor == 0.7 and loaded.config.hop_length == HOP and loaded.n_fft == N_FFT
    audio = torch.randn(1, 1, 64)
    torch.testing.assert_close(loaded(audio, sample_posterior=False)[0], vae(audio, sample_posterior=False)[0])


def test_tiny_preset():
    config = AudioAutoencoder.load_config(PIPELINES / "tiny" / "audio_vae")
    vae = AudioAutoencoder.from_config(config)
    clock = AVClock(fps=24, sample_rate=vae.config.sample_rate, audio_hop=vae.config.hop_length)
    assert clock.audio_latent_rate() == vae.latent_rate == 50
    assert clock.audio_latent_steps(clock.num_samples(240)) == 500  # 10 s at 24 fps
    assert vae.n_fft == 1280 and 3.7e6 < sum(p.numel() for p in vae.parameters()) < 3.9e6


def test_posterior_starts_nearly_deterministic():
    from avgen.models.autoencoder_video import INITIAL_LOGVAR

    vae = get_dummy_vae()
    posterior = vae.encode(torch.randn(1, 1, 3200) * 0.1).latent_dist
    assert abs(posterior.logvar.mean().item() - INITIAL_LOGVAR) < 1.0


@torch.no_grad()
def test_output_depends_on_the_input_at_initialisation():
    vae = get_dummy_vae()
    quiet, loud = torch.randn(1, 1, 320) * 0.01, torch.randn(1, 1, 320) * 0.3
    out_quiet, out_loud = vae(quiet, sample_posterior=False)[0], vae(loud, sample_posterior=False)[0]
    assert (out_quiet - out_loud).abs().mean() > 0.1 * out_loud.abs().mean()


def test_tonal_peak_loss_sees_a_lost_note_under_noise_and_ignores_noise_detail():
    from avgen.models.autoencoder_audio import tonal_peak_loss

    generator = torch.Generator().manual_seed(0)
    t = torch.arange(16000) / 16000
    noise = 0.1 * torch.randn(1, 1, 16000, generator=generator)
    note = 0.05 * torch.sin(2 * math.pi * 440 * t).reshape(1, 1, -1)
    other_noise = 0.1 * torch.randn(1, 1, 16000, generator=generator)  # same envelope, other detail
    kept, lost = tonal_peak_loss(other_noise + note, noise + note), tonal_peak_loss(other_noise, noise + note)
    assert lost > 1.0 and kept < 0.3 * lost
    assert tonal_peak_loss(noise, noise) == 0  # no peaks: nothing to score
