"""The audio half of the verdict, `judge_audio`: effect onsets and their classes, ambience, engine and
music, from the samples only (overview: avgen.world.judge)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

# --- audio ----------------------------------------------------------------------------------------
ONSET_BAND = (2000.0, 7200.0)  # effects live here; music never, rain only as a steady hiss
ENVELOPE_HOP_S = 0.001  # 1 ms energy envelope for onset times
ENVELOPE_SMOOTH_S = 0.003
ONSET_RISE_DB = 6.0  # the next 8 ms rise this far above the mean level of the 10 ms before
ONSET_AHEAD_S = 0.008  # (hiss in 8 ms varies by +-0.7 dB; a far footstep in a thunderstorm rises 9 dB)
ONSET_BASE_S = 0.01  # short: a sound 25 ms after another rises above its tail, a crack never above itself
ONSET_RANGE_DB = 45.0
ONSET_MIN_DB = -40.0  # effects peak at -18 dB or more (mean square); codec noise and hiss stay below
ONSET_REFRACTORY_S = 0.015  # one onset per sound; two subjects' sounds can be this close
ONSET_PEAK_AHEAD_S = 0.02  # effects reach their peak within 1 ms of their onset
ONSET_NEAR_PEAK_DB = 10.0
THUD_HZ, THUD_DECAY_S, THUD_WINDOW_S = 160.0, 0.04, 0.12  # the impact's thud: a 160 Hz sine, decay 40 ms
THUD_MIN_RATIO = 0.75  # thud amplitude / RMS of the 2-7.2 kHz peak: impacts >= 1.0, footsteps (leakage) < 0.7
THUD_MIN_SNR = 2.5  # ...and / the estimate's median over the clip: impacts in a waterfall >= 2.7
CRACK_MAX_DECAY_DB_PER_MS = 0.32  # a crack (decay 50 ms) fades 0.17 dB/ms, a tap (15 ms) 0.58, a click (6 ms) 1.45
RAIN_HISS_RMS = 0.008  # steady 2-7.2 kHz level: rain 0.02, thunderstorm 0.025, else ~0
WATERFALL_RMS = 0.03  # steady 30-350 Hz noise floor: waterfall 0.08
ENGINE_F0 = (55.0, 115.0)  # engine fundamental range (Hz): 55 at rest, ~73 slow, ~103 fast
ENGINE_MIN_SALIENCE_DB = 4.5  # engines >= 5.9 dB (slow car under a waterfall), no engine <= 3.6
ENGINE_MIN_SHARE = 0.4  # of the clip; the engine runs in >= 45 % of it (start-stop cars)
MUSIC_BAND = (370.0, 790.0)  # every note has its fundamental or 2nd partial here; above a waterfall, below effects
MUSIC_STYLES = {"calm piano": (261.63, 60 / 70), "upbeat": (329.63, 30 / 128)}  # (lowest note Hz, s per note)
NOTE_RISE_FRAMES, NOTE_RISE_DB = 3, 12.0  # a note's attack (10-30 ms) raises its bin this much in 48 ms
NOTE_TONAL_DB = 15.0  # ...to this far above the band's median bin (white noise stays near it)
NOTE_PEAK_DB = 6.0  # ...and rises this much more than the bins 4 away (a sinusoid's main lobe is +-2 bins)
NOTE_GRID_TOL_S = 0.04
UPBEAT_MIN_COVER = 0.37  # upbeat >= 0.40 of its grid, others <= 0.33
CALM_MIN_COVER = 0.5  # calm piano ~0.95 (a repeated note does not rise); no music ~0, 1 of 2 notes in 2 s clips with an engine


def _band(x: np.ndarray, sample_rate: int, low: float, high: float) -> np.ndarray:
    """x band-limited to [low, high] Hz by an FFT mask (the synthesizer's own way of shaping noise).
    Mirror-padded, so that the FFT's wrap-around joins no two unrelated ends (a false transient)."""
    pad = min(x.size - 1, int(0.1 * sample_rate))
    padded = np.pad(x, pad, mode="reflect")
    spectrum = np.fft.rfft(padded)
    freqs = np.fft.rfftfreq(padded.size, 1.0 / sample_rate)
    spectrum[(freqs < low) | (freqs > high)] = 0
    return np.fft.irfft(spectrum, padded.size)[pad : pad + x.size]


def _envelope_db(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy envelope in dB on an ENVELOPE_HOP_S grid, (S // hop,)."""
    hop = max(1, int(round(ENVELOPE_HOP_S * sample_rate)))
    energy = (x[: x.size // hop * hop] ** 2).reshape(-1, hop).mean(axis=1)
    smooth = max(1, int(round(ENVELOPE_SMOOTH_S / ENVELOPE_HOP_S)))
    energy = ndimage.uniform_filter1d(energy, smooth, origin=-(smooth // 2))  # look ahead: keep onsets sharp
    return 10 * np.log10(energy + 1e-12)


def audio_onsets(mono: np.ndarray, sample_rate: int) -> list[dict]:
    """Onsets of effects with their class (impact / footstep / thunder), times in seconds.

    An onset is where the mean level of the next ONSET_AHEAD_S rises ONSET_RISE_DB above the mean level
    of the ONSET_BASE_S before: means over several milliseconds, since a footstep or a weak thunder crack
    stands only 10-15 dB above the thunderstorm's hiss, whose 1 ms envelope swings by as much."""
    nyquist = sample_rate / 2
    high = _band(mono, sample_rate, ONSET_BAND[0], min(ONSET_BAND[1], 0.9 * nyquist))
    envelope = _envelope_db(high, sample_rate)
    ms = lambda s: int(round(s / ENVELOPE_HOP_S))  # noqa: E731
    energy = np.cumsum(np.concatenate([[0.0], 10 ** (envelope / 10)]))
    mean = lambda lo, hi: (energy[hi] - energy[lo]) / np.maximum(hi - lo, 1)  # noqa: E731
    index = np.arange(envelope.size)
    ahead = 10 * np.log10(mean(index, np.minimum(index + ms(ONSET_AHEAD_S), envelope.size)) + 1e-12)
    before_end = np.maximum(index - ms(0.002), 0)
    before = 10 * np.log10(mean(np.maximum(before_end - ms(ONSET_BASE_S), 0), before_end) + 1e-12)
    # Quiet level of the band; never more than ONSET_RANGE_DB under the loudest moment, so that the
    # filter's ringing in a silent band is no onset.
    floor = max(np.percentile(envelope, 30), envelope.max() - ONSET_RANGE_DB)
    rising = (ahead - np.maximum(before, floor) >= ONSET_RISE_DB) & (ahead >= ONSET_MIN_DB)
    # Nothing before the clip to rise from; the clip's abrupt end is a false transient.
    rising[: ms(0.002)] = rising[envelope.size - ms(ONSET_AHEAD_S) :] = False
    onsets, last = [], -np.inf
    for start in np.flatnonzero(rising):
        if start - last < ms(ONSET_REFRACTORY_S):
            continue
        # The onset is where the envelope first gets halfway (in dB) from the level before to the peak
        # that follows, and within ONSET_NEAR_PEAK_DB of it (the band-limiting filter rings a little
        # before a transient).
        window = envelope[start : start + ms(ONSET_PEAK_AHEAD_S)]
        threshold = max((window.max() + max(before[start], floor)) / 2, window.max() - ONSET_NEAR_PEAK_DB)
        onset = start + int(np.argmax(window >= threshold))
        onsets.append(onset)
        last = onset
    kinds = _onset_kinds(mono, sample_rate, envelope, onsets)
    return [{"kind": kind, "time": index * ENVELOPE_HOP_S} for index, kind in zip(onsets, kinds)]


def _onset_kinds(mono: np.ndarray, sample_rate: int, envelope: np.ndarray, onsets: list[int]) -> list[str]:
    """Class of each onset (envelope indices) from the sound up to the next onset, so that overlapping
    sounds do not mix: a thunder crack decays slowly above the band's level before the onset, an impact
    carries a 160 Hz thud (measured by a matched filter, minus the thuds of earlier impacts still
    ringing), else a footstep."""
    power = 10 ** (envelope / 10)
    ms = lambda s: int(round(s / ENVELOPE_HOP_S))  # noqa: E731
    hop = int(round(ENVELOPE_HOP_S * sample_rate))
    taps = np.arange(int(THUD_WINDOW_S * sample_rate))
    weight = np.exp(-taps / (THUD_DECAY_S * sample_rate))
    # The thud estimate's noise level: its median over the clip (a waterfall's rumble reaches 160 Hz).
    kernel = weight * np.exp(-2j * np.pi * THUD_HZ * taps / sample_rate) * 2 / np.sum(weight**2)
    spots = np.arange(0, mono.size - taps.size, int(0.025 * sample_rate))
    noise = float(np.median(np.abs(mono[spots[:, None] + taps] @ kernel))) if spots.size else 0.0
    kinds, impacts = [], []  # impacts: (sample, complex thud amplitude) of those found so far
    for k, index in enumerate(onsets):
        following = onsets[k + 1] if k + 1 < len(onsets) else envelope.size
        end = max(index + 1, min(following, envelope.size - ms(ONSET_AHEAD_S)))  # the envelope's end is false
        before = power[max(0, index - ms(ONSET_BASE_S) - ms(0.002)) : max(1, index - ms(0.002))].mean()
        peak = power[index : min(end, index + ms(0.02))].max() - before
        # Decay rate (dB/ms) of the level above what came before: the second half of the sound (up to
        # 60 ms, or to the next onset) against the first. Exponential decays give their own rate at any
        # length: a crack 0.17 dB/ms, a tap 0.58, a click 1.45.
        half = min(ms(0.06), end - index - ms(0.002)) // 2
        decay = -np.inf
        if half >= ms(0.006):
            first = power[index : index + half].mean() - before
            second = power[index + half : index + 2 * half].mean() - before
            if first > 0:
                decay = 10 * np.log10(max(second, 1e-12) / first) / half
        # Amplitude of a 160 Hz sine decaying like the thud, at the onset, up to the next one (absolute
        # phase, so that an earlier thud's share is its own amplitude, decayed).
        start = index * hop
        n = min(taps.size, (following - index) * hop, mono.size - start)
        w = weight[:n] * np.exp(-2j * np.pi * THUD_HZ * (start + taps[:n]) / sample_rate)
        thud = 2 * np.sum(mono[start : start + n] * w) / np.sum(weight[:n] ** 2)
        thud -= sum(a * np.exp(-(start - s) / (THUD_DECAY_S * sample_rate)) for s, a in impacts)
        if decay >= -CRACK_MAX_DECAY_DB_PER_MS:
            kinds.append("thunder")
        elif abs(thud) >= max(THUD_MIN_RATIO * np.sqrt(max(peak, 1e-12)), THUD_MIN_SNR * noise):
            kinds.append("impact")
            impacts.append((start, thud))
        else:
            kinds.append("footstep")
    return kinds


def _noise_rms(power: np.ndarray, freqs: np.ndarray, low: float, high: float) -> np.ndarray:
    """Per STFT frame, the RMS of the *noise floor* in [low, high] Hz: the median bin power times the
    number of bins, so that a few harmonic peaks (an engine, music) do not count. (frames,)"""
    band = power[(freqs >= low) & (freqs <= high)]
    return np.sqrt(np.median(band, axis=0) * band.shape[0])


def engine_present(mono: np.ndarray, sample_rate: int) -> bool:
    """An engine's fundamental and 2nd harmonic (f0 in ENGINE_F0) both standing above the spectrum's
    local median in ENGINE_MIN_SHARE of the clip. Only the two strongest partials count: under a
    waterfall's rumble the higher ones (amplitude 1/k) drown. Per frame, the best f0 after following
    it over 3 frames within +-2 steps, since the pitch glides while the car speeds up or slows down."""
    nperseg = int(sample_rate * 0.25)
    freqs, _, spec = signal.stft(mono, sample_rate, nperseg=nperseg, noverlap=nperseg // 2)
    level = 10 * np.log10(np.abs(spec) ** 2 + 1e-14)  # (bins, frames)
    salience = level - ndimage.median_filter(level, size=(15, 1), mode="nearest")
    f0 = np.arange(ENGINE_F0[0], ENGINE_F0[1], freqs[1] / 2)
    fundamental, second = (np.round(k * f0 / freqs[1]).astype(int) for k in (1, 2))
    both = np.minimum(salience[fundamental], salience[second])  # (f0, frames); a 160 Hz thud alone is no pair
    followed = ndimage.uniform_filter1d(ndimage.maximum_filter1d(both, 5, axis=0), 3, axis=1, mode="nearest")
    return float(np.percentile(followed.max(axis=0), 100 * (1 - ENGINE_MIN_SHARE))) >= ENGINE_MIN_SALIENCE_DB


def _note_attacks(level: np.ndarray, freqs: np.ndarray, notes: np.ndarray) -> np.ndarray:
    """Frames (of `level` (bins, frames) in dB, less NOTE_RISE frames) where one of `notes` (Hz) starts:
    its bin rises NOTE_RISE_DB within NOTE_RISE_S, to NOTE_TONAL_DB above the median of MUSIC_BAND, and
    NOTE_PEAK_DB more than the bins 4 away rise (an effect's leak rises everywhere, an engine's
    neighbouring harmonics stay put). One frame per attack."""
    rise = level[:, NOTE_RISE_FRAMES:] - level[:, :-NOTE_RISE_FRAMES]
    now = level[:, NOTE_RISE_FRAMES:]
    median = np.median(now[(freqs >= MUSIC_BAND[0]) & (freqs <= MUSIC_BAND[1])], axis=0)
    hit = np.zeros(now.shape[1], bool)
    for b in np.unique(np.round(notes / freqs[1]).astype(int)):
        others = np.maximum(rise[b - 4], rise[b + 4])
        hit |= (rise[b] >= NOTE_RISE_DB) & (now[b] - median >= NOTE_TONAL_DB) & (rise[b] - others >= NOTE_PEAK_DB)
    frames = np.flatnonzero(hit)
    return frames[np.diff(frames, prepend=-NOTE_RISE_FRAMES - 1) > NOTE_RISE_FRAMES]


def music_class(mono: np.ndarray, sample_rate: int) -> tuple[str, dict]:
    """('none' | 'calm piano' | 'upbeat', {style: beat cover}) from the attacks of each style's own notes
    (pentatonic fundamentals and 2nd partials in MUSIC_BAND) and its exact tempo: the share of the
    style's note grid (one note every 60/70 s, or every 30/128 s), at its best phase, that has an attack
    within NOTE_GRID_TOL_S. Engines, effects and other music fall off the grid."""
    nperseg, hop = int(sample_rate * 0.128), int(sample_rate * 0.016)
    freqs, _, spec = signal.stft(mono, sample_rate, nperseg=nperseg, noverlap=nperseg - hop)
    level = 10 * np.log10(np.abs(spec) ** 2 + 1e-14)
    duration = mono.size / sample_rate
    cover = {}
    for style, (base, step) in MUSIC_STYLES.items():
        notes = base * 2 ** (np.array([0, 2, 4, 7, 9, 12]) / 12)
        notes = np.concatenate([notes, 2 * notes])
        notes = notes[(notes >= MUSIC_BAND[0]) & (notes <= MUSIC_BAND[1])]
        times = (_note_attacks(level, freqs, notes) + NOTE_RISE_FRAMES) * hop / sample_rate
        cover[style] = 0.0
        for phase in np.arange(0.0, step, 0.004) if times.size else []:
            grid = np.arange(phase, duration, step)
            cover[style] = max(cover[style], float(np.mean(np.abs(times[:, None] - grid).min(axis=0) <= NOTE_GRID_TOL_S)))
    if cover["upbeat"] >= UPBEAT_MIN_COVER:
        return "upbeat", cover
    return ("calm piano" if cover["calm piano"] >= CALM_MIN_COVER else "none"), cover


def judge_audio(audio: np.ndarray, sample_rate: int) -> dict:
    """The audio half of the verdict. audio (S,) or (C, S) float."""
    audio = np.asarray(audio, np.float64)
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    if mono.size < sample_rate // 4:
        return {"audio_onsets": [], "ambience": "clear", "music": "none", "subject_sounds": []}
    onsets = audio_onsets(mono, sample_rate)
    music = music_class(mono, sample_rate)
    nperseg = int(sample_rate * 0.25)  # 4 Hz bins: an engine's harmonics fill few of them
    freqs, _, spec = signal.stft(mono, sample_rate, nperseg=nperseg, noverlap=nperseg // 2)
    power = np.abs(spec) ** 2 * 2  # one-sided: RMS^2 = sum over bins of 2 |X|^2 (Hann, scaling='spectrum')
    hiss = float(np.percentile(_noise_rms(power, freqs, ONSET_BAND[0], min(ONSET_BAND[1], 0.45 * sample_rate)), 30))
    rumble = float(np.percentile(_noise_rms(power, freqs, 30, 350), 20))
    if any(o["kind"] == "thunder" for o in onsets):
        ambience = "thunderstorm"
    elif rumble >= WATERFALL_RMS:
        ambience = "waterfall"
    elif hiss >= RAIN_HISS_RMS:
        ambience = "rain"
    else:
        ambience = "clear"
    sounds = set()
    if any(o["kind"] == "impact" for o in onsets):
        sounds.add("impacts")
    if any(o["kind"] == "footstep" for o in onsets):
        sounds.add("footsteps")
    if engine_present(mono, sample_rate):
        sounds.add("engine")
    return {
        "audio_onsets": onsets,
        "ambience": ambience,
        "music": music[0],
        "subject_sounds": sorted(sounds),
        "levels": {"hiss_rms": hiss, "rumble_rms": rumble, "beat_cover": music[1]},  # for diagnosis
    }
