"""The benchmark metrics of the world (docs/world.md, "Metrics").

Everything here compares the judge's verdicts (`avgen.world.judge`) with what was prompted, or compares
pixels/sounds with references. Inputs are plain arrays and dicts, so every metric is testable without
rendering anything.

- adherence: `prompted_attributes` (from a caption or a ClipSpec) vs a verdict -> per-attribute hits.
- sync: `event_sync` (offset of each visual event to the nearest audio onset) and `av_align` (TempoTokens).
- consistency: `temporal_consistency` (colour/identity stability of the subject track, flicker).
- diversity: `diversity` (trajectories and event times across seeds of one prompt).
- editing: `edit_success`, `preservation_psnr` with `subject_mask` (subject edits) or `judge.subject_pixels` (scene edits).
- upsampling: `psnr`, `ssim` (Wang et al. 2004, Gaussian window).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import ndimage, signal

from avgen.world.spec import ClipSpec

# Which sound the main subject makes, by kind (docs/world.md, "Subjects and motions"): the prompted subject sound.
SUBJECT_SOUND: dict[str, str] = {"ball": "impacts", "car": "engine", "person": "footsteps"}
# A rolling ball never leaves the floor, so it has no contacts and makes no impact sound.
SILENT_MOTIONS: frozenset[tuple[str, str]] = frozenset({("ball", "rolling")})

# Attributes of each adherence score, in report order. "speed" only counts for a car.
VIDEO_ATTRIBUTES: tuple[str, ...] = ("subject", "color", "background", "motion", "direction", "speed", "camera", "weather")
AUDIO_ATTRIBUTES: tuple[str, ...] = ("ambience", "music", "subject_sound")

# Audio onset class that a visual event kind must meet to count as "in sync" (judge's onset classes).
ONSET_CLASS_OF_EVENT: dict[str, str] = {"contact": "impact", "footstep": "footstep", "flash": "thunder"}

# --- AV-Align (Yariv et al., "Diverse and Aligned Audio-to-Video Generation via Text-to-Video Model
# Adaptation", AAAI 2024; reference code github.com/guyyariv/TempoTokens av_align.py). Their pipeline:
# audio peaks = librosa.onset.onset_detect on librosa.load's 22.05 kHz audio with librosa's defaults;
# video peaks = strict local maxima of the mean Farneback optical-flow magnitude between consecutive
# frames (frame i -> time i / fps); score = |matched audio peaks| / (|A| + |V| - |matched|), where an
# audio peak is matched if some video peak lies strictly within +-1/fps of it. OpenCV and librosa are
# not dependencies of avgen, so both detectors are reimplemented below with numpy/scipy; the onset
# detector reproduces librosa's defaults exactly, the optical flow is a pyramidal Lucas-Kanade instead
# of Farneback (same role: mean flow magnitude per frame pair).
AV_ALIGN_SAMPLE_RATE = 22_050  # librosa.load's default resampling rate
ONSET_N_FFT = 2048  # librosa melspectrogram defaults
ONSET_HOP = 512
ONSET_N_MELS = 128
ONSET_TOP_DB = 80.0  # power_to_db(ref=1, amin=1e-10, top_db=80)
ONSET_AMIN = 1e-10
ONSET_LAG = 1  # onset_strength: lag=1, max_size=1 (plain positive spectral flux, mean over mel bands)
# onset_detect -> util.peak_pick defaults, in seconds (converted to frames as librosa does):
ONSET_PRE_MAX_S, ONSET_POST_MAX_S = 0.03, 0.00  # post_max gets +1 frame
ONSET_PRE_AVG_S, ONSET_POST_AVG_S = 0.10, 0.10  # post_avg gets +1 frame
ONSET_WAIT_S = 0.03
ONSET_DELTA = 0.07  # threshold above the local mean of the [0, 1]-normalised envelope
FLOW_LEVELS = 3  # pyramid levels (Farneback's levels=3, pyr_scale=0.5 in the reference)
FLOW_WINDOW_SIGMA = 2.5  # Gaussian LK window in pixels (~15 px support, Farneback winsize=15)
FLOW_EPS = 1e-3  # Tikhonov term of the 2x2 LK system, keeps flat regions at zero flow

# --- SSIM (Wang, Bovik, Sheikh, Simoncelli 2004): 11x11 Gaussian window of sigma 1.5, K1=0.01, K2=0.03,
# population (not sample) statistics, mean over channels; the same as skimage's gaussian_weights=True.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # radius = int(3.5 * 1.5 + 0.5) = 5 -> 11 taps
SSIM_K1, SSIM_K2 = 0.01, 0.03

# Preservation: the subject box is grown by this share of the frame side before it is masked out, to
# cover the 1-px outline, motion blur of a generator and small box errors of the judge.
MASK_MARGIN = 0.06


# --- prompted attributes ------------------------------------------------------------------------
def prompted_attributes(source: ClipSpec | dict) -> dict:
    """The attributes a clip was asked for, as a flat dict with keys subject, color, motion,
    direction, speed, background, weather, music, camera (None = not prompted) and second
    ({"subject", "motion"} of a second subject, or None).

    `source` is a ClipSpec (or its to_dict()) or the dict of `captions.parse_caption`."""
    if isinstance(source, ClipSpec):
        source = source.to_dict()
    if isinstance(source.get("subject"), dict):  # a ClipSpec dict
        subject = source["subject"]
        flat = {
            "subject": subject["kind"],
            "color": subject["color"],
            "motion": subject["motion"],
            "direction": subject["direction"],
            "speed": subject.get("speed"),
        }
        flat.update({key: source.get(key) for key in ("background", "weather", "music", "camera")})
        second = source.get("second")
        flat["second"] = {"subject": second["kind"], "motion": second["motion"]} if second else None
        return flat
    flat = {key: source.get(key) for key in ("color", "motion", "direction", "speed", "background", "weather", "music", "camera")}
    flat["subject"] = source.get("subject", source.get("kind"))
    flat["second"] = source.get("second")
    return flat


def expected_subject_sound(kind: str | None, motion: str | None) -> str | None:
    """The sound a subject makes ("none" for a rolling ball), None for an unknown subject."""
    if kind is None:
        return None
    return "none" if (kind, motion) in SILENT_MOTIONS else SUBJECT_SOUND[kind]


# --- adherence ----------------------------------------------------------------------------------
def _share(hits: dict[str, bool]) -> float | None:
    return sum(hits.values()) / len(hits) if hits else None


def judged_attributes(verdict: dict) -> dict:
    """A judge verdict flattened to the attribute names of `prompted_attributes`."""
    subject = verdict["subject"]
    return {
        "subject": subject["kind"],
        "color": subject["color"],
        "motion": subject["motion"],
        "direction": subject["direction"],
        "speed": subject["speed"],
        "background": verdict["background"],
        "camera": verdict["camera"],
        "weather": verdict["weather"],
        "ambience": verdict.get("ambience"),  # absent from a video-only verdict
        "music": verdict.get("music"),
    }


def video_adherence(verdict: dict, prompted: dict) -> dict:
    """Per prompted visual attribute, whether the judge recovered it; `score` is the share recovered.

    Returns {"hits": {attribute: bool}, "score": float | None}. Unprompted attributes are skipped;
    speed counts only when a car was prompted."""
    judged = judged_attributes(verdict)
    hits = {}
    for attribute in VIDEO_ATTRIBUTES:
        wanted = prompted.get(attribute)
        if wanted is None or (attribute == "speed" and prompted.get("subject") != "car"):
            continue
        hits[attribute] = judged[attribute] == wanted
    return {"hits": hits, "score": _share(hits)}


def audio_adherence(verdict: dict, prompted: dict) -> dict:
    """Ambience (the weather's sound), music and the subject's own sound, as prompted.

    An unprompted weather or music counts as prompted "clear"/"none": silence is part of the prompt's
    meaning (no music was asked for). The subject sound is a hit when the judge hears the prompted
    subject's sound among `subject_sounds` (a second subject may add its own). Returns
    {"hits": {attribute: bool}, "score": float | None}."""
    hits = {
        "ambience": verdict["ambience"] == (prompted.get("weather") or "clear"),
        "music": verdict["music"] == (prompted.get("music") or "none"),
    }
    sound = expected_subject_sound(prompted.get("subject"), prompted.get("motion"))
    if sound is not None:
        heard = set(verdict["subject_sounds"])
        if sound == "none":  # a silent main subject: nothing heard but what a prompted second subject makes
            second = prompted.get("second") or {}
            heard -= {expected_subject_sound(second.get("subject"), second.get("motion"))}
            hits["subject_sound"] = not heard
        else:
            hits["subject_sound"] = sound in heard
    return {"hits": hits, "score": _share(hits)}


# --- audio-visual sync ----------------------------------------------------------------------------
def nearest_offsets(event_times, onset_times) -> np.ndarray:
    """Signed offset (onset - event, seconds) from each event to its nearest onset; inf without onsets.
    Shape (len(event_times),)."""
    events = np.asarray(event_times, dtype=np.float64)
    onsets = np.sort(np.asarray(onset_times, dtype=np.float64))
    if onsets.size == 0:
        return np.full(events.shape, np.inf)
    right = np.clip(np.searchsorted(onsets, events), 0, onsets.size - 1)
    left = np.clip(right - 1, 0, onsets.size - 1)
    to_right, to_left = onsets[right] - events, onsets[left] - events
    return np.where(np.abs(to_left) <= np.abs(to_right), to_left, to_right)


def event_offsets(verdict: dict) -> dict[str, np.ndarray]:
    """Per visual event kind: the signed offset (seconds; inf without onsets) from each judged visual event to the
    nearest judged audio onset of the matching class (contact -> impact, footstep -> footstep, flash -> thunder)."""
    offsets = {}
    for kind, onset_class in ONSET_CLASS_OF_EVENT.items():
        events = [e["time"] for e in verdict["visual_events"] if e["kind"] == kind]
        onsets = [o["time"] for o in verdict["audio_onsets"] if o["kind"] == onset_class]
        offsets[kind] = nearest_offsets(events, onsets)
    return offsets


def event_sync(verdict: dict, fps: float) -> dict:
    """For each judged visual event, offset to the nearest judged audio onset of the matching class (event_offsets).

    Returns {"events": n, "median_abs_offset_ms": float | None, "within_one_frame": share | None}
    (None when the clip has no visual event). An event with no onset of its class counts as out of sync."""
    offsets = np.abs(np.concatenate(list(event_offsets(verdict).values())))
    if offsets.size == 0:
        return {"events": 0, "median_abs_offset_ms": None, "within_one_frame": None}
    return {
        "events": int(offsets.size),
        "median_abs_offset_ms": float(np.median(offsets) * 1000.0),
        "within_one_frame": float(np.mean(offsets <= 1.0 / fps + 1e-9)),
    }


def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa.filters.mel defaults (Slaney mel scale, Slaney area normalisation), (n_mels, n_fft//2+1)."""

    def hz_to_mel(hz):
        hz = np.asarray(hz, dtype=np.float64)
        f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
        mel = hz / f_sp
        return np.where(hz >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(hz, 1e-12) / min_log_hz) / logstep, mel)

    def mel_to_hz(mel):
        f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
        min_log_mel = min_log_hz / f_sp
        return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)

    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]


def audio_peaks(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """AV-Align's audio peaks: librosa.onset.onset_detect with its defaults, reimplemented.

    audio (S,) or (C, S) float; returns onset times in seconds (K,)."""
    audio = np.asarray(audio, dtype=np.float64)
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    ratio = math.gcd(AV_ALIGN_SAMPLE_RATE, int(sample_rate))
    y = signal.resample_poly(mono, AV_ALIGN_SAMPLE_RATE // ratio, int(sample_rate) // ratio)
    if y.size == 0 or not np.any(y):
        return np.zeros(0)
    # Centred STFT with a Hann window and reflect padding, as librosa.stft(center=True).
    y = np.pad(y, ONSET_N_FFT // 2, mode="constant" if y.size <= ONSET_N_FFT // 2 else "reflect")
    num_frames = 1 + (y.size - ONSET_N_FFT) // ONSET_HOP
    index = np.arange(ONSET_N_FFT)[None, :] + ONSET_HOP * np.arange(num_frames)[:, None]
    window = signal.get_window("hann", ONSET_N_FFT, fftbins=True)
    power = np.abs(np.fft.rfft(y[index] * window, axis=1)) ** 2  # (T, n_fft//2+1)
    mel = power @ _mel_filterbank(AV_ALIGN_SAMPLE_RATE, ONSET_N_FFT, ONSET_N_MELS).T  # (T, n_mels)
    db = 10.0 * np.log10(np.maximum(ONSET_AMIN, mel))
    db = np.maximum(db, db.max() - ONSET_TOP_DB)
    flux = np.maximum(0.0, db[ONSET_LAG:] - db[:-ONSET_LAG]).mean(axis=1)
    # onset_strength(center=True) pads lag + n_fft // (2 * hop) zeros in front and keeps T frames.
    envelope = np.pad(flux, (ONSET_LAG + ONSET_N_FFT // (2 * ONSET_HOP), 0))[:num_frames]
    envelope = envelope - envelope.min()
    if envelope.max() <= 0:
        return np.zeros(0)
    envelope = envelope / envelope.max()
    frames_per_s = AV_ALIGN_SAMPLE_RATE / ONSET_HOP
    pre_max, post_max = int(ONSET_PRE_MAX_S * frames_per_s), int(ONSET_POST_MAX_S * frames_per_s) + 1
    pre_avg, post_avg = int(ONSET_PRE_AVG_S * frames_per_s), int(ONSET_POST_AVG_S * frames_per_s) + 1
    wait = int(ONSET_WAIT_S * frames_per_s)
    peaks, last = [], -np.inf
    for n in range(envelope.size):  # librosa.util.peak_pick's rule, frame by frame
        local_max = envelope[max(0, n - pre_max) : n + post_max].max()
        local_mean = envelope[max(0, n - pre_avg) : n + post_avg].mean()
        if envelope[n] == local_max and envelope[n] >= local_mean + ONSET_DELTA and n > last + wait:
            peaks.append(n)
            last = n
    return np.asarray(peaks, dtype=np.float64) * ONSET_HOP / AV_ALIGN_SAMPLE_RATE


def _gray(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, H, W) float64 luma in [0, 255] (ITU-R BT.601, as cv2.COLOR_BGR2GRAY)."""
    return np.asarray(frames, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


def flow_magnitude(frames: np.ndarray) -> np.ndarray:
    """Mean optical-flow magnitude (pixels) between consecutive frames, by pyramidal Lucas-Kanade.

    frames (F, H, W, 3) uint8 -> (F - 1,) where entry i is the flow from frame i to frame i + 1."""
    gray = _gray(frames)
    if gray.shape[0] < 2:
        return np.zeros(0)
    pyramid = [gray]
    for _ in range(FLOW_LEVELS - 1):
        if min(pyramid[-1].shape[1:]) < 16:
            break
        pyramid.append(ndimage.zoom(ndimage.gaussian_filter(pyramid[-1], (0, 1, 1)), (1, 0.5, 0.5), order=1))
    flow = np.zeros(pyramid[-1][:-1].shape + (2,))  # (F-1, h, w, 2) as (dx, dy)
    for level, image in enumerate(reversed(pyramid)):
        if level > 0:  # upsample the coarser flow to this level, doubling its length
            scale = (1, image.shape[1] / flow.shape[1], image.shape[2] / flow.shape[2], 1)
            flow = 2.0 * ndimage.zoom(flow, scale, order=1)
        first, second = image[:-1], image[1:]
        _, height, width = first.shape
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        warped = np.stack([
            ndimage.map_coordinates(second[i], [ys + flow[i, ..., 1], xs + flow[i, ..., 0]], order=1, mode="nearest")
            for i in range(first.shape[0])
        ])
        grad_y, grad_x = np.gradient(first, axis=(1, 2))
        grad_t = warped - first
        smooth = lambda a: ndimage.gaussian_filter(a, (0, FLOW_WINDOW_SIGMA, FLOW_WINDOW_SIGMA))  # noqa: E731
        ixx, iyy, ixy = smooth(grad_x * grad_x) + FLOW_EPS, smooth(grad_y * grad_y) + FLOW_EPS, smooth(grad_x * grad_y)
        ixt, iyt = smooth(grad_x * grad_t), smooth(grad_y * grad_t)
        det = ixx * iyy - ixy * ixy
        flow = flow + np.stack([(-iyy * ixt + ixy * iyt) / det, (ixy * ixt - ixx * iyt) / det], axis=-1)
    return np.linalg.norm(flow, axis=-1).mean(axis=(1, 2))


def video_peaks(frames: np.ndarray, fps: float) -> np.ndarray:
    """AV-Align's video peaks: strict local maxima of the flow trajectory, as times i / fps.

    The reference trajectory is [flow(0,1), flow(0,1), flow(1,2), ...] (frame 0 repeats the first
    pair), so trajectory index i is the flow arriving at frame i."""
    magnitude = flow_magnitude(frames)
    if magnitude.size == 0:
        return np.zeros(0)
    trajectory = np.concatenate([magnitude[:1], magnitude])
    inner = np.arange(1, trajectory.size - 1)
    is_peak = (trajectory[inner - 1] < trajectory[inner]) & (trajectory[inner] > trajectory[inner + 1])
    return inner[is_peak] / float(fps)


def av_align_score(audio_times, video_times, fps: float) -> float:
    """AV-Align IoU: an audio peak is matched when a video peak lies strictly within +-1/fps of it;
    score = matched / (|A| + |V| - matched). 0 when both are empty (nothing to align)."""
    audio_times = np.asarray(audio_times, dtype=np.float64)
    video_times = np.asarray(video_times, dtype=np.float64)
    if audio_times.size + video_times.size == 0:
        return 0.0
    offsets = np.abs(nearest_offsets(audio_times, video_times))
    matched = int(np.sum(offsets < 1.0 / fps))
    return matched / (audio_times.size + video_times.size - matched)


def av_align(frames: np.ndarray, audio: np.ndarray, fps: float, sample_rate: int) -> float:
    """AV-Align of a decoded clip (frames (F, H, W, 3) uint8, audio (S,) or (C, S))."""
    return av_align_score(audio_peaks(audio, sample_rate), video_peaks(frames, fps), fps)


# --- temporal consistency ---------------------------------------------------------------------
def temporal_consistency(verdict: dict, frames: np.ndarray) -> dict:
    """Subject colour and identity stability along the judge's per-frame track, and flicker.

    - color_stability: share of frames (where the subject was found) whose colour is the clip's
      majority colour;
    - identity_stability: share of frames whose per-frame subject kind is the clip's majority kind;
    - flicker: median over frame pairs of |change of the mean luma| / 255. Median, so that real
      lightning flashes (1-2 frames) do not count; camera motion changes the mean luma only slowly.
    """
    track = verdict["track"]

    def stability(labels):
        labels = [label for label in labels if label is not None]
        if not labels:
            return None
        _, counts = np.unique(labels, return_counts=True)
        return float(counts.max() / len(labels))

    mean_luma = _gray(frames).mean(axis=(1, 2))
    flicker = float(np.median(np.abs(np.diff(mean_luma))) / 255.0) if mean_luma.size > 1 else 0.0
    return {
        "color_stability": stability(track["color"]),
        "identity_stability": stability(track["kind"]),
        "flicker": flicker,
    }


# --- diversity ---------------------------------------------------------------------------------
def diversity(verdicts: list[dict], fps: float, resolution: int) -> dict:
    """How different the clips of one prompt (different seeds) are.

    - trajectory: mean over clip pairs of the mean distance between their subject centroid tracks
      (frames where both found the subject), as a share of the frame side;
    - event_times: mean over clip pairs of the share of visual events NOT matched within +-1 frame
      by an event of the other clip (1 = all event times differ, 0 = identical timing).
    None with fewer than two clips (or nothing comparable)."""
    distances, unmatched = [], []
    for a, b in itertools.combinations(verdicts, 2):
        track_a, track_b = a["track"]["centroid"], b["track"]["centroid"]
        pairs = [(p, q) for p, q in zip(track_a, track_b) if p is not None and q is not None]
        if pairs:
            p, q = np.asarray(pairs, dtype=np.float64).transpose(1, 0, 2)
            distances.append(float(np.linalg.norm(p - q, axis=1).mean() / resolution))
        times_a = [e["time"] for e in a["visual_events"]]
        times_b = [e["time"] for e in b["visual_events"]]
        if times_a or times_b:
            far_a = np.abs(nearest_offsets(times_a, times_b)) > 1.0 / fps + 1e-9
            far_b = np.abs(nearest_offsets(times_b, times_a)) > 1.0 / fps + 1e-9
            unmatched.append(float((far_a.sum() + far_b.sum()) / (len(times_a) + len(times_b))))
    return {
        "trajectory": float(np.mean(distances)) if distances else None,
        "event_times": float(np.mean(unmatched)) if unmatched else None,
    }


# --- editing ---------------------------------------------------------------------------------
def edit_success(verdict: dict, attribute: str, target: str) -> bool:
    """Whether the judged `attribute` (a VIDEO_ATTRIBUTES or AUDIO_ATTRIBUTES name) is now `target`."""
    judged = judged_attributes(verdict)
    if attribute == "subject_sound":
        return target in verdict["subject_sounds"]
    if attribute not in judged:
        raise ValueError(f"unknown edit attribute {attribute!r}; expected one of {sorted(judged)}")
    return judged[attribute] == target


def subject_mask(boxes, shape: tuple[int, int], margin: float = MASK_MARGIN) -> np.ndarray:
    """(F, H, W) bool, True inside the subject box of each frame (grown by `margin` x side).

    boxes: per frame (x0, y0, x1, y1) in pixels or None (subject not found: nothing masked)."""
    height, width = shape
    grow = margin * max(height, width)
    ys, xs = np.arange(height)[:, None] + 0.5, np.arange(width)[None, :] + 0.5
    mask = np.zeros((len(boxes), height, width), dtype=bool)
    for i, box in enumerate(boxes):
        if box is not None:
            x0, y0, x1, y1 = box
            mask[i] = (xs >= x0 - grow) & (xs <= x1 + grow) & (ys >= y0 - grow) & (ys <= y1 + grow)
    return mask


def preservation_psnr(source: np.ndarray, edited: np.ndarray, keep: np.ndarray) -> float:
    """PSNR (dB) of the edited clip against the source over the pixels that the edit must keep.

    source, edited: (F, H, W, 3) uint8 of the same shape; keep: (F, H, W) bool."""
    if source.shape != edited.shape:
        raise ValueError(f"source and edited clips differ in shape: {source.shape} vs {edited.shape}")
    return psnr(source, edited, mask=keep)


# --- upsampling -------------------------------------------------------------------------------
def psnr(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels (or those where `mask` (..., H, W) is True);
    inf for identical inputs."""
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(f"PSNR needs equal shapes; got {reference.shape} and {test.shape}")
    squared = (reference - test) ** 2
    if reference.ndim == 4 or (reference.ndim == 3 and reference.shape[-1] == 3):
        squared = squared.mean(axis=-1)  # channels -> one value per pixel, so the mask is (..., H, W)
    if mask is not None:
        squared = squared[np.broadcast_to(mask, squared.shape)]
        if squared.size == 0:
            raise ValueError("PSNR mask selects no pixel")
    mse = float(squared.mean())
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    """Mean structural similarity (Gaussian window, sigma 1.5, K1 0.01, K2 0.03).

    Inputs (H, W), (H, W, C) or (F, H, W, C); channels and frames are averaged, border pixels whose
    window leaves the image are excluded (skimage crops (win_size - 1) // 2 on each side)."""
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(f"SSIM needs equal shapes; got {reference.shape} and {test.shape}")
    if reference.ndim == 2:
        reference, test = reference[None, ..., None], test[None, ..., None]
    elif reference.ndim == 3:
        reference, test = reference[None], test[None]
    sigma = (0, SSIM_SIGMA, SSIM_SIGMA, 0)  # blur over H and W only, shape (F, H, W, C)
    blur = lambda a: ndimage.gaussian_filter(a, sigma, truncate=SSIM_TRUNCATE, mode="reflect")  # noqa: E731
    mu_x, mu_y = blur(reference), blur(test)
    var_x = blur(reference * reference) - mu_x**2
    var_y = blur(test * test) - mu_y**2
    cov = blur(reference * test) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    return float(ssim_map[:, pad:-pad, pad:-pad].mean())
