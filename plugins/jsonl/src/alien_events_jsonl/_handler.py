"""
``JsonLinesHandler``: writes every change as one JSON line, one ``write`` call per line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import threading
import typing
from typing import TYPE_CHECKING

from alien_events_sdk import dump_change_line

if TYPE_CHECKING:
    from alien_events_api import EventChange

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_MODE = 0o644


_write = os.write


def _end_torn_line(fd: int, path: pathlib.Path) -> None:
    """A crashed writer may have left half a line: end it, so the first new line stays whole."""
    if os.fstat(fd).st_size == 0:
        return
    with path.open("rb") as existing:
        existing.seek(-1, os.SEEK_END)
        if existing.read(1) != b"\n":
            _write(fd, b"\n")


_dump_line = dump_change_line


def _finish_write(fd: int, data: bytes, written: int) -> None:
    """Finish a short write (a signal, a nearly full disk): the rest of the line must follow."""
    while written < len(data):
        written += _write(fd, data[written:])


@typing.final
class JsonLinesHandler:
    """
    Appends each change to a file as one line of the wire format, before the emit returns.

    The file is opened with ``O_APPEND`` and each line goes out in one ``write``: no buffer to
    lose in a crash, and whole lines even with many threads or several processes appending to
    the same file. ``fsync=True`` also forces each line to the disk (power-loss safety, at
    the cost of a disk round trip per change). With ``max_bytes``, a file about to grow past
    it is renamed to ``PATH.1`` (older ones to ``PATH.2`` ... up to ``backups``) and a new
    one started; rotation takes a lock file, so several processes can share the same path.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = False,
        max_bytes: int = 0,
        backups: int = 5,
    ) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            msg = f"max_bytes must be an int >= 0 (0: never rotate), got {max_bytes!r}"
            raise ValueError(msg)
        if isinstance(backups, bool) or not isinstance(backups, int) or backups < 1:
            msg = f"backups must be an int >= 1, got {backups!r}"
            raise ValueError(msg)
        self.path = pathlib.Path(path)
        self._fsync = bool(fsync)
        self._max_bytes = max_bytes
        self._backups = backups
        self._lock = threading.Lock()
        self._fd = os.open(self.path, _FLAGS, _MODE)
        _end_torn_line(self._fd, self.path)

    def on_event_change(self, change: EventChange) -> None:
        """
        Write the change as one line (and ``fsync`` it, if asked) before returning.
        """
        line = _dump_line(change)
        # The lock makes rotation and close wait for a write in progress: a descriptor is
        # never closed (and its number reused) under a writer's feet. (acquire and release,
        # not ``with``: this runs for every change, and ``with`` costs twice as much.)
        lock = self._lock
        lock.acquire()
        try:
            fd = self._rotate_if_needed(len(line)) if self._max_bytes else self._fd
            written = _write(fd, line)
            if written != len(line):
                _finish_write(fd, line, written)
            if self._fsync:
                os.fsync(fd)
        except OSError:
            if self._fd < 0:  # closed: its descriptor is -1, which every call refuses
                raise RuntimeError(f"the JSON-lines handler for {self.path} is closed") from None
            raise
        finally:
            lock.release()

    def _rotate_if_needed(self, incoming: int) -> int:
        """Rotate if this line would pass ``max_bytes``; return the descriptor to write to."""
        # Called with self._lock held.
        ours = os.fstat(self._fd)
        try:
            current = self.path.stat()
        except FileNotFoundError:
            current = None
        if current is None or (current.st_ino, current.st_dev) != (ours.st_ino, ours.st_dev):
            self._reopen()  # another process rotated the file
            ours = os.fstat(self._fd)
        if ours.st_size + incoming <= self._max_bytes or ours.st_size == 0:
            return self._fd
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock_fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, _MODE)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            current = self.path.stat()
            if (current.st_ino, current.st_dev) == (ours.st_ino, ours.st_dev):
                self._shift_backups()
            self._reopen()
        finally:
            os.close(lock_fd)  # also releases the lock
        return self._fd

    def _shift_backups(self) -> None:
        for index in range(self._backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def _reopen(self) -> None:
        fd = os.open(self.path, _FLAGS, _MODE)
        old, self._fd = self._fd, fd
        os.close(old)

    def close(self) -> None:
        """
        Close the file; later changes raise (and so fail the emit), as nothing can take them.
        """
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            if self._fsync:
                with contextlib.suppress(OSError):
                    os.fsync(fd)
            os.close(fd)

    def __repr__(self) -> str:
        return f"JsonLinesHandler({str(self.path)!r})"
