"""
``read_changes``: stream the changes of a JSON-lines file, optionally following it as it grows.
"""

from __future__ import annotations

import os
import pathlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from alien_events_jsonl._errors import BadLineError, BadLineWarning
from alien_events_sdk import WireFormatError, loads

if TYPE_CHECKING:
    from alien_events_api import EventChange

ErrorCallback = Callable[[BadLineError], None]


def _identity(path: pathlib.Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_dev)


def read_changes(  # noqa: C901, PLR0912, PLR0915  (one loop, with the cases a crashed or rotating writer leaves)
    path: str | os.PathLike[str],
    *,
    follow: bool = False,
    strict: bool = False,
    on_error: ErrorCallback | None = None,
    poll_interval: float = 0.05,
    idle_timeout: float | None = None,
) -> Iterator[EventChange]:
    """
    Yield the changes of a JSON-lines file, in file order.

    A last line without its newline is a line a writer was still writing (or died writing):
    it is not yielded; in ``follow`` mode it is read once it is complete. Without ``follow``,
    and not ``strict``, such a torn line is reported to ``on_error`` (if given) and skipped.
    A corrupt complete line is reported to ``on_error``, or warned about
    (``BadLineWarning``), and skipped. ``strict=True`` raises ``BadLineError`` with the line
    number instead, for both.

    ``follow=True`` keeps reading as the file grows (and across rotation, when the path is
    replaced by a new file), until ``idle_timeout`` seconds pass with nothing new, or forever
    when it is ``None``; close the generator to stop.
    """
    path = pathlib.Path(path)
    name = str(path)

    def report(error: BadLineError) -> None:
        if strict:
            raise error
        if on_error is not None:
            on_error(error)
        elif not error.torn:
            warnings.warn(BadLineWarning(str(error)), stacklevel=3)

    with open(path, "rb") as first:  # noqa: PTH123  (the open file is swapped on rotation)
        file = first
        identity = (os.fstat(file.fileno()).st_ino, os.fstat(file.fileno()).st_dev)
        pending = b""
        line_number = 0
        idle_since = time.monotonic()
        try:
            while True:
                chunk = file.readline()
                if chunk:
                    idle_since = time.monotonic()
                    pending += chunk
                    if not pending.endswith(b"\n"):
                        continue
                    line, pending = pending, b""
                    line_number += 1
                    if not line.strip():
                        continue
                    try:
                        yield loads(line)
                    except WireFormatError as exc:
                        report(BadLineError(name, line_number, str(exc)))
                    continue
                if not follow:
                    if pending.strip():
                        report(
                            BadLineError(
                                name,
                                line_number + 1,
                                "no newline: the writer did not finish it",
                                torn=True,
                            )
                        )
                    return
                current = _identity(path)
                if current is not None and current != identity and not pending:
                    # Rotated: finish the old file first (lines may have landed since the last
                    # read), then switch, taking the identity of the file actually opened.
                    if file.peek(1):
                        continue
                    if file is not first:
                        file.close()
                    file = open(path, "rb")  # noqa: PTH123, SIM115  (closed in finally)
                    stat = os.fstat(file.fileno())
                    identity, line_number = (stat.st_ino, stat.st_dev), 0
                    continue
                if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                    return
                time.sleep(poll_interval)
        finally:
            if file is not first:
                file.close()
