"""The README's main job: an MP4 with sound, generated from a prompt by the shipped default weights.

    .venv/bin/python examples/quickstart.py      # or: make demo

Writes outputs/quickstart.mp4: 10 s at 24 fps (Movie Gen's default format), 128x128 after the 2x upsampler,
16 kHz sound, with provenance metadata (generator, model version, prompt, seed).
"""

import time
from pathlib import Path

import torch

from avgen import AVGenPipeline

PROMPT = "A red ball bounces to the right across a grassy field during a thunderstorm. Tracking shot. Calm piano music."
out = Path("outputs/quickstart.mp4")
out.parent.mkdir(parents=True, exist_ok=True)
started = time.time()
pipe = AVGenPipeline.from_pretrained()  # no argument: the shipped weights/tiny
output = pipe(PROMPT, duration=10, fps=24, generator=torch.Generator().manual_seed(0))
output.save(out)
frames = output.video(0)
print(f"wrote {out}: {frames.shape[0] / output.fps:.0f} s, {output.fps} fps, {frames.shape[2]}x{frames.shape[1]}, "
      f"sound at {output.sample_rate} Hz, generated in {time.time() - started:.1f} s: {PROMPT}")
