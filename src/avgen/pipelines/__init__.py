"""Pipelines, diffusers-style: one file per pipeline, each a DiffusionPipeline with one `__call__`.

Imported on first use (PEP 562), so `import avgen.pipelines` stays cheap and one pipeline's module never
has to import the other's models.
"""

import importlib

_MODULES = {
    "AVGenPipeline": "text_to_audio_video",
    "TextToVideoPipeline": "text_to_video",
    "UpsamplePipeline": "upsample",
    "VideoEditPipeline": "video_edit",
    "VideoToAudioPipeline": "video_to_audio",
}

__all__ = list(_MODULES)


def __getattr__(name):
    if name in _MODULES:
        return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
