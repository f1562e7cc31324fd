"""Tiny random components of the composed pipelines, built from the stage tests' own builders (one place each)."""

import torch

from avgen.models import SpatialUpsampler
from avgen.pipelines import AVGenPipeline, UpsamplePipeline
from tests.pipelines.test_text_to_video import get_dummy_components as video_components
from tests.pipelines.test_video_to_audio import get_dummy_components as audio_components


def upsampler() -> SpatialUpsampler:
    """One block (temporal margin 3 frames). conv_out starts at zero (plain bicubic); random values make the
    learned residual show, so a test can tell the upsampler from bicubic."""
    torch.manual_seed(0)
    model = SpatialUpsampler(channels=8, num_blocks=1, norm_num_groups=4).eval()
    with torch.no_grad():
        for parameter in model.conv_out.parameters():
            parameter.normal_(0, 0.3)
    return model


def upsample_pipeline() -> UpsamplePipeline:
    pipe = UpsamplePipeline(upsampler())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def avgen_components(with_upsampler: bool = True) -> dict:
    """The video stage's 32x32 tiny models, the audio stage's (16 kHz, 50 latent steps a second) and the upsampler."""
    audio = audio_components()
    return dict(
        **video_components(),
        audio_text_encoder=audio["text_encoder"],
        audio_vae=audio["audio_vae"],
        audio_transformer=audio["audio_transformer"],
        video_encoder=audio["video_encoder"],
        upsampler=upsampler() if with_upsampler else None,
    )


def avgen_pipeline(with_upsampler: bool = True) -> AVGenPipeline:
    pipe = AVGenPipeline(**avgen_components(with_upsampler))
    pipe.set_progress_bar_config(disable=True)
    return pipe
