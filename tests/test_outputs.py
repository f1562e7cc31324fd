import numpy as np
import pytest
import torch
from PIL import Image

from avgen.muxer import read_video
from avgen.outputs import AVGenOutput


def make_output(batch=2, layout="np"):
    frames = np.linspace(0, 1, batch * 8 * 16 * 16 * 3, dtype=np.float32).reshape(batch, 8, 16, 16, 3)
    if layout == "pt":
        frames = torch.from_numpy(frames).permute(0, 1, 4, 2, 3)  # (B, F, 3, H, W)
    if layout == "pil":
        frames = [[Image.fromarray((f * 255).astype(np.uint8)) for f in clip] for clip in frames]
    audio = np.zeros((batch, 1, 5333), np.float32)
    audio[:, :, 1000] = 0.5
    metadata = [{"seed": str(i)} for i in range(batch)]
    return AVGenOutput(frames=frames, audio=audio, fps=24, sample_rate=16000, metadata=metadata)


@pytest.mark.parametrize("layout", ["np", "pt", "pil"])
def test_every_output_type_saves_the_same_clip(tmp_path, layout):
    reference = make_output(layout="np").video(1)
    output = make_output(layout=layout)
    assert output.num_videos == 2
    assert (output.video(1).astype(int) - reference).__abs__().max() <= 1
    decoded = read_video(output.save(tmp_path / "clip.mp4", index=1))
    assert decoded.frames.shape == (8, 16, 16, 3) and decoded.audio.shape == (1, 5333)
    assert decoded.metadata["seed"] == "1"


def test_single_clip_needs_no_index_and_writes_audio_and_stills(tmp_path):
    output = AVGenOutput(frames=np.zeros((8, 16, 16, 3), np.float32), audio=np.zeros((1, 5333)), fps=24, sample_rate=16000)
    assert output.save(tmp_path / "a.mp4").exists()
    assert output.save(tmp_path / "a.wav").exists()
    assert output.save(tmp_path / "a.png", frame=-1).exists()
    assert output["fps"] == 24  # BaseOutput's dict access


def test_ambiguous_or_bad_saves_raise_before_writing(tmp_path):
    output = make_output()
    with pytest.raises(ValueError, match="pass index"):
        output.save(tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="out of range"):
        output.save(tmp_path / "a.mp4", index=2)
    with pytest.raises(ValueError, match="out of range"):
        output.save(tmp_path / "a.png", index=0, frame=8)
    with pytest.raises(ValueError, match="extension"):
        output.save(tmp_path / "a.gif", index=0)
    silent = AVGenOutput(frames=np.zeros((8, 16, 16, 3), np.float32), fps=24)
    with pytest.raises(ValueError, match="no audio"):
        silent.save(tmp_path / "a.wav")
    assert list(tmp_path.iterdir()) == []
