"""The README's main job: write an MP4 with sound, generated from a prompt by the shipped default weights.

    AVGenPipeline.from_pretrained()(prompt).save("outputs/quickstart.mp4")

While the shipped weights are not trained yet (no weights/tiny/model_index.json), it says so and writes a
clip rendered by avgen's procedural world instead, through the same output object and muxer, so that the
command still shows the output path working; the file's metadata says it was rendered, not generated.
"""

import time
from pathlib import Path

import torch

from avgen.pipelines.text_to_audio_video import DEFAULT_WEIGHTS

PROMPT = "A red ball bounces to the right across a grassy field during a thunderstorm. Tracking shot. Calm piano music."
out = Path("outputs/quickstart.mp4")
out.parent.mkdir(parents=True, exist_ok=True)
started = time.time()
if (DEFAULT_WEIGHTS / "model_index.json").is_file():
    from avgen import AVGenPipeline

    pipe = AVGenPipeline.from_pretrained()
    output = pipe(PROMPT, duration=10, fps=24, generator=torch.Generator().manual_seed(0))
    what = "generated"
else:
    from avgen.commands.demo import render_demo

    print(f"no shipped weights in {DEFAULT_WEIGHTS} yet (they are being trained): writing a world-rendered clip instead")
    output, PROMPT = render_demo(seed=0, fps=24, duration=10.0)
    what = "rendered by the world (not generated)"
output.save(out)
frames = output.video(0)
print(f"wrote {out}: {frames.shape[0] / output.fps:.0f} s, {output.fps} fps, {frames.shape[2]}x{frames.shape[1]}, "
      f"sound at {output.sample_rate} Hz, {what} in {time.time() - started:.1f} s: {PROMPT}")
