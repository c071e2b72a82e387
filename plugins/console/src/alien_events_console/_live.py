"""
The terminal side of live mode (a rich ``Live`` fed with frames), and the ticker thread.

Frames are built elsewhere (``render_frame``); this module only puts them on the screen.
``Live`` runs without its own refresh thread: the handler's ``Ticker`` decides when to draw,
so a failing draw is caught and reported by the handler instead of killing rich's thread.
"""

from __future__ import annotations

import threading
import typing
import weakref
from typing import IO, Any

from rich.console import Console
from rich.live import Live

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from alien_events_console._frame import Frame


def make_console(
    file: IO[str], *, color: bool, width: int | None, environ: Mapping[str, str], terminal: bool
) -> Console:
    """
    Return a rich console for ``file`` whose colour and terminal-ness are what we decided.

    Nothing is left to rich's own detection (which would let ``FORCE_COLOR`` turn animation
    on): ``terminal`` says whether to drive the cursor, ``color`` whether to use colours.
    """
    return Console(
        file=file,
        force_terminal=terminal,
        force_interactive=terminal,
        force_jupyter=False,
        color_system="auto" if color else None,
        no_color=not color,
        width=width,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
        _environ=dict(environ),
    )


@typing.final
class LiveDisplay:
    """
    A rich ``Live`` region at the bottom of the terminal, showing the latest frame.

    ``redirect`` lets rich take over ``sys.stdout``/``sys.stderr`` while it runs, so the
    program's own prints appear above the tree instead of tearing it.
    """

    def __init__(self, console: Console, *, redirect: bool) -> None:
        self.console = console
        self._live = Live(
            console=console,
            auto_refresh=False,
            transient=False,
            redirect_stdout=redirect,
            redirect_stderr=redirect,
            vertical_overflow="ellipsis",
        )
        self.started = False

    def size(self) -> tuple[int, int]:
        """The terminal's width and height, now."""
        width, height = self.console.size
        return width, height

    def start(self) -> None:
        """Hide the cursor and start drawing."""
        self.started = True
        self._live.start()

    def show(self, frame: Frame) -> None:
        """Draw ``frame`` in place of the previous one."""
        self._live.update(frame, refresh=True)

    def stop(self, final: Frame) -> None:
        """Draw the final frame in full (rich lets it run past the screen) and stop."""
        self._live.update(final)
        self._live.stop()


@typing.final
class Ticker:
    """
    A daemon thread that calls ``tick`` on its owner every ``interval`` seconds until stopped.

    It holds the owner weakly, so a handler that is dropped without ``close()`` does not
    live on because of its thread; the thread then ends at its next tick.
    """

    def __init__(self, owner: object, tick: Callable[[Any], None], interval: float) -> None:
        self._stop = threading.Event()
        ref = weakref.ref(owner)
        stop = self._stop

        def run() -> None:
            while not stop.wait(interval):
                target = ref()
                if target is None:
                    return
                tick(target)
                del target

        self._thread = threading.Thread(target=run, name="alien-events-console", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for a tick in progress to end (not from the thread itself)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
