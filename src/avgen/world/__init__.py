"""The procedural world: training data, test data and benchmark with exact ground truth (docs/world.md)."""

from .render import WorldClip, render_frames
from .simulate import ground_truth, simulate
from .spec import ClipSpec
from .synth import synthesize_audio


def render_clip(spec: ClipSpec) -> WorldClip:
    """Render one clip of the world: frames, audio and exact ground truth, all from one simulation.

    Deterministic: the same spec (seed included) gives bit-identical frames and audio.
    """
    sim = simulate(spec)
    return WorldClip(render_frames(sim), synthesize_audio(sim), spec.fps, spec.sample_rate, ground_truth(sim))


__all__ = ["WorldClip", "render_clip", "render_frames", "simulate", "synthesize_audio", "ground_truth"]
