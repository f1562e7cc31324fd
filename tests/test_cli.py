import subprocess
import sys

from avgen.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    for name in ("generate", "foley", "edit", "batch", "inspect", "eval", "train"):
        assert name in SUBCOMMANDS and name in text


def test_console_script_help_runs():
    result = subprocess.run([sys.executable, "-m", "avgen.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "avgen" in result.stdout


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("avgen ")


def test_a_subcommand_not_built_yet_says_so(capsys):
    import avgen.cli as cli

    cli.SUBCOMMANDS["future"] = ("avgen.commands.not_built_yet", "a later issue's subcommand")
    try:
        assert main(["future", "some prompt", "-o", "x.mp4"]) == 2
        assert "not available" in capsys.readouterr().err
    finally:
        del cli.SUBCOMMANDS["future"]


# --- Ctrl-C: one line, no traceback, no file, the process ends by SIGINT ---------------------------------------
import signal  # noqa: E402
import textwrap  # noqa: E402

import pytest  # noqa: E402

from avgen.muxer import write_video  # noqa: E402
from tests.pipelines.test_video_to_audio import dummy_frames  # noqa: E402
from tests.pipelines.tiny import avgen_pipeline  # noqa: E402

# `avgen ARGV` as the program (sys.argv, as the console script runs it), made to wait, once, at a point chosen by
# argv[1] until the parent has sent its SIGINT: "sampling", the first step of any pipeline's sampling loop (its
# progress bar's first update), or "signing", inside c2pa's signing of the finished file (a ctypes callback, where a
# KeyboardInterrupt is reported as unraisable and dropped). Waiting on stdin, not on a clock, makes the signal land
# at that point whatever the machine's speed.
INTERRUPTED_CHILD = textwrap.dedent(
    """
    import ctypes, sys
    import diffusers
    from avgen import provenance
    from avgen.cli import main

    def wait():
        print(WHERE, flush=True)
        sys.stdin.readline()

    WHERE = sys.argv[1]
    if WHERE == "sampling":
        progress_bar = diffusers.DiffusionPipeline.progress_bar

        def waiting_progress_bar(self, *args, **kwargs):
            bar = progress_bar(self, *args, **kwargs)
            update = bar.update

            def first_update(*args, **kwargs):
                wait()
                return update(*args, **kwargs)

            bar.update = first_update
            return bar

        diffusers.DiffusionPipeline.progress_bar = waiting_progress_bar
    else:
        sign_file = provenance.sign_file

        def waiting_sign_file(*args, **kwargs):
            ctypes.CFUNCTYPE(None)(wait)()
            return sign_file(*args, **kwargs)

        provenance.sign_file = waiting_sign_file
    sys.argv = ["avgen", *sys.argv[2:]]
    sys.exit(main())
    """
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interrupt") / "model"
    avgen_pipeline().save_pretrained(folder)
    return folder


def interrupt(where: str, argv: list[str]) -> subprocess.CompletedProcess:
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_CHILD, where, *argv],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline() == f"{where}\n", child.communicate(timeout=60)[1]
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate("go on\n", timeout=120)
    finally:
        child.kill()
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


@pytest.mark.parametrize("where", ["sampling", "signing"])
@pytest.mark.parametrize("command", ["generate", "foley"])
def test_ctrl_c_prints_one_line_leaves_no_file_and_ends_by_sigint(model, tmp_path, command, where):
    """Ctrl-C while the model samples or while the finished file is signed: "avgen COMMAND: interrupted" as the last
    line, no traceback, nothing in the output folder (no clip, no hidden .partial), and the process dies of the
    SIGINT (a shell reports 130)."""
    source = write_video(tmp_path / "in.mp4", dummy_frames(), 24)
    out_folder = tmp_path / "out"
    out_folder.mkdir()
    if command == "generate":
        argv = ["generate", "a red ball bounces", "-o", str(out_folder / "clip.mp4"), "--steps", "2", "--duration", "0.5"]
    else:
        argv = ["foley", str(source), "-o", str(out_folder / "clip.mp4"), "--steps", "2"]
    result = interrupt(where, [*argv, "--model", str(model)])
    assert result.returncode == -signal.SIGINT, result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == f"avgen {command}: interrupted", result.stderr
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr, result.stderr
    assert result.stdout == ""  # no summary line after the child's own "sampling" or "signing": nothing was written
    assert list(out_folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out"]


def test_ctrl_c_in_python_returns_130(monkeypatch, capsys):
    """main(argv), called from Python, returns 130 with the same one line instead of ending the process."""
    from avgen.commands import generate

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(generate, "run", interrupted)
    assert main(["generate", "a red ball", "-o", "x.mp4"]) == 130
    assert capsys.readouterr().err == "avgen generate: interrupted\n"
