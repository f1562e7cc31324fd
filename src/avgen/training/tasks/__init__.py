"""What each model of a preset trains on and how: one Task per trainable component group, one file per task.

    base.py          the Task interface the trainer calls, typed options, shared helpers
    streams.py       data streams shared by the tasks (a user's folder looped, two streams mixed, paired renders)
    vae.py           `avgen train vae`           the video autoencoder
    audio_vae.py     `avgen train audio-vae`     the audio autoencoder
    text_encoder.py  `avgen train text-encoder`  the text encoder alone (attribute heads, masked tokens)
    t2v.py           `avgen train t2v`           the text-to-video transformer (+ its text encoder)
    edit.py          `avgen train edit`          the edit transformer, from the text-to-video one
    v2a.py           `avgen train v2a`           the sound models
    upsampler.py     `avgen train upsampler`     the spatial upsampler

Each task's options are its `Options` dataclass (names, types, defaults); `--option key=value` sets them.
"""

from avgen.training.config import TrainConfig
from avgen.training.tasks.audio_vae import AudioAutoencoderOptions, AudioAutoencoderTask
from avgen.training.tasks.base import EVAL_SEED, Task, check_vocabulary, read_options
from avgen.training.tasks.edit import EditOptions, EditTask, edit_transformer_from, is_edit_transformer
from avgen.training.tasks.streams import LoopedFolder, MixedStreams, PairedResolutions
from avgen.training.tasks.t2v import TextToVideoOptions, TextToVideoTask
from avgen.training.tasks.text_encoder import CaptionStream, TextEncoderOptions, TextEncoderTask
from avgen.training.tasks.upsampler import UpsamplerOptions, UpsamplerTask
from avgen.training.tasks.v2a import VideoToAudioOptions, VideoToAudioTask
from avgen.training.tasks.vae import VideoAutoencoderOptions, VideoAutoencoderTask

TASKS: dict[str, type[Task]] = {
    "vae": VideoAutoencoderTask,
    "audio-vae": AudioAutoencoderTask,
    "t2v": TextToVideoTask,
    "v2a": VideoToAudioTask,
    "upsampler": UpsamplerTask,
    "edit": EditTask,
    "text-encoder": TextEncoderTask,
}


def build_task(config: TrainConfig) -> Task:
    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; choose from {sorted(TASKS)}")
    return TASKS[config.task](config)


__all__ = [
    "EVAL_SEED", "TASKS", "AudioAutoencoderOptions", "AudioAutoencoderTask", "CaptionStream", "EditOptions", "EditTask",
    "LoopedFolder", "MixedStreams", "PairedResolutions", "Task", "TextEncoderOptions", "TextEncoderTask",
    "TextToVideoOptions", "TextToVideoTask", "UpsamplerOptions", "UpsamplerTask", "VideoAutoencoderOptions",
    "VideoAutoencoderTask", "VideoToAudioOptions", "VideoToAudioTask", "build_task", "check_vocabulary",
    "edit_transformer_from", "is_edit_transformer", "read_options",
]
