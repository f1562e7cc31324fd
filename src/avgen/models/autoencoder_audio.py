"""Audio autoencoder: Movie Gen's "DAC-style VAE" at small scale, waveform <-> continuous latents.

EnCodec's SEANet encoder and decoder (the `encodec` package; DAC is the same family of strided 1D conv
ResNets) with the quantizer replaced by a VAE bottleneck: the encoder emits 2 * latent_channels per step,
read as a diagonal Gaussian (mean, log-variance), and the decoder takes samples of it.

Latent rate. 16 kHz audio, hop_length 320 samples -> 50 latent steps per second (one step = 20 ms), with
16 channels (20x fewer values than the waveform; MMAudio's 16 kHz VAE is 31.25 Hz x 20 channels = 25.6x,
Movie Gen's 25 Hz x 128 at 48 kHz = 15x). Movie Gen uses 25 Hz (40 ms steps); we take 50 Hz because our
sync target is +-1 video frame (+-42 ms at 24 fps) and the video features are added per latent step at the
frame shown at the step's centre (AVClock.video_frame_for_audio_step): at 50 Hz every 24 fps frame owns
1-3 latent steps of its own, so a contact seen in frame k can be put in a step that lies inside frame k
(error <= 20 ms from the step alone). At 25 Hz a step spans about one frame, so steps straddle frame
borders and the onset's position inside a step must be carried by the latent's content alone, using up
the whole +-42 ms margin. The cost is 2x more tokens for the audio transformer (500 for 10 s), which is
small next to the video model. 320 = 2 * 4 * 5 * 8 is also SEANet's own default ratio set.

Differences from EnCodec: no LSTM (lstm=0) so the codec is purely convolutional with a bounded receptive
field (long audio can be encoded in pieces, the result does not depend on the clip's length), and no weight
norm (its torch API is deprecated; the VAE is trained with reconstruction losses, not a GAN, for now).

Lengths: `encode` zero-pads the end to a multiple of hop_length (SEANet's own padding), giving
ceil(S / hop_length) steps as `AVClock.audio_latent_steps` says; `decode(z, num_samples=S)` crops back.

Using a pretrained codec instead. The pipeline only relies on this interface, so an adapter class around,
e.g., a pretrained DAC-VAE or EnCodec can stand in for AudioAutoencoder:
- config attributes `sample_rate`, `hop_length` (samples per latent step; the pipeline builds
  `AVClock(fps, sample_rate=vae.config.sample_rate, audio_hop=vae.config.hop_length)`), `latent_channels`
  and `scaling_factor` (multiplies latents before the transformer so they have unit variance);
- `encode(audio (B, 1, S)).latent_dist` with `.sample(generator)` and `.mode()` over (B, C, T);
- `decode(z (B, C, T), num_samples=S).sample` -> (B, 1, S).
For EnCodec (which quantizes), wrap `model.encoder` / `model.decoder` and return the pre-quantizer
embedding as a deterministic DiagonalGaussianDistribution (logvar = log of a small constant); resample to
the codec's sample rate inside encode/decode and report the project's sample_rate and the effective hop.
"""

from __future__ import annotations

import math

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from encodec.modules import SEANetDecoder, SEANetEncoder

from .autoencoder_video import INITIAL_LOGVAR


def multi_resolution_stft_loss(
    prediction: torch.Tensor, target: torch.Tensor, fft_sizes: tuple[int, ...] = (256, 512, 1024, 2048), eps: float = 1e-5
) -> torch.Tensor:
    """Multi-resolution STFT loss (Parallel WaveGAN): spectral convergence + L1 of log magnitudes, averaged
    over resolutions. prediction, target (B, 1, S) -> scalar. Hop = fft_size / 4, Hann window. Small FFTs
    judge onsets (16 ms at 256), large ones pitch (128 ms at 2048)."""
    prediction, target = prediction.float().flatten(0, 1), target.float().flatten(0, 1)  # (B, S)
    total = prediction.new_zeros(())
    for fft_size in fft_sizes:
        window = torch.hann_window(fft_size, device=prediction.device)
        stft = dict(n_fft=fft_size, hop_length=fft_size // 4, window=window, return_complex=True)
        predicted_magnitude = torch.stft(prediction, **stft).abs().clamp_min(eps)  # (B, fft_size / 2 + 1, frames)
        target_magnitude = torch.stft(target, **stft).abs().clamp_min(eps)
        spectral_convergence = (target_magnitude - predicted_magnitude).norm() / target_magnitude.norm()
        log_magnitude = (target_magnitude.log() - predicted_magnitude.log()).abs().mean()
        total = total + spectral_convergence + log_magnitude
    return total / len(fft_sizes)


def kl_loss(latent_dist: DiagonalGaussianDistribution) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample (B,), averaged over channels and steps (diffusers' kl() assumes
    4-D latents, ours are (B, C, T))."""
    kl = 0.5 * (latent_dist.mean.float() ** 2 + latent_dist.var.float() - 1.0 - latent_dist.logvar.float())
    return kl.flatten(1).mean(dim=1)


class AudioAutoencoder(ModelMixin, ConfigMixin):
    """SEANet VAE over mono waveforms. Audio (B, 1, S) in [-1, 1]; latents (B, latent_channels, ceil(S / hop)).

    Args:
        sample_rate: audio samples per second the codec is trained at.
        audio_channels: waveform channels (1: the world is mono).
        latent_channels: channels of the latent (the transformer's in_channels).
        hop_length: samples per latent step; must equal the product of `ratios`.
        ratios: SEANet's upsampling ratios, decoder order (the encoder uses them reversed).
        num_filters: channels of the first encoder / last decoder stage, doubled at every stride.
        num_residual_layers: dilated residual units per stage.
        scaling_factor: latents are multiplied by it before the transformer (set after training so they
            have unit variance), diffusers' convention.
    """

    @register_to_config
    def __init__(
        self,
        sample_rate: int = 16000,
        audio_channels: int = 1,
        latent_channels: int = 16,
        hop_length: int = 320,
        ratios: tuple[int, ...] = (8, 5, 4, 2),
        num_filters: int = 32,
        num_residual_layers: int = 1,
        scaling_factor: float = 1.0,
    ):
        super().__init__()
        if math.prod(ratios) != hop_length:
            raise ValueError(f"hop_length ({hop_length}) must equal the product of ratios {tuple(ratios)}")
        seanet = dict(
            channels=audio_channels,
            n_filters=num_filters,
            n_residual_layers=num_residual_layers,
            ratios=list(ratios),
            norm="none",
            lstm=0,
        )
        self.encoder = SEANetEncoder(dimension=2 * latent_channels, **seanet)  # mean and log-variance
        self.decoder = SEANetDecoder(dimension=latent_channels, **seanet)
        # Variance-preserving init, zero biases. PyTorch's default conv init shrinks the signal ~3x per layer
        # and SEANet (without norms) has ~20 in a row, so at init the decoder's output came from the biases
        # alone: the same waveform for every input (measured), and training stalled there.
        for module in self.modules():
            if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
                torch.nn.init.zeros_(module.bias)
        # a nearly deterministic posterior at first, as in the video autoencoder (INITIAL_LOGVAR there)
        torch.nn.init.constant_(self.encoder.model[-1].conv.conv.bias[latent_channels:], INITIAL_LOGVAR)

    @property
    def latent_rate(self) -> float:
        """Latent steps per second."""
        return self.config.sample_rate / self.config.hop_length

    def encode(self, audio: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """audio (B, audio_channels, S) -> latent_dist over (B, latent_channels, ceil(S / hop_length))."""
        if audio.ndim != 3 or audio.shape[1] != self.config.audio_channels:
            raise ValueError(f"audio must be (B, {self.config.audio_channels}, S); got {tuple(audio.shape)}")
        posterior = DiagonalGaussianDistribution(self.encoder(audio))  # parameters (B, 2 * C, T)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(self, z: torch.Tensor, num_samples: int | None = None, return_dict: bool = True) -> DecoderOutput | tuple:
        """z (B, latent_channels, T) -> audio (B, audio_channels, num_samples or T * hop_length).

        num_samples: crop to this many samples (must be in (T - 1) * hop + 1 ... T * hop).
        """
        hop, steps = self.config.hop_length, z.shape[-1]
        if num_samples is not None and not (steps - 1) * hop < num_samples <= steps * hop:
            raise ValueError(f"{steps} latent steps decode to {(steps - 1) * hop + 1}..{steps * hop} samples, not {num_samples}")
        audio = self.decoder(z)[..., :num_samples]  # (B, audio_channels, S)
        return DecoderOutput(sample=audio) if return_dict else (audio,)

    def forward(self, audio: torch.Tensor, sample_posterior: bool = True, generator: torch.Generator | None = None):
        """Reconstruction for training: returns (reconstruction (B, 1, S), latent_dist)."""
        posterior = self.encode(audio).latent_dist
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z, num_samples=audio.shape[-1]).sample, posterior
