"""benchmarks/bench_text_path.py: its collapse measure tells a collapsed text encoder from a healthy one, and the
velocity probe answers a word change (tiny random pipeline)."""

import torch

from tests.benchmarks import load_script
from tests.pipelines.test_text_to_video import get_pipeline

CAPTIONS = ["a red ball bounces", "a blue car drives left on a road", "a woman walks in the rain. pan left."]


def fake_states(pipe, offset_scale):
    """encode_prompt replaced by states with a shared offset of norm ~offset_scale*sqrt(D) plus unit-std content."""
    generator = torch.Generator().manual_seed(0)
    offset = torch.randn(pipe.text_encoder.config.d_model, generator=generator) * offset_scale

    def encode_prompt(prompts, do_classifier_free_guidance=False):
        prompts = [prompts] if isinstance(prompts, str) else prompts
        states = offset + torch.randn(len(prompts), 7, offset.numel(), generator=generator)
        mask = torch.ones(len(prompts), 7, dtype=torch.long)
        mask[0, 5:] = 0  # padding is left out of every statistic
        return states, mask, None, None

    pipe.encode_prompt = encode_prompt
    return pipe


def test_collapse_measure_separates_a_shared_offset_from_spread_tokens():
    bench = load_script("bench_text_path")
    collapsed = bench.text_statistics(fake_states(get_pipeline(), 10.0), CAPTIONS * 20)
    healthy = bench.text_statistics(fake_states(get_pipeline(), 0.0), CAPTIONS * 20)
    assert collapsed["shared_direction_energy"] > 0.95 and healthy["shared_direction_energy"] < 0.1
    assert collapsed["pooled_cosine_median"] > 0.95 and abs(healthy["pooled_cosine_median"]) < 0.5
    assert abs(healthy["feature_std_median"] - 1) < 0.2


def test_velocity_probe_answers_the_words_of_the_prompt():
    bench = load_script("bench_text_path")
    result = bench.velocity_response(get_pipeline(), times=(0.5,), duration=1, fps=8, size=32)
    change = result["t=0.5"]
    assert set(change) == set(bench.SWAPS) | {"no text"}
    assert all(value > 1e-4 for value in change.values()), change  # every swap changes the byte-level tokens
