"""
``ConsoleHandler``: shows the events to a person, as a live tree on a terminal or as log lines.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import sys
import threading
import time
import typing
import warnings
import weakref
from typing import IO

from alien_events_console._environment import ConsoleMode, choose_color, choose_mode
from alien_events_console._errors import ConsoleWarning
from alien_events_console._format import ansi_text, plain_text
from alien_events_console._frame import Frame, render_frame
from alien_events_console._live import LiveDisplay, Ticker, make_console
from alien_events_console._plain import Line, PlainLog
from alien_events_sdk import EventTree

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from alien_events_api import EventChange

_HEARTBEAT_CHECKS = 4  # heartbeat checks per heartbeat period (the thread's pace)
_MAX_CHECK_INTERVAL = 1.0
_DRAW_BACKOFF = 5  # after a frame that took t seconds, the next one waits t * this


def _positive_number(name: str, value: object, *, zero: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not (value >= 0 if zero else value > 0) or value != value:  # type: ignore[operator]  # noqa: PLR0124
        wanted = "a number >= 0" if zero else "a number > 0"
        msg = f"{name} must be {wanted}, got {value!r}"
        raise ValueError(msg)
    return float(value)  # type: ignore[arg-type]


def _terminal_width(file: IO[str], environ: Mapping[str, str]) -> int | None:
    """The width to wrap plain details at when none is given: the terminal's, else none."""
    try:
        if file.isatty():
            return os.get_terminal_size(file.fileno()).columns
    except (AttributeError, ValueError, OSError):
        pass
    columns = environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


@typing.final
class ConsoleHandler:
    """
    Renders the changes of a bus for people: a live tree on a terminal, log lines elsewhere.

    Args:
        mode: ``"auto"`` (default), ``"live"``, ``"plain"`` or ``"quiet"``. ``auto`` reads
            ``ALIEN_EVENTS_CONSOLE_MODE``, then picks plain for ``TERM=dumb`` or ``CI``, live
            for a terminal, plain otherwise (see ``choose_mode``).
        file: Where to write (default: ``sys.stderr`` at construction).
        color: ``None``/``"auto"``, ``True``/``"always"``, ``False``/``"never"``; decided apart
            from the mode (``NO_COLOR``, ``FORCE_COLOR``; see ``choose_color``).
        environ: The environment to read (default ``os.environ``), for tests.
        clock: Returns the time in seconds since the epoch (default ``time.time``), the clock
            of the events' timestamps. With a clock given, time moves only when the caller
            says: redraws and heartbeats happen when changes arrive and at ``close``, and no
            thread is started.
        width: Columns to draw in (default: the terminal's; plain mode wraps only failure
            details, and only when a width is known).
        refresh_per_second: Live redraws per second, at most.
        heartbeat: Plain mode prints "still running" lines after this many seconds without
            output (0: never).

    The handler folds every change into an ``EventTree`` (``tree``). Live mode draws the
    tree ``refresh_per_second`` times a second from a thread, which also folds the changes:
    the emitting call only queues them (a frame that took long to build delays the next, so
    drawing a huge tree takes a fifth of the time at most); ``close()`` prints the final
    frame in full. Plain mode writes lines as changes arrive; quiet mode writes nothing
    until ``close()``; both end with the failures and a summary. A rendering error never
    reaches the emitting program: it is reported once (a ``ConsoleWarning``, or a line on
    ``file`` if warnings are errors) and the handler carries on.
    """

    def __init__(
        self,
        mode: str = "auto",
        *,
        file: IO[str] | None = None,
        color: bool | str | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] | None = None,
        width: int | None = None,
        refresh_per_second: float = 8,
        heartbeat: float = 30.0,
    ) -> None:
        env: Mapping[str, str] = os.environ if environ is None else environ
        out: IO[str] = sys.stderr if file is None else file
        if width is not None and (
            isinstance(width, bool) or not isinstance(width, int) or width < 1
        ):
            msg = f"width must be an int >= 1 or None (the terminal's), got {width!r}"
            raise ValueError(msg)
        if clock is not None and not callable(clock):
            msg = f"clock must be a callable returning seconds, got {type(clock).__name__}"
            raise TypeError(msg)
        self._interval = 1.0 / _positive_number(
            "refresh_per_second", refresh_per_second, zero=False
        )
        self._heartbeat = _positive_number("heartbeat", heartbeat, zero=True)
        self._mode: ConsoleMode = choose_mode(mode, file=out, environ=env)
        self._color = choose_color(color, file=out, environ=env)
        self._file = out
        self._width = width
        self._real_time = clock is None
        self._clock: Callable[[], float] = time.time if clock is None else clock
        self._tree = EventTree()
        self._lock = threading.RLock()
        self._closed = False
        self._reported = False
        self._ticker: Ticker | None = None
        self._at_exit: Callable[[], None] | None = None
        self._last_draw: float | None = None
        self._draw_not_before = 0.0
        # Live mode on the real clock: emitters only append here; the drawing thread folds.
        self._queue: collections.deque[EventChange] | None = None
        self._live: LiveDisplay | None = None
        self._log: PlainLog | None = None
        if self._mode == "live":
            console = make_console(out, color=self._color, width=width, environ=env, terminal=True)
            self._live = LiveDisplay(console, redirect=file is None)
        else:
            self._log = PlainLog(
                self._tree,
                quiet=self._mode == "quiet",
                heartbeat=self._heartbeat,
                width=width if width is not None else _terminal_width(out, env),
                on_error=self._report,
            )

    # -- reading ----------------------------------------------------------------------------

    @property
    def mode(self) -> ConsoleMode:
        """The mode in use: ``"live"``, ``"plain"`` or ``"quiet"``."""
        return self._mode

    @property
    def color(self) -> bool:
        """Whether the output is coloured."""
        return self._color

    @property
    def tree(self) -> EventTree:
        """
        The tree folded from every change so far.

        In live mode on the real clock the drawing thread folds the changes and keeps
        changing the tree: read it after ``close()``.
        """
        with self._lock:
            self._fold_queued()
        return self._tree

    def __repr__(self) -> str:
        return f"<ConsoleHandler mode={self._mode} color={self._color}>"

    # -- taking changes ---------------------------------------------------------------------

    def on_event_change(self, change: EventChange) -> None:
        """Fold the change into the tree and show it; never raises (errors are reported once)."""
        queue = self._queue
        if queue is not None:
            queue.append(change)  # the drawing thread folds it: the emitter pays an append
            return
        try:
            with self._lock:
                if self._closed:
                    return
                if self._queue is not None:  # another thread started the display meanwhile
                    self._queue.append(change)
                    return
                self._tree.apply(change)
                if self._live is not None:
                    self._live_changed()
                else:
                    self._log_changed(change)
        except Exception as exc:  # noqa: BLE001  (the display must never fail the program)
            self._report(exc)

    def _fold_queued(self) -> None:
        """Fold the changes that emitters queued for the drawing thread (under the lock)."""
        queue = self._queue
        if queue is None:
            return
        apply = self._tree.apply
        while queue:
            change = queue.popleft()
            try:
                apply(change)
            except Exception as exc:  # noqa: BLE001  (a bad change must not stop the others)
                self._report(exc)

    def _log_changed(self, change: EventChange) -> None:
        log = typing.cast("PlainLog", self._log)
        self._write(log.changed(change, self._clock()))
        if self._ticker is None and self._real_time and self._heartbeat and self._mode == "plain":
            pace = min(_MAX_CHECK_INTERVAL, self._heartbeat / _HEARTBEAT_CHECKS)
            self._ticker = Ticker(self, ConsoleHandler._heartbeat_tick, pace)

    def _live_changed(self) -> None:
        live = typing.cast("LiveDisplay", self._live)
        if not live.started:
            live.start()
            self._register_at_exit()
            if self._real_time:
                self._queue = collections.deque()
                self._ticker = Ticker(self, ConsoleHandler._live_tick, self._interval)
        if self._real_time:
            return  # the ticker folds and draws; the emitting call only queues
        now = self._clock()
        if self._last_draw is None or now - self._last_draw >= self._interval:
            self._last_draw = now
            live.show(self._frame(now, full=False))

    def _frame(self, now: float, *, full: bool) -> Frame:
        live = typing.cast("LiveDisplay", self._live)
        width, height = live.size()
        return render_frame(
            self._tree,
            now,
            self._width or width,
            None if full else max(2, height - 1),
            on_error=self._report,
        )

    def _live_tick(self) -> None:
        try:
            with self._lock:
                if self._closed:
                    return
                self._fold_queued()
                started = time.perf_counter()
                if started < self._draw_not_before:
                    return
                frame = self._frame(self._clock(), full=False)
            typing.cast("LiveDisplay", self._live).show(frame)
            # A huge tree makes frames slow: keep drawing to a fifth of the time at most.
            cost = time.perf_counter() - started
            self._draw_not_before = started + cost * _DRAW_BACKOFF
        except Exception as exc:  # noqa: BLE001  (same)
            self._report(exc)

    def _heartbeat_tick(self) -> None:
        try:
            with self._lock:
                if not self._closed:
                    self._write(typing.cast("PlainLog", self._log).tick(self._clock()))
        except Exception as exc:  # noqa: BLE001  (same)
            self._report(exc)

    def _write(self, lines: list[Line]) -> None:
        if not lines:
            return
        render = ansi_text if self._color else plain_text
        self._file.write("".join(render(line) + "\n" for line in lines))
        flush = getattr(self._file, "flush", None)
        if flush is not None:
            flush()

    # -- ending -----------------------------------------------------------------------------

    def close(self) -> None:
        """
        Finish: print the final frame in full (live), or the failures and the summary (others).

        Later changes are ignored; closing twice is harmless.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
        self._unregister_at_exit()
        try:
            with self._lock:
                self._fold_queued()
                self._queue = None  # later changes take the slow path, which sees the close
                now = self._clock()
                if self._live is not None:
                    if self._live.started:
                        self._live.stop(self._frame(now, full=True))
                else:
                    self._write(typing.cast("PlainLog", self._log).close(now))
        except Exception as exc:  # noqa: BLE001  (same)
            self._report(exc)

    def _register_at_exit(self) -> None:
        # A live display hides the cursor: put the terminal back even if nobody calls close().
        handler = self.__class__
        ref = weakref.ref(self)

        def at_exit() -> None:
            target = ref()
            if target is not None:
                handler.close(target)

        self._at_exit = at_exit
        atexit.register(at_exit)

    def _unregister_at_exit(self) -> None:
        if self._at_exit is not None:
            atexit.unregister(self._at_exit)
            self._at_exit = None

    # -- errors -----------------------------------------------------------------------------

    def _report(self, exc: Exception) -> None:
        """Report the first rendering error; swallow the later ones."""
        if self._reported:
            return
        self._reported = True
        try:
            reason = f"{type(exc).__name__}: {exc}"
        except Exception:  # noqa: BLE001  (an exception whose str() fails)
            reason = type(exc).__name__
        message = (
            f"alien-events console: rendering failed ({reason}); the display carries on, "
            "and further rendering errors are not reported"
        )
        try:
            warnings.warn(ConsoleWarning(message), stacklevel=3)
        except Exception:  # noqa: BLE001  (warnings turned into errors: say it on the file)
            with contextlib.suppress(Exception):
                self._file.write(message + "\n")
