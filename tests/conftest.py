import contextlib
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

# A shell starts a background job (`make test &`, nohup) with SIGINT ignored, and an ignored signal stays ignored in
# every process it starts. The Ctrl-C tests need what a terminal gives: Python's KeyboardInterrupt here, and the
# default action in the children (exec resets a handler, but not an ignored signal, to the default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def ffmpeg_decode(path):
    """Decode with the standalone ffmpeg binary (imageio-ffmpeg's build), independent of PyAV.

    Returns frames (F, H, W, 3) uint8, audio (C, S) float32 or None, fps, sample_rate.
    """
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    info = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    video_line = next(line for line in info.splitlines() if "Video:" in line)
    width, height = map(int, re.search(r", (\d+)x(\d+)", video_line).groups())
    fps = float(re.search(r"([\d.]+) fps", video_line).group(1))
    raw = subprocess.run(
        [exe, "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True
    ).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    audio_line = next((line for line in info.splitlines() if "Audio:" in line), None)
    if audio_line is None:
        return frames, None, fps, None
    sample_rate = int(re.search(r"(\d+) Hz", audio_line).group(1))
    channels = 2 if "stereo" in audio_line else 1
    raw = subprocess.run(
        [exe, "-v", "error", "-i", str(path), "-f", "f32le", "-ac", str(channels), "-"], capture_output=True, check=True
    ).stdout
    audio = np.frombuffer(raw, np.float32).reshape(-1, channels).T
    return frames, audio, fps, sample_rate


@pytest.fixture(scope="session", autouse=True)
def avgen_cache(tmp_path_factory):
    """The C2PA development credentials that every saved MP4 is signed with are made in a temporary cache, not the
    user's (avgen.provenance.cache_dir); subprocesses inherit it."""
    saved = os.environ.get("AVGEN_CACHE_DIR")
    os.environ["AVGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("avgen-cache"))
    yield
    if saved is None:
        os.environ.pop("AVGEN_CACHE_DIR", None)
    else:
        os.environ["AVGEN_CACHE_DIR"] = saved


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@contextlib.contextmanager
def _spinning_cores(seconds: float = 1.5):
    """Every core busy (one spinning process each) for the block, started before it runs: a choice made
    from a timing (issue 45: the bf16 one) would see the load, one made from the machine does not."""
    spin = f"import time\nprint('spinning', flush=True)\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    loops = [subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE, text=True) for _ in range(os.cpu_count() or 1)]
    try:
        assert all(loop.stdout.readline() == "spinning\n" for loop in loops)
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


@pytest.fixture
def busy_cpu():
    """`with busy_cpu(): ...` runs the block while every core spins."""
    return _spinning_cores
