"""The README's main job: write an MP4 with sound.

Until the shipped text-to-video and video-to-audio models land (issues 4-6), this writes a clip rendered
by avgen's procedural world through the same output object and muxer the pipelines use. When the
models land, this becomes: AVGenPipeline.from_pretrained("weights/tiny")(prompt).save(...).
"""

from pathlib import Path

from avgen.commands.demo import render_demo

out = Path("outputs/quickstart.mp4")
out.parent.mkdir(parents=True, exist_ok=True)
output, prompt = render_demo(seed=0, fps=24, duration=10.0)
output.save(out)
print(f"wrote {out} ({output.video(0).shape[0] / output.fps:.0f} s, {output.fps} fps, sound at {output.sample_rate} Hz): {prompt}")
