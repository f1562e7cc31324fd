"""How much of the prompt reaches the video transformer: the text encoder's states, and the velocity's answer to
one word.

1. Text states of `--captions` world training captions (avgen.world.captions, seed fixed): the share of every
   token's energy along the one direction all tokens share (their mean), the median per-feature std against the
   norm of that mean, and the cosine between the pooled (masked-mean) states of different captions. A healthy
   encoder spreads tokens over many directions; the jointly trained tiny T5 of weights/tiny does not.
2. The transformer's velocity on fixed noise (one 10 s clip at 24 fps, 64 px) for a base prompt and for the same
   prompt with one word swapped (background, camera, subject, colour, weather) or with no text at all:
   ||v(swapped) - v(base)|| / ||v(base)||, at flow times 0.3 and 0.7. A word the model hears moves it.

    .venv/bin/python benchmarks/bench_text_path.py [--pipeline weights/tiny] [--name shipped] [--captions 256]
Writes benchmarks/results/text_path.json (one entry per --name, merged with earlier runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from avgen.models.text_encoder import text_state_statistics
from avgen.pipelines.text_to_video import TextToVideoPipeline

ROOT = Path(__file__).resolve().parents[1]
# a caption in the world's training phrasing; each swap changes one attribute to another value the world knows
BASE = "A red ball bounces across a grassy field under a clear sky. Static shot."
SWAPS = {"background": ("grassy field", "sandy beach"), "camera": ("Static shot", "Pan left"),
         "subject": ("ball", "car"), "colour": ("red", "blue"), "weather": ("under a clear sky", "in the rain")}


def text_statistics(pipe: TextToVideoPipeline, captions: list[str]) -> dict:
    states, masks = zip(*(pipe.encode_prompt(captions[i : i + 64], do_classifier_free_guidance=False)[:2]
                          for i in range(0, len(captions), 64)))
    return text_state_statistics(list(states), list(masks))


@torch.no_grad()
def velocity_response(pipe: TextToVideoPipeline, times=(0.3, 0.7), duration: float = 10, fps: int = 24, size: int = 64) -> dict:
    transformer = pipe.transformer.float()
    num_frames = pipe.resolve_num_frames(None, duration, fps)  # through the clock: 240 frames by default
    latents = torch.randn(pipe.latent_shape(1, num_frames, size, size, fps), generator=torch.Generator().manual_seed(0))

    def velocity(text, t):
        embeds, mask = pipe.encode_prompt(text, do_classifier_free_guidance=False)[:2]
        return transformer(hidden_states=latents, encoder_hidden_states=embeds.float(), timestep=torch.tensor([t]),
                           fps=fps, encoder_attention_mask=mask, return_dict=False)[0]

    prompts = {name: BASE.replace(old, new) for name, (old, new) in SWAPS.items()} | {"no text": ""}
    result = {}
    for t in times:
        base = velocity(BASE, t)
        result[f"t={t}"] = {name: ((velocity(text, t) - base).norm() / base.norm()).item() for name, text in prompts.items()}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default=str(ROOT / "weights" / "tiny"), help="a folder with text_encoder, tokenizer, transformer, vae")
    parser.add_argument("--name", default="shipped", help="key of this run in the results")
    parser.add_argument("--captions", type=int, default=256)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "text_path.json")
    args = parser.parse_args()

    from avgen.world.captions import caption
    from avgen.world.spec import sample_spec

    pipe = TextToVideoPipeline.from_pretrained(args.pipeline)
    rng = np.random.default_rng(12345)
    captions = [caption(sample_spec(rng, resolution=64), rng, "train") for _ in range(args.captions)]
    folder = Path(args.pipeline).resolve()
    entry = {"pipeline": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else args.pipeline, "text_states": text_statistics(pipe, captions), "velocity_change": velocity_response(pipe)}
    print(json.dumps(entry, indent=1))
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    results[args.name] = entry
    tmp = args.results.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(args.results)  # atomic


if __name__ == "__main__":
    main()
