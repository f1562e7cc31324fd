import json

import numpy as np
import pytest
import torch

from avgen.clock import AVClock
from avgen.muxer import write_video
from avgen.world.captions import parse_caption
from avgen.world.dataset import VideoFolderDataset, WorldDataset
from avgen.world.spec import ClipSpec

SMALL = dict(resolution=16, formats=[(1.0, 8), (0.5, 16)])


def _take(iterable, n):
    items = []
    for item in iterable:
        items.append(item)
        if len(items) == n:
            return items


def test_world_items_have_the_documented_shapes():
    for item in _take(WorldDataset(seed=0, **SMALL), 6):
        spec = ClipSpec.from_dict(json.loads(item["spec"]))
        frames, audio = item["frames"], item["audio"]
        assert frames.dtype == torch.uint8 and frames.shape == (spec.num_frames, 3, 16, 16)
        assert audio.dtype == torch.float32 and audio.shape == (1, AVClock(spec.fps, 16_000).num_samples(spec.num_frames))
        assert (item["fps"], item["sample_rate"]) == (spec.fps, 16_000) and (spec.duration, spec.fps) in [(1.0, 8), (0.5, 16)]
        assert not spec.has_held_out_pair()
        parsed = parse_caption(item["text"])
        assert (parsed["subject"], parsed["color"], parsed["camera"]) == (spec.subject.kind, spec.subject.color, spec.camera)


def test_training_stream_never_holds_a_held_out_pair():
    specs = [ClipSpec.from_dict(json.loads(item["spec"])) for item in _take(WorldDataset(seed=1, second_subject_prob=1.0, **SMALL), 60)]
    assert not any(spec.has_held_out_pair() for spec in specs)
    assert all(spec.second is not None for spec in specs)


def test_dataloader_workers_draw_disjoint_reproducible_streams():
    dataset = WorldDataset(seed=3, **SMALL)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    first = [item["spec"] for item in _take(loader, 6)]
    again = [item["spec"] for item in _take(torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2), 6)]
    assert first == again
    # The loader alternates workers 0 and 1; each worker's stream is SeedSequence(seed, spawn_key=(rank, worker)).
    worker_streams = [dataset.rng(0), dataset.rng(1)]
    assert first == [dataset.sample(worker_streams[i % 2])["spec"] for i in range(6)]
    assert not set(first[0::2]) & set(first[1::2])


def test_ranks_draw_different_streams_and_the_seed_matters():
    def specs(**kwargs):
        return [item["spec"] for item in _take(WorldDataset(**SMALL, **kwargs), 4)]

    assert specs(seed=0, rank=0, world_size=2) == specs(seed=0, rank=0, world_size=2)
    assert not set(specs(seed=0, rank=0, world_size=2)) & set(specs(seed=0, rank=1, world_size=2))
    assert not set(specs(seed=0)) & set(specs(seed=1))


def test_edit_mode_yields_source_and_target():
    # 32 px: at 16 px a small subject's fill can vanish under its 1-px outline, hiding a colour edit.
    for item in _take(WorldDataset(seed=4, edits=True, **{**SMALL, "resolution": 32}), 5):
        source = ClipSpec.from_dict(json.loads(item["source_spec"]))
        target = ClipSpec.from_dict(json.loads(item["spec"]))
        assert source.seed == target.seed and source != target
        assert item["source_frames"].shape == item["frames"].shape and item["source_audio"].shape == item["audio"].shape
        assert item["kind"] in ("background", "color", "add_rain", "remove_rain", "night") and item["text"]
        if item["kind"] in ("background", "night", "color"):  # the picture changes
            assert not torch.equal(item["source_frames"], item["frames"])


def test_without_audio_and_fps_tag():
    item = next(iter(WorldDataset(seed=5, include_audio=False, fps_tag=True, **SMALL)))
    assert "audio" not in item and item["text"].startswith(f"FPS-{item['fps']}. ")


def test_bad_options_are_refused_up_front():
    with pytest.raises(ValueError, match="fps"):
        WorldDataset(formats=[(1.0, 25)])
    with pytest.raises(ValueError, match="duration"):
        WorldDataset(formats=[(20.0, 8)])
    with pytest.raises(ValueError, match="resolution"):
        WorldDataset(resolution=8)
    with pytest.raises(ValueError, match="formats"):
        WorldDataset(formats=[])
    with pytest.raises(ValueError, match="rank"):
        WorldDataset(rank=2, world_size=2)


# --- VideoFolderDataset ----------------------------------------------------------------------------
def _write_folder(root, lines):
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(12, 32, 48, 3), dtype=np.uint8)  # 12 frames, 48 wide x 32 high
    t = np.arange(22_050) / 22_050
    write_video(root / "a.mp4", frames, 24, audio=np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32), sample_rate=22_050)
    write_video(root / "silent.mp4", frames[:6], 12)
    (root / "metadata.jsonl").write_text("".join(line + "\n" for line in lines))
    return root


def test_video_folder_items(tmp_path):
    root = _write_folder(tmp_path / "videos", [
        json.dumps({"file_name": "a.mp4", "text": "a sine", "source": "test"}),
        "",
        json.dumps({"file_name": "silent.mp4", "text": "nothing heard"}),
    ])
    dataset = VideoFolderDataset(root, resolution=16, num_frames=6)
    assert len(dataset) == 2
    item = dataset[0]
    assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (6, 3, 16, 16)
    assert item["audio"].shape == (1, 4000) and item["sample_rate"] == 16_000 and item["has_audio"]  # 6 frames at 24 fps
    assert 0.2 < item["audio"].abs().max() < 0.7  # stereo mixed to mono, resampled, not silent
    assert (item["text"], item["fps"], json.loads(item["metadata"])) == ("a sine", 24.0, {"source": "test"})
    silent = dataset[1]
    assert silent["audio"].shape == (1, 8000) and not silent["has_audio"] and silent["audio"].abs().max() == 0



def test_video_folder_batches(tmp_path):
    line = json.dumps({"file_name": "a.mp4", "text": "a sine"})
    root = _write_folder(tmp_path / "videos", [line, line, line])
    batch = next(iter(torch.utils.data.DataLoader(VideoFolderDataset(root, resolution=16, num_frames=6), batch_size=3)))
    assert batch["frames"].shape == (3, 6, 3, 16, 16) and batch["audio"].shape == (3, 1, 4000) and batch["text"] == ["a sine"] * 3


def test_video_folder_keeps_the_original_size_without_options(tmp_path):
    root = _write_folder(tmp_path / "videos", [json.dumps({"file_name": "a.mp4", "text": "x"})])
    item = VideoFolderDataset(root)[0]
    assert item["frames"].shape == (12, 3, 32, 48) and item["audio"].shape == (1, 8000)


def test_video_folder_centre_crop(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    frames = np.zeros((2, 32, 64, 3), np.uint8)
    frames[:, :, 16:48] = 255  # white centre square, black sides that the crop removes
    write_video(root / "c.mp4", frames, 8)
    (root / "metadata.jsonl").write_text(json.dumps({"file_name": "c.mp4", "text": "x"}) + "\n")
    item = VideoFolderDataset(root, resolution=16)[0]
    assert item["frames"].shape == (2, 3, 16, 16) and item["frames"].float().mean() > 240


def test_video_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.jsonl"):
        VideoFolderDataset(tmp_path)
    root = _write_folder(tmp_path / "v", [json.dumps({"file_name": "a.mp4", "text": "x"}), json.dumps({"file_name": "gone.mp4", "text": "y"})])
    with pytest.raises(FileNotFoundError, match="line 2: 'gone.mp4' does not exist"):
        VideoFolderDataset(root)
    (root / "metadata.jsonl").write_text('{"file_name": "a.mp4", "text": "x"}\n{"file_name": "a.mp4", \n')
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        VideoFolderDataset(root)
    (root / "metadata.jsonl").write_text('{"file_name": "a.mp4"}\n')
    with pytest.raises(ValueError, match="line 1: needs a string 'text'"):
        VideoFolderDataset(root)
    (root / "metadata.jsonl").write_text('["a.mp4", "x"]\n')
    with pytest.raises(ValueError, match="line 1: expected a JSON object"):
        VideoFolderDataset(root)
    (root / "metadata.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="lists no video"):
        VideoFolderDataset(root)
    (root / "metadata.jsonl").write_text('{"file_name": "silent.mp4", "text": "x"}\n')
    with pytest.raises(ValueError, match="num_frames"):
        VideoFolderDataset(root, num_frames=0)
    with pytest.raises(ValueError, match="6 frames, fewer than num_frames=10"):
        VideoFolderDataset(root, num_frames=10)[0]


def test_window_frames_yields_a_window_of_the_whole_clip():
    """window_frames renders a random window alone; it is exactly those frames of the whole clip's render."""
    from avgen.world import render_clip

    dataset = WorldDataset(seed=3, formats=[(2.0, 12)], include_audio=False, window_frames=16)
    items = [item for item, _ in zip(dataset, range(3))]
    for item in items:
        frames = item["frames"]  # (16, 3, H, W) uint8
        assert frames.shape[0] == 16 and "audio" not in item
        whole = torch.from_numpy(render_clip(ClipSpec.from_dict(json.loads(item["spec"]))).frames).permute(0, 3, 1, 2)
        starts = [s for s in range(len(whole) - 15) if torch.equal(whole[s : s + 16], frames)]
        assert starts, "the window is not a run of the whole clip's frames"
    with pytest.raises(ValueError, match="window_frames"):
        WorldDataset(formats=[(1.0, 8)], include_audio=False, window_frames=16)  # 8 frames only
    with pytest.raises(ValueError, match="window_frames"):
        WorldDataset(include_audio=True, window_frames=16)
