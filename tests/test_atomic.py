"""Atomic writes: the data and then the folder are fsync'ed around the rename, and a SIGTERM or SIGINT during a save
leaves no hidden .partial and ends the process with the signal (a SIGINT raised inside native code's callbacks, as
c2pa's, included: it used to be swallowed, the save finished and the process exited 0). The signalled saves run in a
child process that blocks inside the save until the signal comes: no timing race."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from avgen import atomic, muxer


def test_replace_syncs_the_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(atomic, "fsync", lambda path: events.append(("fsync", path.name, (tmp_path / "a.json").exists())))
    rename = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (events.append(("rename",)), rename(src, dst)))
    atomic.write_text(tmp_path / "a.json", "{}\n")
    assert events == [("fsync", ".a.json.partial", False), ("rename",), ("fsync", tmp_path.name, True)]
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"] and (tmp_path / "a.json").read_text() == "{}\n"


def test_the_muxer_syncs_the_mp4_before_it_takes_its_name(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(atomic, "fsync", lambda path: synced.append((path.name, path.stat().st_size)))
    muxer.write_video(tmp_path / "clip.mp4", np.zeros((4, 16, 16, 3), np.uint8), 8)
    (tmp_name, size), (folder, _) = synced
    assert tmp_name.startswith(".clip.mp4.") and tmp_name.endswith(".partial") and size == (tmp_path / "clip.mp4").stat().st_size
    assert folder == tmp_path.name


def test_fsync_takes_a_folder_and_what_it_holds(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.safetensors").write_bytes(b"x")
    atomic.fsync(tmp_path)  # a checkpoint is a folder of files and folders: no error, nothing changed
    assert (tmp_path / "sub" / "x.safetensors").read_bytes() == b"x"


# The child writes an MP4 whose signing step blocks on stdin until the parent signals it. With `callback`, it blocks
# inside a ctypes callback, where c2pa's stream callbacks run: a KeyboardInterrupt raised there is printed and dropped.
CHILD = textwrap.dedent(
    """
    import ctypes, shutil, sys
    import numpy as np
    from avgen import muxer

    def sign(unsigned, signed, title):
        signed.write_bytes(b"half a manifest")
        print("signing", flush=True)
        if sys.argv[2] == "callback":
            ctypes.CFUNCTYPE(None)(lambda: sys.stdin.readline())()
        else:
            sys.stdin.readline()
        shutil.copyfile(unsigned, signed)

    muxer.write_video(sys.argv[1], np.zeros((4, 16, 16, 3), np.uint8), 8, sign=sign)
    print("written", flush=True)
    """
)


def save_and_signal(folder, sig, pause: str) -> subprocess.CompletedProcess:
    """Run CHILD writing folder/clip.mp4 over an existing file; signal it (None: let it finish) once it is signing."""
    (folder / "clip.mp4").write_bytes(b"the previous clip")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder / "clip.mp4"), pause],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout.readline() == "signing\n"
    assert sorted(p.name.endswith(".partial") for p in folder.iterdir()) == [False, True, True]  # both temporary files
    if sig is not None:
        child.send_signal(sig)
    stdout, stderr = child.communicate("go on\n", timeout=60)
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def test_an_unsignalled_save_finishes(tmp_path):
    result = save_and_signal(tmp_path, None, "callback")
    assert (result.returncode, result.stdout) == (0, "written\n"), result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    assert muxer.read_video(tmp_path / "clip.mp4").frames.shape == (4, 16, 16, 3)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("pause", ["python", "callback"])
def test_a_signal_during_a_save_leaves_the_old_file_no_partial_and_a_signal_exit(tmp_path, sig, pause):
    result = save_and_signal(tmp_path, sig, pause)
    assert result.returncode == -sig, result.stderr  # died of it: 130 (SIGINT) or 143 (SIGTERM) in a shell
    assert result.stdout == ""  # the save never finished
    if sig == signal.SIGINT:
        assert result.stderr.rstrip().endswith("KeyboardInterrupt")
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no .partial
    assert (tmp_path / "clip.mp4").read_bytes() == b"the previous clip"


def test_a_signal_handler_of_the_application_is_kept(tmp_path):
    """A program that handles SIGTERM itself (the trainer does, to checkpoint) keeps its handler during a save."""
    own = lambda number, frame: None  # noqa: E731
    previous = signal.signal(signal.SIGTERM, own)
    try:
        with atomic.SignalGuard(tmp_path / "x.partial"):
            assert signal.getsignal(signal.SIGTERM) is own
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # the default one is wrapped
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


# `avgen demo` through the real command line, save and signing, with c2pa's signing made to wait in a ctypes callback
CLI_CHILD = textwrap.dedent(
    """
    import ctypes, sys
    from avgen import provenance
    from avgen.cli import main

    sign_file = provenance.sign_file

    def waiting_sign_file(*args, **kwargs):
        print("signing", flush=True)
        ctypes.CFUNCTYPE(None)(lambda: sys.stdin.readline())()
        return sign_file(*args, **kwargs)

    provenance.sign_file = waiting_sign_file
    sys.exit(main())  # as the console script runs it: argv from sys.argv
    """
)


def test_ctrl_c_while_the_cli_signs_ends_it_with_sigint_and_no_file(tmp_path):
    out = tmp_path / "demo.mp4"
    argv = ["demo", "-o", str(out), "--duration", "1", "--fps", "8", "--resolution", "64"]
    child = subprocess.Popen([sys.executable, "-c", CLI_CHILD, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "signing\n"
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate("go on\n", timeout=120)
    assert child.returncode == -signal.SIGINT, stderr  # a shell reports 130; it used to finish the file and exit 0
    # one line, no traceback: neither the one c2pa's ctypes callback used to print nor the interpreter's
    assert stderr == "avgen demo: interrupted\n" and stdout == ""
    assert list(tmp_path.iterdir()) == []
