"""The world's judge: what a decoded clip shows and sounds like, from its pixels and samples only.

`judge_clip(frames, audio, fps, sample_rate)` never sees a spec or a ground truth. It relies on the
world's *design* (documented in render.py and synth.py): the exact palette, the look of backgrounds
and weather, the camera model, the sound signatures. Its accuracy is measured on rendered ground
truth by `avgen world judge-accuracy` (judge_accuracy.py), through MP4 round trips.

Video (frames (F, H, W, 3) uint8)
- flashes: a frame whose mean luma jumps far above its neighbours' median (lightning);
- camera: integer content shift between keyframes 0.5 s apart (nearest-neighbour rendering makes the
  background move by whole pixels), its error summed over every pair of frames that far apart, and a
  zoom about the world's zoom centre (R/2, 0.75 R) tested on the first and last frames;
- background: median colours of a top (sky) and bottom (ground) band against the documented colours,
  under each weather tint;
- weather: flashes -> thunderstorm; a bright blue-white band at a screen edge -> waterfall; rain streaks
  (pixels that change between camera-aligned frames, away from the subject) -> rain;
- subject: pixels matching a palette colour in YCbCr (luma is full resolution after yuv420p; chroma is
  judged by direction and saturation, since 4:2:0 halves it on small shapes), connected components
  filtered by the main subject's place and size; kind from the shape of the palette region (car wide,
  dress tapered, ball round); motion/direction/speed from the camera-compensated track;
- events: ball contacts (lowest frames of a bouncing ball, or squashed on the floor), flashes, at frame
  centres (frame i -> (i + 0.5) / fps); footsteps from the periodic gait (leg spread below the dress and
  the body's bob) fitted over the whole clip, at the fitted landing times.
Audio (mono or (C, S) float)
- onsets of effects in the 2-7.2 kHz band, where only rain hiss is steady and music never reaches;
  classed by the sound up to the next onset: a slow decay (a crack, 50 ms) -> thunder, a 160 Hz thud
  (matched filter) -> impact, else footstep;
- ambience from steady band levels (rain hiss 2-7.2 kHz, waterfall rumble 30-350 Hz) and thunder;
- engine: a fundamental in 55-115 Hz and its 2nd harmonic, followed over the clip;
- music: attacks of each style's own pentatonic notes in 370-790 Hz on that style's exact tempo grid
  (a note every 0.857 s calm piano, every 0.234 s upbeat).

Layout: palette.py (colour space, palette matching, subject tracking and pixels), scene.py (flashes,
camera, background, weather), video.py (`judge_video`: kind, motion and events of the subject), audio.py
(`judge_audio`). Import from here, `avgen.world.judge`; the modules are its parts.
"""

from __future__ import annotations

import numpy as np

from avgen.world.judge.audio import audio_onsets, engine_present, judge_audio, music_class
from avgen.world.judge.palette import PALETTE_YCC, palette_masks, subject_pixels, track_subject
from avgen.world.judge.scene import classify_background, content_offsets, detect_flashes, rain_share, waterfall_side, zoom_factor
from avgen.world.judge.video import gait_landings, judge_video, leg_spread, majority


def judge_clip(frames: np.ndarray, audio: np.ndarray | None, fps: float, sample_rate: int | None) -> dict:
    """The full verdict of one decoded clip (JSON-serialisable). audio may be None (no sound track)."""
    verdict = judge_video(frames, float(fps))
    if audio is None or sample_rate is None:
        verdict.update({"audio_onsets": [], "ambience": "clear", "music": "none", "subject_sounds": []})
    else:
        verdict.update(judge_audio(audio, int(sample_rate)))
    return verdict


__all__ = [
    "PALETTE_YCC",
    "audio_onsets",
    "classify_background",
    "content_offsets",
    "detect_flashes",
    "engine_present",
    "gait_landings",
    "judge_audio",
    "judge_clip",
    "judge_video",
    "leg_spread",
    "majority",
    "music_class",
    "palette_masks",
    "rain_share",
    "subject_pixels",
    "track_subject",
    "waterfall_side",
    "zoom_factor",
]
