"""avgen: text to video with synchronized sound, as diffusers-style pipelines.

    from avgen import AVGenPipeline
    pipe = AVGenPipeline.from_pretrained()  # the shipped weights
    pipe("rain on a red umbrella").save("out.mp4")

The pipelines are imported on first use (PEP 562), so `import avgen` stays cheap (no torch, no diffusers).
"""

__version__ = "0.1.0"

_PIPELINES = ("AVGenPipeline", "TextToVideoPipeline", "UpsamplePipeline", "VideoEditPipeline", "VideoToAudioPipeline")

__all__ = ["__version__", *_PIPELINES]


def __getattr__(name):
    if name in _PIPELINES:
        from . import pipelines

        return getattr(pipelines, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_PIPELINES))
