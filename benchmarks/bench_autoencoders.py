"""How much of a world clip survives the autoencoders: PSNR, and the judge on reconstructions.

Renders held-aside world clips in both Movie Gen formats (10 s at 24 fps, 16 s at 16 fps), passes the
video through the temporal autoencoder (encode, posterior mean, tiled decode) and the audio through the
audio autoencoder, and judges original and reconstruction against the clip's ground truth. An attribute
or event the judge reads on the original but not on the reconstruction is lost by the autoencoder,
and no generator built on its latents can produce it - the ceiling of everything downstream.

    .venv/bin/python benchmarks/bench_autoencoders.py --weights weights/tiny [--n 40] [--only video|audio]
        [--vae FOLDER] [--held-out] [--still examples/gallery/vae_round_trip.png]
Writes benchmarks/results/autoencoders.json. With --only, the other autoencoder is not used (the clip keeps
its original frames or sound), so each can be measured as soon as it is trained. --vae judges another video
autoencoder folder (a candidate, e.g. one exported from a run) in place of the weights' own.

Block grid: a decoder that paints each p x p patch on its own leaves edges on the patch lattice. `block_grid`
is the mean |difference| between neighbouring pixels across lattice lines divided by the same within patches,
for originals and reconstructions: about 1 for a picture without a grid, above it with one.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from avgen.models import AudioAutoencoder, TemporalAutoencoder
from avgen.world import judge, metrics, render_clip
from avgen.world.judge_accuracy import AUDIO_CLASS, VISUAL_KIND, _visible_truth_events, judged_attributes, match_events, truth_attributes
from avgen.world.spec import sample_spec

ROOT = Path(__file__).resolve().parents[1]
# An attribute's "nothing" value: on a plain mean over clips an autoencoder that drops all music still
# scores on the clips without any, so these also get a figure over the clips that do have one.
ABSENT = {"music": "none", "ambience": "clear"}


@torch.no_grad()
def reconstruct(vae, audio_vae, clip):
    """(frames (F, H, W, 3) uint8, audio (S,)) through the autoencoders that are given (None: kept as is)."""
    video, sound = clip.frames, np.asarray(clip.audio, np.float32)
    if vae is not None:
        frames = torch.from_numpy(clip.frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # (1, 3, F, H, W)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = vae.encode(frames).latent_dist.mode()
            decoded = vae.decode(z, num_frames=frames.shape[2], tile_latent_frames=16, tile_overlap=4).sample
        video = ((decoded.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 3, 0).numpy()
    if audio_vae is not None:
        audio = torch.from_numpy(sound).reshape(1, 1, -1)
        decoded = audio_vae.decode(audio_vae.encode(audio).latent_dist.mode(), num_samples=audio.shape[-1]).sample
        sound = decoded[0, 0].clamp(-1, 1).numpy()
    return video, sound


def block_grid(frames: np.ndarray, patch: int) -> float:
    """frames (F, H, W, 3) uint8 -> mean |step| across patch-lattice lines / mean |step| elsewhere, both axes."""
    x = frames.astype(np.float32)
    ratios = []
    for axis in (1, 2):  # rows, columns
        steps = np.abs(np.diff(x, axis=axis))  # step i is between pixels i and i + 1
        on_lattice = np.arange(steps.shape[axis]) % patch == patch - 1
        across = np.compress(on_lattice, steps, axis=axis).mean()
        ratios.append(across / max(np.compress(~on_lattice, steps, axis=axis).mean(), 1e-6))
    return float(np.mean(ratios))


def save_still(path: Path, pairs: list[tuple[np.ndarray, np.ndarray]], scale: int = 4) -> None:
    """A PNG of (original, reconstruction) frame pairs side by side, one pair a row, enlarged `scale` times
    with nearest-neighbour so the pixels (and any block grid) stay visible."""
    from PIL import Image

    rows = [np.concatenate([original, np.full_like(original[:, :2], 255), decoded], axis=1) for original, decoded in pairs]
    picture = np.concatenate([np.pad(row, ((0, 2), (0, 0), (0, 0)), constant_values=255) for row in rows], axis=0)
    picture = picture.repeat(scale, axis=0).repeat(scale, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path)


def event_hits(truth, verdict, fps) -> dict:
    """Per event kind: (truth events, those with a judged event within +-1 frame)."""
    hits = {}
    for kind, judged_kind in VISUAL_KIND.items():
        times = _visible_truth_events(truth, kind)
        judged = [e["time"] for e in verdict["visual_events"] if e["kind"] == judged_kind]
        hits[f"visual/{kind}"] = (len(times), sum(o <= 1.0 / fps for o in match_events(times, judged)))
    for kind, onset_class in AUDIO_CLASS.items():
        times = truth.events_of(kind)
        judged = [o["time"] for o in verdict["audio_onsets"] if o["kind"] == onset_class]
        hits[f"audio/{kind}"] = (len(times), sum(o <= 1.0 / fps for o in match_events(times, judged)))
    return hits


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=Path, default=ROOT / "weights" / "tiny")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--only", choices=("video", "audio"), default=None)
    parser.add_argument("--vae", type=Path, default=None, help="a video autoencoder folder to judge instead of WEIGHTS/vae")
    parser.add_argument("--held-out", action="store_true", help="clips of the held-out subject pairs (the issue's set)")
    parser.add_argument("--still", type=Path, default=None, help="write a PNG of original | reconstruction frames here")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results",
                        help="folder of autoencoders[_ONLY].json (a candidate's figures go elsewhere)")
    args = parser.parse_args()
    vae_folder = args.vae or args.weights / "vae"
    vae = TemporalAutoencoder.from_pretrained(vae_folder).eval() if args.only != "audio" else None
    audio_vae = AudioAutoencoder.from_pretrained(args.weights / "audio_vae").eval() if args.only != "video" else None
    rng = np.random.default_rng(args.seed)
    correct = {"original": defaultdict(int), "reconstruction": defaultdict(int)}
    events = {"original": defaultdict(lambda: [0, 0]), "reconstruction": defaultdict(lambda: [0, 0])}
    present = defaultdict(int)  # clips whose truth has the attribute: the denominator of its "(present)" figure
    psnrs, grids, still, started = [], {"original": [], "reconstruction": []}, [], time.time()
    clips = []  # per clip: truth, both judgements, event hits (paired comparisons of two autoencoders need them)
    for i in range(args.n):
        duration, fps = ((10.0, 24), (16.0, 16))[i % 2]
        clip = render_clip(sample_spec(rng, held_out=args.held_out, fps=fps, duration=duration))
        video, audio = reconstruct(vae, audio_vae, clip)
        if vae is not None:
            psnrs.append(metrics.psnr(clip.frames, video))
            grids["original"].append(block_grid(clip.frames, vae.spatial_compression_ratio))
            grids["reconstruction"].append(block_grid(video, vae.spatial_compression_ratio))
            if len(still) < 4:  # a frame from the middle of each of the first clips
                still.append((clip.frames[len(video) // 2], video[len(video) // 2]))
        truth = truth_attributes(clip.truth)
        has = [key for key in ABSENT if truth[key] != ABSENT[key]]  # music, rain... that this clip has
        for key in has:
            present[f"{key} (present)"] += 1
        record = {"fps": fps, "truth": truth, "psnr_db": psnrs[-1] if vae is not None else None}
        for name, (frames, sound) in {"original": (clip.frames, clip.audio), "reconstruction": (video, audio)}.items():
            verdict = judge.judge_clip(frames, sound, fps, clip.sample_rate)
            judged = judged_attributes(verdict)
            record[name] = {"judged": judged, "events": event_hits(clip.truth, verdict, fps)}
            for key, value in truth.items():
                correct[name][key] += judged[key] == value
                if key in has:  # the same, on the clips that have it
                    correct[name][f"{key} (present)"] += judged[key] == value
            for kind, (total, hit) in event_hits(clip.truth, verdict, fps).items():
                events[name][kind][0] += total
                events[name][kind][1] += hit
        clips.append(record)
    report = {
        "n": args.n, "weights": str(args.weights), "vae": str(vae_folder) if vae is not None else None, "held_out": args.held_out,
        "only": args.only, "seconds": round(time.time() - started, 1),
        "video_psnr_db": {"mean": float(np.mean(psnrs)), "min": float(np.min(psnrs))} if psnrs else None,
        "block_grid": {name: float(np.mean(values)) for name, values in grids.items()} if psnrs else None,
        "attribute_accuracy": {name: {k: v / present.get(k, args.n) for k, v in c.items()} for name, c in correct.items()},
        "clips_present": dict(present),
        "event_within_1_frame": {name: {k: (hit / total if total else None) for k, (total, hit) in e.items()} for name, e in events.items()},
        "clips": clips,
    }
    if psnrs:
        print(f"video PSNR {report['video_psnr_db']['mean']:.2f} dB (min {report['video_psnr_db']['min']:.2f}) over {args.n} clips; "
              f"block grid {report['block_grid']['reconstruction']:.2f} (originals {report['block_grid']['original']:.2f})")
    if args.still and still:
        save_still(args.still, still)
        print(f"wrote {args.still}")
    print(f"{'judged on':24s} {'original':>9s} {'reconstr.':>9s}")
    for key in report["attribute_accuracy"]["original"]:
        print(f"{key:24s} {report['attribute_accuracy']['original'][key]:9.1%} {report['attribute_accuracy']['reconstruction'][key]:9.1%}")
    for key in report["event_within_1_frame"]["original"]:
        o, r = report["event_within_1_frame"]["original"][key], report["event_within_1_frame"]["reconstruction"][key]
        print(f"{key + ' +-1 frame':24s} {'-' if o is None else f'{o:9.1%}':>9s} {'-' if r is None else f'{r:9.1%}':>9s}")
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"autoencoders{'_' + args.only if args.only else ''}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
