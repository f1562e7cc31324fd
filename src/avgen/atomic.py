"""Files that survive a crash, a power cut or a signal: written beside their target under a hidden name, then renamed.

`replace(tmp, path)` fsyncs `tmp` (a file, or a folder and all it holds), renames it over `path` and fsyncs the
folder. The first fsync is what makes the rename safe: ext4 and xfs may commit the rename before the data, so a power
cut after it could leave `path` empty or short. The second makes the rename itself durable.

`SignalGuard(*temporary)` covers a write: SIGTERM removes the temporary files before it ends the process (its default
action kills without unwinding, so no `finally` would run), and a SIGINT that native code swallowed is raised again
(c2pa's ctypes callbacks print a KeyboardInterrupt raised inside them and go on, so a save interrupted while signing
used to finish and the process exit 0).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path


def fsync(path: str | os.PathLike) -> None:
    """Flush a file, or a folder's entries and, recursively, everything in it, to the disk."""
    path = Path(path)
    if path.is_dir():
        for child in path.iterdir():
            if child.is_file() or child.is_dir():
                fsync(child)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def replace(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename `tmp` over `path` once both the data and, after it, the new name are on the disk."""
    tmp, path = Path(tmp), Path(path)
    fsync(tmp)
    os.replace(tmp, path)
    fsync(path.parent)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically: a reader sees the old file or the new one, whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        return replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class SignalGuard:
    """`with SignalGuard(tmp, ...) as guard: write; guard.check(); replace(tmp, path)`: a SIGTERM while the block runs
    removes the temporary paths, then the process dies of the signal as it would have (status 143 in a shell); a SIGINT
    raises KeyboardInterrupt as usual, and `check()` raises it again if something swallowed it. Signal handlers an
    application installed itself are left in place, as is everything outside the main thread (Python runs handlers in
    the main thread only)."""

    def __init__(self, *temporary: str | os.PathLike):
        self.temporary = [Path(path) for path in temporary]
        self.interrupted = False
        self.previous: dict[int, object] = {}

    def _on_signal(self, number: int, frame) -> None:
        if number == signal.SIGTERM:
            for path in self.temporary:
                path.unlink(missing_ok=True)
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        self.interrupted = True
        raise KeyboardInterrupt

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for number, default in ((signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.default_int_handler)):
                if signal.getsignal(number) is default:
                    self.previous[number] = signal.signal(number, self._on_signal)
        return self

    def check(self) -> None:
        """Raise the KeyboardInterrupt of a SIGINT that came during the block, had it been swallowed on its way."""
        if self.interrupted:
            raise KeyboardInterrupt

    def __exit__(self, kind, error, traceback) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        if self.interrupted and kind is not None and not issubclass(kind, KeyboardInterrupt):
            # what a swallowed KeyboardInterrupt broke (c2pa then fails on a half-read file): the cause is the Ctrl-C
            raise KeyboardInterrupt from error
