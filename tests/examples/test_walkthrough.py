"""examples/walkthrough.py runs top to bottom (tiny random pipelines stand in for the shipped weights)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_walkthrough_runs_every_cell(tmp_path):
    sys.path.insert(0, str(ROOT))
    from tests.pipelines.test_video_edit import get_dummy_components as edit_components
    from tests.pipelines.tiny import avgen_pipeline

    from avgen import VideoEditPipeline

    avgen_pipeline().save_pretrained(tmp_path / "model")
    VideoEditPipeline(**edit_components()).save_pretrained(tmp_path / "edit")
    env = dict(os.environ, AVGEN_MODEL=str(tmp_path / "model"), AVGEN_EDIT_MODEL=str(tmp_path / "edit"),
               AVGEN_OUT=str(tmp_path / "out"), AVGEN_STEPS="2", AVGEN_DURATION="0.5", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "walkthrough.py")], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["edited.mp4", "foley.mp4", "stages.mp4", "text_to_video_with_sound.mp4"]
    assert "video adherence" in result.stdout
