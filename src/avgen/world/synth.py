"""The sound synthesizer: mono audio (S,) float32 in [-1, 1] from the same simulation as the picture.

Sounds are placed at the simulation's continuous event times (sample round(t * sr)), never snapped to
frames. Frequencies are in Hz (independent of the sample rate, capped below Nyquist). Levels are peak
amplitudes unless marked RMS; the second subject (farther away) plays its sounds at 0.7 of the level.

Audio signatures (what a judge can rely on)
-------------------------------------------
Ambience (steady beds over the whole clip):
- room tone: in every clip, whatever the weather: noise band-limited to 50..2000 Hz, RMS 0.004
  (-48 dBFS). "clear" is room tone only.
- rain: + steady hiss, white noise band-limited to 2000..7500 Hz, RMS 0.02 (no low content).
- thunderstorm: rain hiss (RMS 0.025) + a thunder clap per flash (below).
- waterfall: + steady rumble, noise band-limited to 30..350 Hz, RMS 0.08 (no high content).
Effects (sharp onsets: full level within 1 ms of the event time, broadband):
- ball contact: a click (noise band-limited to 1000..8000 Hz, decay time constant 6 ms) plus a thud
  (a 160 Hz sine, decay 40 ms), equal weights; peak 0.25 + 0.55 * strength (strength = normalized
  impact speed, 0..1). 150 ms long.
- footstep: a tap, noise band-limited to 800..6000 Hz, decay 15 ms, peak 0.5, 80 ms long, no low thud.
- thunder: a crack (white noise, decay 50 ms) then a rumble (noise below 250 Hz, decay 600 ms);
  peak 0.75 * strength (strength 0.6..1). 4 s long; onset = flash time.
- engine (car): a harmonic hum, fundamental f0 = 55 + 300 * speed Hz (slow car ~73 Hz, fast ~103 Hz;
  speed in view widths/s), harmonics 1..8 with amplitude 1/k, slow 3 Hz "firing" flutter of 15 %;
  level (RMS) 0.04 + 0.5 * speed (slow ~0.07, fast ~0.12). It sounds only while the engine runs
  (engine_start..engine_stop), with 10 ms fades: silent when the car is at rest.
Music (non-diegetic, quieter than effects; all its energy in 100..2000 Hz except the kick):
- calm piano: 70 BPM, one note per beat from the C-major pentatonic in 262..523 Hz, partials 1, 2, 3
  (1, 0.4, 0.15), soft attack (30 ms raised cosine), decay time constant 0.5 s, peak 0.08.
- upbeat: 128 BPM. A kick on every beat: a sine gliding 110 -> 45 Hz, 5 ms raised-cosine attack (no
  click), decay 90 ms, peak 0.14, nothing above ~200 Hz. Notes on every half beat (eighth notes) from
  the pentatonic in 330..660 Hz, partials 1, 2, 3 (1, 0.5, 0.25), attack 10 ms, decay 120 ms, peak 0.06.
  The first beat is at a random offset in [0, one beat).
Mixing: a sum of the above, then a per-sample soft limiter that is the identity below |x| = 0.9 and
approaches 1 above it (tanh knee), so peaks stay in [-1, 1] and adding one sound changes nothing else
except near clipping peaks.

How to separate them (all measured on the synthesizer's output, see tests/world/test_synth.py):
- effect onsets: in the 2..8 kHz band music has nothing (< -70 dB) and the rain hiss is steady, so an
  onset is a rise of the 2..8 kHz RMS envelope (4 ms windows) to > 4x its median over the preceding
  50 ms; found within 5 ms of every event time except events < 40 ms apart, which merge.
- contact vs footstep: the contact has the 160 Hz thud, the footstep nothing below 800 Hz.
- ambience: steady floor in 2..8 kHz (rain / thunderstorm: -34 / -32 dBFS) vs in 30..350 Hz (waterfall:
  -22 dBFS) vs neither (clear: total -48 dBFS outside the effects). The engine hum is low too, but
  harmonic (spectral lines at k * f0, f0 in 60..110 Hz) and gated; the rumble is noise and never stops.
- music: calm piano = soft notes in 260..1600 Hz every 0.857 s, no kick; upbeat = a 45..110 Hz kick
  every 0.469 s plus notes in 330..2000 Hz every 0.234 s.
"""

from __future__ import annotations

import numpy as np

from ..clock import AVClock
from .simulate import Simulation, stream

SECOND_GAIN = 0.7
PENTATONIC = np.array([0, 2, 4, 7, 9])  # semitones of C-major pentatonic


def _band_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz by an FFT mask, RMS 1, shape (n,)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec[(f < lo) | (f > min(hi, 0.45 * sr))] = 0
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _place(out: np.ndarray, template: np.ndarray, time: float, gain: float, sr: int) -> None:
    start = int(round(time * sr))
    if start < 0 or start >= len(out):
        return
    seg = template[: len(out) - start]
    out[start : start + len(seg)] += gain * seg


def _impact(rng, sr: int) -> np.ndarray:
    t = np.arange(int(0.15 * sr)) / sr
    click = _band_noise(rng, len(t), sr, 1000, 8000) * np.exp(-t / 0.006)
    thud = np.sin(2 * np.pi * 160 * t) * np.exp(-t / 0.04)
    x = (click + thud) * np.minimum(t * sr / max(1, 0.001 * sr), 1)  # 1 ms attack
    return x / np.abs(x).max()


def _footstep(rng, sr: int) -> np.ndarray:
    t = np.arange(int(0.08 * sr)) / sr
    x = _band_noise(rng, len(t), sr, 800, 6000) * np.exp(-t / 0.015) * np.minimum(t * sr / max(1, 0.0005 * sr), 1)
    return x / np.abs(x).max()


def _thunder(rng, sr: int) -> np.ndarray:
    t = np.arange(int(4.0 * sr)) / sr  # the rumble decays to -58 dB: no click at the cut
    crack = rng.standard_normal(len(t)) * np.exp(-t / 0.05)
    rumble = _band_noise(rng, len(t), sr, 20, 250) * np.exp(-t / 0.6) * 0.6
    x = crack + rumble
    return x / np.abs(x).max()


def _engine(track, t: np.ndarray, sr: int) -> np.ndarray:
    on, off = track.engine_on
    gate = np.clip(np.minimum(t - on, off - t) / 0.01, 0, 1)  # 10 ms fades at start / stop
    speed = track.speed(t)
    f0 = 55 + 300 * speed
    phase = 2 * np.pi * np.cumsum(f0) / sr
    hum = sum(np.sin(k * phase) / k for k in range(1, 9))  # highest partial < 830 Hz
    hum = hum / np.sqrt(np.mean(hum**2) + 1e-12)
    flutter = 1 + 0.15 * np.sin(2 * np.pi * 3 * t)
    return hum * flutter * (0.04 + 0.5 * speed) * gate


def _note(t: np.ndarray, freq: float, partials, attack: float, decay: float) -> np.ndarray:
    env = np.where(t < attack, 0.5 - 0.5 * np.cos(np.pi * t / attack), np.exp(-(t - attack) / decay))
    return env * sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(partials))


def _music(spec, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n)
    if spec.music == "none":
        return out
    rng = stream(spec.seed, "music")
    T = n / sr
    calm = spec.music == "calm piano"
    beat = 60 / (70 if calm else 128)
    step = beat if calm else beat / 2
    base = 261.63 if calm else 329.63
    length = int((3.0 if calm else 1.0) * sr)  # >= 6 decay time constants: no click at the cut
    t = np.arange(length) / sr
    degree = 0
    for j, start in enumerate(np.arange(rng.uniform(0, beat), T, step)):
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 5))  # a random walk over one octave
        semitone = PENTATONIC[degree % 5] + 12 * (degree // 5)
        freq = base * 2 ** (semitone / 12)
        if calm:
            tone = 0.08 * _note(t, freq, (1, 0.4, 0.15), 0.03, 0.5) / 1.55
        else:
            tone = 0.06 * _note(t, freq, (1, 0.5, 0.25), 0.01, 0.12) / 1.75
        _place(out, tone, start, 1.0, sr)
        if not calm and j % 2 == 0:  # a kick on every beat
            glide = 45 + 65 * np.exp(-t / 0.02)
            kick = np.sin(2 * np.pi * np.cumsum(glide) / sr)
            env = np.where(t < 0.005, 0.5 - 0.5 * np.cos(np.pi * t / 0.005), np.exp(-(t - 0.005) / 0.09))
            _place(out, 0.14 * kick * env, start, 1.0, sr)
    return out


def _limit(x: np.ndarray) -> np.ndarray:
    """Identity below 0.9, a tanh knee above: |y| < 1 always."""
    a = np.abs(x)
    return np.where(a <= 0.9, x, np.sign(x) * (0.9 + 0.1 * np.tanh((a - 0.9) / 0.1)))


def synthesize_audio(sim: Simulation) -> np.ndarray:
    """The clip's sound, (S,) float32 with S = AVClock(fps, sample_rate).num_samples(F)."""
    spec = sim.spec
    sr = spec.sample_rate
    n = AVClock(spec.fps, sr).num_samples(spec.num_frames)
    t = np.arange(n) / sr
    out = 0.004 * _band_noise(stream(spec.seed, "room tone"), n, sr, 50, 2000)
    if spec.weather in ("rain", "thunderstorm"):
        level = 0.025 if spec.weather == "thunderstorm" else 0.02
        out += level * _band_noise(stream(spec.seed, "rain sound"), n, sr, 2000, 7500)
    if spec.weather == "waterfall":
        out += 0.08 * _band_noise(stream(spec.seed, "waterfall sound"), n, sr, 30, 350)
    rng = stream(spec.seed, "effects")
    templates = {"contact": _impact(rng, sr), "footstep": _footstep(rng, sr), "thunder": _thunder(rng, sr)}
    for e in sim.events:
        gain = SECOND_GAIN if e.subject == 1 else 1.0
        if e.kind == "contact":
            _place(out, templates["contact"], e.time, gain * (0.25 + 0.55 * e.strength), sr)
        elif e.kind == "footstep":
            _place(out, templates["footstep"], e.time, gain * 0.5, sr)
        elif e.kind == "thunder":
            _place(out, templates["thunder"], e.time, 0.75 * e.strength, sr)
    for track in sim.tracks:
        if track.subject.kind == "car":
            out += (SECOND_GAIN if track.index == 1 else 1.0) * _engine(track, t, sr)
    out += _music(spec, n, sr)
    return _limit(out).astype(np.float32)
