"""avgen: text to video with synchronized sound, as diffusers-style pipelines."""

__version__ = "0.1.0"
