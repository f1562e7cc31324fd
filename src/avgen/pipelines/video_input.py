"""The video inputs the video-to-video pipelines accept (VideoToAudioPipeline, UpsamplePipeline), in one place.

A video is one of:
- a path to a video file: decoded with its own fps (and its sound track, if any); for the pipelines that make
  sound, any frame rate, constant or variable, mapped onto the model's clock (`describe_video_on_clock`,
  `decode_on_clock`: decoded and shrunk frame by frame, so memory does not grow with the resolution);
- a uint8 np array (F, H, W, 3) (one clip) or (B, F, H, W, 3);
- a float torch tensor (B, F, 3, H, W) in [0, 1] (what the pipelines' output_type="pt" returns);
- a list of PIL images (the frames of one clip).

`describe_video` validates it without decoding; `load_video` decodes it, keeping uint8 frames as uint8 (a
float copy of a long clip is 4x its size); `frames_to_tensor` converts a slice of frames at a time, so the
stages' memory follows their chunk or window, not the clip's length.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.image_processor import VaeImageProcessor
from PIL import Image

from .. import muxer
from ..clock import SUPPORTED_FPS, AVClock, check_fps, nearest_supported_fps

FRAME_OUTPUT_TYPES = ("np", "pt", "pil")


def describe_video(video, fps: int | None = None) -> tuple[int, int, int]:
    """(B, F, fps) of `video`, validated without decoding it (a path's packets are counted)."""
    if isinstance(video, (str, os.PathLike)):
        file_fps, num_frames = muxer.probe_video(video)
        if fps is not None and fps != file_fps:
            raise ValueError(f"fps={fps!r} contradicts the {file_fps} fps of {str(video)!r}; leave fps out for files")
        if num_frames == 0:
            raise ValueError(f"{str(video)!r} has no video frames")
        return 1, num_frames, file_fps
    if isinstance(video, (list, tuple)):
        if not video or not all(isinstance(image, Image.Image) for image in video):
            raise ValueError("a video given as a list must be a non-empty list of PIL images (the frames of one clip)")
        if len({image.size for image in video}) > 1:
            raise ValueError(f"the PIL frames differ in size: {sorted({image.size for image in video})}")
        batch, num_frames, height, width = 1, len(video), video[0].height, video[0].width
    elif isinstance(video, np.ndarray):
        if video.dtype != np.uint8 or video.ndim not in (4, 5) or video.shape[-1] != 3:
            raise ValueError(
                f"a video array must be uint8 (F, H, W, 3) or (B, F, H, W, 3); got {video.dtype} {video.shape} "
                "(pass float frames as a torch tensor (B, F, 3, H, W) in [0, 1])"
            )
        batch, num_frames, height, width = (1, *video.shape[:3]) if video.ndim == 4 else video.shape[:4]
    elif torch.is_tensor(video):
        if not video.dtype.is_floating_point or video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"a video tensor must be float (B, F, 3, H, W) in [0, 1]; got {video.dtype} {tuple(video.shape)}")
        batch, num_frames, _, height, width = video.shape
        if video.numel() and not (torch.isfinite(video).all() and video.min() >= 0 and video.max() <= 1):
            raise ValueError("a float video tensor must hold finite values in [0, 1]")
    else:
        raise ValueError(f"video must be a path, a uint8 array, a float tensor or a list of PIL images; got {type(video).__name__}")
    if 0 in (batch, num_frames, height, width):
        raise ValueError(f"video is empty: {batch} clips of {num_frames} frames of {height}x{width}")
    if fps is None:
        raise ValueError(f"fps is required for video given as frames (it is read from the file for paths); one of {SUPPORTED_FPS}")
    return batch, num_frames, check_fps(fps)


def describe_video_on_clock(video, fps: int | None, sample_rate: int) -> tuple[int, int, int, int]:
    """(B, F, fps, S) of `video` for a pipeline that makes its sound, validated without decoding it. A file may
    have any frame rate, constant or variable: its frames are mapped onto the clock of the supported fps nearest
    its average rate (clock.FrameTimes.on_clock: F ticks, each showing the frame that starts nearest to it), and its
    sound lasts exactly as long as the file's video (S samples). Frames given in memory keep their F and fps."""
    if not isinstance(video, (str, os.PathLike)):
        batch, num_frames, fps = describe_video(video, fps)
        return batch, num_frames, fps, AVClock(fps, sample_rate).num_samples(num_frames)
    times = muxer.probe_timing(video)
    model_fps = nearest_supported_fps(times.rate)
    if fps is not None and fps != model_fps:
        raise ValueError(f"fps={fps!r} contradicts the {float(times.rate):.4g} fps of {str(video)!r}; leave fps out for files")
    return 1, len(times.on_clock(model_fps)), model_fps, times.num_samples(sample_rate)


def decode_on_clock(path, size: int) -> torch.Tensor:
    """The frames of a video file on its model clock (describe_video_on_clock), resized to size x size as
    VideoToAudioPipeline.encode_video resizes -> float32 (1, F, 3, size, size) in [0, 1].

    Decoded one frame at a time; a frame is converted and resized only if a tick shows it, then dropped: memory
    holds the F small frames and one decoded frame, whatever the file's resolution or length."""
    import av

    times = muxer.probe_timing(path)
    shown = np.bincount(times.on_clock(nearest_supported_fps(times.rate)), minlength=times.num_frames)  # ticks per frame
    frames = torch.empty(int(shown.sum()), 3, size, size)
    tick, decoded = 0, 0
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):  # presentation order: frame i starts at times.pts[i]
            if decoded < times.num_frames and shown[decoded]:
                picture = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float().div_(255)  # (1, 3, H, W)
                if picture.shape[-2:] != (size, size):
                    picture = F.interpolate(picture, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
                frames[tick : tick + shown[decoded]] = picture
                tick += shown[decoded]
            decoded += 1
    if decoded != times.num_frames:
        raise ValueError(f"{str(path)!r} decodes to {decoded} video frames where its packets promise {times.num_frames}")
    return frames[None]


def load_video(video) -> tuple[np.ndarray | torch.Tensor, np.ndarray | None, int | None]:
    """video in any accepted form -> (frames, audio, sample_rate): frames uint8 np (B, F, H, W, 3), or the
    float tensor (B, F, 3, H, W) as given; a file's sound (C, S) and its rate, else None, None."""
    if isinstance(video, (str, os.PathLike)):
        decoded = muxer.read_video(video)
        return decoded.frames[None], decoded.audio, decoded.sample_rate
    if isinstance(video, (list, tuple)):
        return np.stack([np.asarray(image.convert("RGB")) for image in video])[None], None, None
    return (video[None] if isinstance(video, np.ndarray) and video.ndim == 4 else video), None, None


def frames_to_tensor(frames, start: int, stop: int, device) -> torch.Tensor:
    """Frames [start, stop) of uint8 np (B, F, H, W, 3) or float (B, F, 3, H, W) -> float32 (B, f, 3, H, W) in
    [0, 1] on `device`; uint8 is moved before it is converted (4x less to copy)."""
    if isinstance(frames, np.ndarray):
        return torch.from_numpy(frames[:, start:stop]).to(device).permute(0, 1, 4, 2, 3).float() / 255
    return frames[:, start:stop].to(device, torch.float32)


def postprocess_frames(frames: torch.Tensor, output_type: str):
    """float (B, F, 3, H, W) in [0, 1] -> the layouts of TextToVideoPipeline's output types: "pt" as is, "np"
    (B, F, H, W, 3) floats, "pil" B lists of F images."""
    if output_type == "pt":
        return frames
    array = frames.permute(0, 1, 3, 4, 2).float().cpu().numpy()
    return array if output_type == "np" else [VaeImageProcessor.numpy_to_pil(clip) for clip in array]
