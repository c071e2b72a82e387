"""
Deterministic thread interleavings: pause a thread at an exact point of the code it runs.

A race between two threads is decided by where each one is when the other acts. Sleeping and
looping only make a given interleaving likely; these helpers make it certain:

* ``PausePoints`` installs a profile function (``sys.setprofile``) in the thread that enters it.
  The profile sees every call and return of a Python function and every call and return of a C
  function (``len``, ``list.pop``, ...), each with the frame it happens in. The first time the
  thread reaches each ``Point``, in the given order, the point's action runs there, in that
  thread: typically a handshake that lets another thread act and waits for it to be done. The
  code under test runs unchanged, it is only paused. The profile is per thread and separate
  from ``sys.settrace``, so coverage measurement goes on undisturbed.
* ``Signals`` are named one-shot ``threading.Event`` flags shared by the threads of a test. A
  wait that times out is noted in ``problems`` (for the test to assert empty) and returns,
  so a broken interleaving fails the test with a message instead of hanging it.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alien_events_api import carry_context

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType, FrameType, TracebackType

TIMEOUT = 30.0
"""Seconds any handshake waits before noting a problem and going on (machines are noisy)."""


@dataclass(frozen=True)
class Point:
    """
    A place in running code: an ``event`` of the frame running ``code``.

    ``event`` is a profile event: ``"call"`` or ``"return"`` of that frame, or ``"c_call"`` or
    ``"c_return"`` of the C function named ``c_function`` called from it.
    """

    code: CodeType
    event: str
    c_function: str | None = None

    def matches(self, frame: FrameType, event: str, arg: object) -> bool:
        """Whether a profile event is this point."""
        return (
            event == self.event
            and frame.f_code is self.code
            and (self.c_function is None or getattr(arg, "__name__", None) == self.c_function)
        )


class PausePoints:
    """
    Run an action the first time the entering thread reaches each point, one point after another.

    ``with PausePoints((point, action), ...):`` arms the first point; once its action ran, the
    next is armed. ``reached`` counts the points whose action ran.
    """

    def __init__(self, *steps: tuple[Point, Callable[[], object]]) -> None:
        self._steps = list(steps)
        self.reached = 0
        self._previous: object = None

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        if self.reached < len(self._steps):
            point, action = self._steps[self.reached]
            if point.matches(frame, event, arg):
                self.reached += 1
                action()

    def __enter__(self) -> PausePoints:
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sys.setprofile(self._previous)  # type: ignore[arg-type]


class Signals:
    """Named one-shot flags between the threads of one test; timeouts land in ``problems``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flags: dict[str, threading.Event] = {}
        self.problems: list[str] = []

    def _flag(self, name: str) -> threading.Event:
        with self._lock:
            return self._flags.setdefault(name, threading.Event())

    def set(self, name: str) -> None:
        """Raise the flag ``name``."""
        self._flag(name).set()

    def is_set(self, name: str) -> bool:
        """Whether the flag ``name`` is up."""
        return self._flag(name).is_set()

    def wait(self, name: str, timeout: float = TIMEOUT) -> bool:
        """Wait for the flag ``name``; after ``timeout`` seconds note a problem and return False."""
        if self._flag(name).wait(timeout):
            return True
        self.problems.append(f"timed out after {timeout:.0f} s waiting for {name!r}")
        return False

    def seen_within(self, name: str, seconds: float) -> bool:
        """Whether the flag ``name`` goes up within ``seconds`` (not going up is no problem)."""
        return self._flag(name).wait(seconds)

    def handshake(self, signal: str, wait_for: str) -> Callable[[], bool]:
        """An action for a ``Point``: raise ``signal``, then wait for ``wait_for``."""

        def action() -> bool:
            self.set(signal)
            return self.wait(wait_for)

        return action


class CarriedThread:
    """
    A daemon thread running ``fn`` in the context of the code that made it (``carry_context``).

    Whatever ``fn`` raises is kept in ``errors`` rather than left to the thread's excepthook.
    """

    def __init__(
        self,
        fn: Callable[[], object],
        name: str,
        carry: Callable[[Callable[[], None]], Callable[[], object]] = carry_context,
    ) -> None:
        self.errors: list[BaseException] = []
        self.result: object = None
        carried = carry(self._run)
        self._fn = fn
        self.thread = threading.Thread(target=carried, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:
            self.errors.append(exc)

    def start(self) -> CarriedThread:
        """Start the thread; return self."""
        self.thread.start()
        return self

    def join(self, timeout: float = TIMEOUT) -> bool:
        """Wait for the thread to end; False if it is still running after ``timeout`` seconds."""
        self.thread.join(timeout)
        return not self.thread.is_alive()
