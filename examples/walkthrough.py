# %% [markdown]
# # avgen, every pipeline once
#
# A notebook-style script (cells marked `# %%`, runnable as is or in Jupyter/VS Code): text to video with
# sound, each stage alone, adding sound to an existing video, editing, and judging the results with the
# world's benchmark. Outputs go to outputs/walkthrough/.
#
#     python examples/walkthrough.py
#
# AVGEN_MODEL / AVGEN_EDIT_MODEL choose other pipeline folders (default: the shipped weights/tiny and
# weights/tiny-edit); AVGEN_STEPS and AVGEN_DURATION make it quicker (the tests run it on tiny random models).

# %%
import os
import time
from pathlib import Path

import torch

from avgen import AVGenPipeline, VideoEditPipeline
from avgen.commands.edit import DEFAULT_MODEL as DEFAULT_EDIT_MODEL

OUT = Path(os.environ.get("AVGEN_OUT", "outputs/walkthrough"))
OUT.mkdir(parents=True, exist_ok=True)
STEPS = int(os.environ.get("AVGEN_STEPS", "50"))
DURATION = float(os.environ.get("AVGEN_DURATION", "10"))  # seconds at 24 fps; Movie Gen's other option: 16 s at 16 fps

# %% [markdown]
# ## 1. Text to video with sound: the main job
# One call runs the stages: text -> video latents -> decoded 64 px frames -> 2x spatial upsampler -> per-frame
# video features -> audio latents -> waveform. `generator` makes it reproducible; `.save` writes H.264 + AAC with
# the prompt, seed and model version in the MP4's metadata.

# %%
pipe = AVGenPipeline.from_pretrained(os.environ.get("AVGEN_MODEL") or None)
prompt = "A red ball bounces to the right across a grassy field during a thunderstorm. Tracking shot. Calm piano music."
started = time.time()
output = pipe(prompt, duration=DURATION, fps=24, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0))
output.save(OUT / "text_to_video_with_sound.mp4")
print(f"{time.time() - started:.1f} s: frames {output.video(0).shape}, audio {output.sound(0).shape} at {output.sample_rate} Hz")

# %% [markdown]
# ## 2. The stages alone
# `pipe.text_to_video`, `pipe.upsample` and `pipe.video_to_audio` are pipelines over the same modules (no copies).
# Separate prompts and guidance for picture and sound are arguments of the joint call too
# (`audio_prompt=`, `audio_guidance_scale=`).

# %%
video = pipe.text_to_video("A blue car drives fast to the left through a busy intersection. Pan left.",
                           duration=DURATION, fps=24, num_inference_steps=STEPS, output_type="pt",
                           generator=torch.Generator().manual_seed(1))
frames = video.frames  # (1, F, 3, 64, 64) float in [0, 1]: output_type="pt" is what the other stages take
sharp = pipe.upsample(frames, fps=24, output_type="pt").frames  # (1, F, 3, 128, 128)
sound = pipe.video_to_audio(frames, fps=24, prompt="engine roaring, upbeat music", num_inference_steps=STEPS,
                            generator=torch.Generator().manual_seed(2))
sound.save(OUT / "stages.mp4")
print(f"text_to_video {tuple(frames.shape)} -> upsample {tuple(sharp.shape)} -> video_to_audio {sound.sound(0).shape}")

# %% [markdown]
# ## 3. Sound for a video you already have (Foley)
# Any MP4 at 8-30 fps. `avgen foley in.mp4 -o out.mp4` does the same and copies the video stream untouched.

# %%
foley = pipe.video_to_audio(str(OUT / "text_to_video_with_sound.mp4"), prompt="with rain and calm piano music",
                            num_inference_steps=STEPS, generator=torch.Generator().manual_seed(3))
foley.save(OUT / "foley.mp4")

# %% [markdown]
# ## 4. Editing from an instruction
# The edit model sees the source video's latents beside the noise; the original sound is kept unless the
# instruction changes it ("add rain"), then it is regenerated from the edited video.

# %%
edit_folder = Path(os.environ.get("AVGEN_EDIT_MODEL") or DEFAULT_EDIT_MODEL)
if (edit_folder / "model_index.json").is_file():
    editor = VideoEditPipeline.from_pretrained(edit_folder)
    edited = editor(str(OUT / "text_to_video_with_sound.mp4"), "make the ball blue", num_inference_steps=STEPS,
                    generator=torch.Generator().manual_seed(4))
    edited.save(OUT / "edited.mp4")
else:
    print(f"no edit weights in {edit_folder}: skipping the edit cell")

# %% [markdown]
# ## 5. Judging the results
# The world's judge reads a clip's frames and sound only and says what it sees and hears; `avgen eval FOLDER`
# runs the whole benchmark on a folder of MP4s with their prompts.

# %%
from avgen.muxer import read_video  # noqa: E402
from avgen.world import judge, metrics  # noqa: E402
from avgen.world.captions import parse_caption  # noqa: E402

clip = read_video(OUT / "text_to_video_with_sound.mp4")
verdict = judge.judge_clip(clip.frames, clip.audio, clip.fps, clip.sample_rate)
asked = metrics.prompted_attributes(parse_caption(prompt))
print("video adherence", metrics.video_adherence(verdict, asked)["score"],
      "audio adherence", metrics.audio_adherence(verdict, asked)["score"],
      "sync", metrics.event_sync(verdict, clip.fps))
print("judged:", {key: verdict[key] for key in ("background", "camera", "weather", "music")})
