"""Audio autoencoder: a Vocos-style STFT-domain VAE, waveform <-> continuous latents.

It fills the role of Movie Gen's "DAC-style VAE" at small scale, but works on spectra instead of the
waveform (the decoder is Vocos': predict a log-magnitude and a phase per STFT bin, then inverse STFT):
- encoder: log |STFT| of the waveform (Hann window, n_fft = 4 * hop_length, hop = the latent hop, so one
  STFT frame per latent step) -> conv (kernel 7) -> ConvNeXt blocks -> LayerNorm -> linear to
  2 * latent_channels per step, read as a diagonal Gaussian (mean, log-variance);
- decoder: latent -> the same kind of stack -> log-magnitude and phase per bin -> inverse STFT
  (windowed overlap-add divided by the summed squared window, as torch.istft does).
Every layer runs at the latent rate; nothing is upsampled back to 16 kHz by convolutions.

Why not a waveform codec. The previous codec, EnCodec's SEANet encoder/decoder with a VAE bottleneck
(16 filters, ratios 8, 5, 4, 2, 1.5M parameters), took 1.07 s per step (16 x 1 s crops, 1 CPU thread,
bf16) and plateaued at an eval multi-resolution STFT distance of 2.55 after 5000 steps (~1.5 h); judged
on world-clip reconstructions at step 3636 it lost music (40%) and ambience (65%). This design (3.8M
parameters at dim 192, 6 layers per side) reached 0.97 after 1668 steps in 450 s (0.27 s per step) on
the same data and loss: all its layers run at 50 Hz rather than at up to 16 kHz, and a log-magnitude
spectrum is an easy target.

Latent rate. 16 kHz audio, hop_length 320 samples -> 50 latent steps per second (one step = 20 ms), with
16 channels (20x fewer values than the waveform; MMAudio's 16 kHz VAE is 31.25 Hz x 20 channels = 25.6x,
Movie Gen's 25 Hz x 128 at 48 kHz = 15x). Movie Gen uses 25 Hz (40 ms steps); we take 50 Hz because our
sync target is +-1 video frame (+-42 ms at 24 fps) and the video features are added per latent step at the
frame shown at the step's centre (AVClock.video_frame_for_audio_step): at 50 Hz every 24 fps frame owns
1-3 latent steps of its own, so a contact seen in frame k can be put in a step that lies inside frame k
(error <= 20 ms from the step alone). At 25 Hz a step spans about one frame, so steps straddle frame
borders and the onset's position inside a step must be carried by the latent's content alone, using up
the whole +-42 ms margin. The cost is 2x more tokens for the audio transformer (500 for 10 s), which is
small next to the video model.

Alignment. Latent step t stands for samples [t * hop, (t + 1) * hop), as AVClock says: the waveform is
padded by (n_fft - hop) / 2 zeros at the start, so STFT frame t is centred on that span's centre
(t + 0.5) * hop, and the decoder's frame t is overlap-added back at the same place.

Receptive field. Bounded: each convolution has kernel 7 (+-3 steps), so a latent step depends on the
STFT frames within +-3 * (num_layers + 1) steps (+-21 = 420 ms for the preset), each frame spanning
n_fft samples, and likewise for the decoder. There is no recurrence, attention or global normalisation, so
long audio can be encoded or decoded in overlapping pieces: away from the pieces' edges the result does not
depend on where the audio was cut.

Lengths: `encode` zero-pads the end to a multiple of hop_length, giving ceil(S / hop_length) steps as
`AVClock.audio_latent_steps` says; `decode(z, num_samples=S)` crops back.

Precision: the STFT and the inverse STFT always run in float32 (autocast is switched off around them);
the two stacks run in the module's dtype or under autocast. `decode` returns float32 audio.

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
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .autoencoder_video import INITIAL_LOGVAR

LOG_EPS = 1e-5  # added to |STFT| before the log: -11.5 is the floor of the encoder's input


def _loss_magnitude(audio: torch.Tensor, fft_size: int, eps: float) -> torch.Tensor:
    """|STFT| of audio (B, S) as the losses see it: Hann window, hop fft_size / 4, centred frames,
    floored at eps -> (B, fft_size / 2 + 1, frames)."""
    window = torch.hann_window(fft_size, device=audio.device)
    return torch.stft(audio, fft_size, fft_size // 4, window=window, return_complex=True).abs().clamp_min(eps)


def multi_resolution_stft_loss(
    prediction: torch.Tensor, target: torch.Tensor, fft_sizes: tuple[int, ...] = (256, 512, 1024, 2048), eps: float = 1e-5
) -> torch.Tensor:
    """Multi-resolution STFT loss (Parallel WaveGAN): spectral convergence + L1 of log magnitudes, averaged
    over resolutions. prediction, target (B, 1, S) -> scalar. Hop = fft_size / 4, Hann window. Small FFTs
    judge onsets (16 ms at 256), large ones pitch (128 ms at 2048)."""
    prediction, target = prediction.float().flatten(0, 1), target.float().flatten(0, 1)  # (B, S)
    total = prediction.new_zeros(())
    for fft_size in fft_sizes:
        predicted_magnitude = _loss_magnitude(prediction, fft_size, eps)  # (B, fft_size / 2 + 1, frames)
        target_magnitude = _loss_magnitude(target, fft_size, eps)
        spectral_convergence = (target_magnitude - predicted_magnitude).norm() / target_magnitude.norm()
        log_magnitude = (target_magnitude.log() - predicted_magnitude.log()).abs().mean()
        total = total + spectral_convergence + log_magnitude
    return total / len(fft_sizes)


def tonal_peak_loss(
    prediction: torch.Tensor, target: torch.Tensor, fft_size: int = 2048, width: int = 9, threshold_db: float = 15.0
) -> torch.Tensor:
    """L1 of log magnitudes on the target's tonal peaks only. prediction, target (B, 1, S) -> scalar.

    A peak is a time-frequency bin whose magnitude stands `threshold_db` above the median of the `width`
    bins around it in frequency (notes, an engine's harmonics; noise stays near its local median). Why:
    the multi-resolution loss averages over every bin, and in a rainy or waterfall clip a note is ~1 bin in
    600 while the noise bins carry an error no code can remove (their exact values are random), so notes
    and harmonics were the last thing the codec learned: at 10k steps the reconstruction's notes stood
    5-12 dB above the band median where the original's stood 20-30 dB (the judge needs 15). Hann window,
    hop fft_size / 4 (128 ms / 32 ms at 16 kHz: a note's pitch resolved to 8 Hz)."""
    prediction, target = prediction.float().flatten(0, 1), target.float().flatten(0, 1)  # (B, S)
    target_log = _loss_magnitude(target, fft_size, LOG_EPS).log()  # (B, bins, frames)
    predicted_log = _loss_magnitude(prediction, fft_size, LOG_EPS).log()
    # the median of the `width` bins around each bin in frequency: a tonal peak stands well above it
    padded = F.pad(target_log.transpose(1, 2), (width // 2, width // 2), mode="replicate")  # (B, frames, bins + width - 1)
    local_median = padded.unfold(-1, width, 1).median(dim=-1).values.transpose(1, 2)  # (B, bins, frames)
    peaks = (target_log - local_median) > threshold_db * math.log(10) / 20  # dB of magnitude -> natural log
    if not peaks.any():
        return target_log.new_zeros(())
    return (target_log - predicted_log).abs()[peaks].mean()


def kl_loss(latent_dist: DiagonalGaussianDistribution) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample (B,), averaged over every latent value (diffusers' kl() sums over
    dims 1-3 only; ours are (B, C, T) audio and (B, C, F, H, W) video latents, both training tasks use this)."""
    kl = 0.5 * (latent_dist.mean.float() ** 2 + latent_dist.var.float() - 1.0 - latent_dist.logvar.float())
    return kl.flatten(1).mean(dim=1)


def _stft(audio: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """audio (B, S) -> complex spectrum (B, n_fft // 2 + 1, ceil(S / hop_length)), in float32.

    Frame t is centred on samples [t * hop, (t + 1) * hop): (n_fft - hop) / 2 zeros in front, and at the
    end as many as that plus the padding of S up to a multiple of hop. Periodic Hann window.
    """
    num_samples = audio.shape[-1]
    steps = math.ceil(num_samples / hop_length)
    pad = (n_fft - hop_length) // 2
    with torch.autocast(device_type=audio.device.type, enabled=False):
        x = F.pad(audio.float(), (pad, pad + steps * hop_length - num_samples))  # (B, (steps - 1) * hop + n_fft)
        window = torch.hann_window(n_fft, device=audio.device)
        return torch.stft(x, n_fft, hop_length, window=window, center=False, return_complex=True)  # (B, bins, steps)


def _istft(spectrum: torch.Tensor, n_fft: int, hop_length: int, num_samples: int | None = None) -> torch.Tensor:
    """Inverse of `_stft`: complex spectrum (B, n_fft // 2 + 1, T) -> audio (B, num_samples or T * hop), float32.

    Windowed overlap-add divided by the summed squared window (torch.istft's normalisation), then the
    (n_fft - hop) / 2 leading samples that `_stft` padded are dropped. Needs n_fft > hop_length so that
    the summed window is > 0 on every kept sample.
    """
    steps = spectrum.shape[-1]
    pad = (n_fft - hop_length) // 2
    size = (steps - 1) * hop_length + n_fft  # the padded length `_stft` framed
    with torch.autocast(device_type=spectrum.device.type, enabled=False):
        window = torch.hann_window(n_fft, device=spectrum.device)
        frames = torch.fft.irfft(spectrum.to(torch.complex64), n_fft, dim=1) * window[None, :, None]  # (B, n_fft, T)
        fold = dict(output_size=(1, size), kernel_size=(1, n_fft), stride=(1, hop_length))
        audio = F.fold(frames, **fold)[:, 0, 0]  # (B, size): overlap-add
        envelope = F.fold(window.square()[None, :, None].expand(1, n_fft, steps), **fold)[0, 0, 0]  # (size,)
        audio = audio[:, pad : pad + steps * hop_length] / envelope[pad : pad + steps * hop_length]  # (B, T * hop)
    return audio[:, :num_samples]


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (kernel 7) -> LayerNorm -> MLP (3x) -> layer scale, residual. (B, D, T) -> (B, D, T)."""

    def __init__(self, dim: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, 3 * dim)
        self.pw2 = nn.Linear(3 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)  # (B, T, D)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))  # (B, T, D)
        return x + (self.gamma * h).transpose(1, 2)  # (B, D, T)


class ConvNeXtStack(nn.Module):
    """(B, in_channels, T) -> conv (kernel 7) -> num_layers ConvNeXt blocks (layer scale 1 / num_layers)
    -> LayerNorm -> linear -> (B, out_channels, T). Every layer keeps the step count T."""

    def __init__(self, in_channels: int, dim: int, out_channels: int, num_layers: int):
        super().__init__()
        self.conv_in = nn.Conv1d(in_channels, dim, kernel_size=7, padding=3)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, 1.0 / num_layers) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.out = nn.Linear(dim, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x.to(self.conv_in.weight.dtype))  # (B, D, T)
        for block in self.blocks:
            h = block(h)
        return self.out(self.norm(h.transpose(1, 2))).transpose(1, 2)  # (B, out_channels, T)


class AudioAutoencoder(ModelMixin, ConfigMixin):
    """STFT-domain VAE over mono waveforms. Audio (B, 1, S) in [-1, 1]; latents (B, latent_channels, ceil(S / hop)).

    Args:
        sample_rate: audio samples per second the codec is trained at.
        audio_channels: waveform channels (only 1 for now: the world is mono).
        latent_channels: channels of the latent (the transformer's in_channels).
        hop_length: samples per latent step, also the STFT hop.
        n_fft: STFT frame length; None = 4 * hop_length. Must exceed hop_length by an even number.
        dim: width of the encoder's and the decoder's ConvNeXt stacks.
        num_layers: ConvNeXt blocks in each of the encoder and the decoder.
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
        n_fft: int | None = None,
        dim: int = 192,
        num_layers: int = 6,
        scaling_factor: float = 1.0,
    ):
        super().__init__()
        n_fft = 4 * hop_length if n_fft is None else n_fft
        if audio_channels != 1:
            raise ValueError(f"audio_channels must be 1 (mono) for now; got {audio_channels}")
        for name, value in dict(sample_rate=sample_rate, latent_channels=latent_channels, hop_length=hop_length,
                                dim=dim, num_layers=num_layers).items():  # fmt: skip
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        if n_fft <= hop_length or (n_fft - hop_length) % 2:
            raise ValueError(
                f"n_fft ({n_fft}) must be larger than hop_length ({hop_length}) by an even number, so STFT frames "
                "overlap and each is centred on its latent step"
            )
        if not scaling_factor > 0:
            raise ValueError(f"scaling_factor must be > 0; got {scaling_factor}")
        self.n_fft = n_fft
        bins = n_fft // 2 + 1
        self.encoder = ConvNeXtStack(bins, dim, 2 * latent_channels, num_layers)  # log |STFT| -> mean, log-variance
        self.decoder = ConvNeXtStack(latent_channels, dim, 2 * bins, num_layers)  # latent -> log-magnitude, phase
        # a nearly deterministic posterior at first, as in the video autoencoder
        nn.init.constant_(self.encoder.out.bias[latent_channels:], INITIAL_LOGVAR)
        # |STFT| of audio in [-1, 1] is at most the window's sum, n_fft / 2: cap the decoded log-magnitude a
        # little above it (7.0 for n_fft 1280), so an early overshoot cannot overflow exp()
        self.max_log_magnitude = math.log(n_fft / 2) + 0.5

    @property
    def latent_rate(self) -> float:
        """Latent steps per second."""
        return self.config.sample_rate / self.config.hop_length

    def encode(self, audio: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """audio (B, audio_channels, S) -> latent_dist over (B, latent_channels, ceil(S / hop_length))."""
        if audio.ndim != 3 or audio.shape[1] != self.config.audio_channels:
            raise ValueError(f"audio must be (B, {self.config.audio_channels}, S); got {tuple(audio.shape)}")
        spectrum = _stft(audio[:, 0], self.n_fft, self.config.hop_length)  # (B, bins, T) complex64
        features = torch.log(spectrum.abs() + LOG_EPS)  # (B, bins, T) float32
        posterior = DiagonalGaussianDistribution(self.encoder(features))  # parameters (B, 2 * C, T)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def _to_audio(self, h: torch.Tensor, num_samples: int | None = None) -> torch.Tensor:
        """The decoder's output h (B, 2 * bins, T): log-magnitudes then phases -> audio (B, 1, num_samples or T * hop)."""
        bins = self.n_fft // 2 + 1
        with torch.autocast(device_type=h.device.type, enabled=False):
            h = h.float()
            magnitude = torch.exp(h[:, :bins].clamp(max=self.max_log_magnitude))  # (B, bins, T)
            spectrum = torch.polar(magnitude, h[:, bins:])  # (B, bins, T) complex64
            return _istft(spectrum, self.n_fft, self.config.hop_length, num_samples)[:, None]  # (B, 1, S)

    def decode(self, z: torch.Tensor, num_samples: int | None = None, return_dict: bool = True) -> DecoderOutput | tuple:
        """z (B, latent_channels, T) -> audio (B, audio_channels, num_samples or T * hop_length), float32.

        num_samples: crop to this many samples (must be in (T - 1) * hop + 1 ... T * hop).
        """
        if z.ndim != 3 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"z must be (B, {self.config.latent_channels}, T); got {tuple(z.shape)}")
        hop, steps = self.config.hop_length, z.shape[-1]
        if num_samples is not None and not (steps - 1) * hop < num_samples <= steps * hop:
            raise ValueError(f"{steps} latent steps decode to {(steps - 1) * hop + 1}..{steps * hop} samples, not {num_samples}")
        audio = self._to_audio(self.decoder(z), num_samples)  # (B, 1, S)
        return DecoderOutput(sample=audio) if return_dict else (audio,)

    def forward(self, audio: torch.Tensor, sample_posterior: bool = True, generator: torch.Generator | None = None):
        """Reconstruction for training: returns (reconstruction (B, 1, S), latent_dist)."""
        posterior = self.encode(audio).latent_dist
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z, num_samples=audio.shape[-1]).sample, posterior
