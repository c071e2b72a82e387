"""
A private event loop on a daemon thread, so sync code can deliver to async handlers and wait.
"""

from __future__ import annotations

import asyncio
import os
import threading
import typing
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Coroutine

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _start() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="alien-events-handlers", daemon=True
            )
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """
    Run ``coro`` to completion on the handler loop thread and return its result (blocking).
    """
    loop = _loop if _loop is not None and _thread is not None and _thread.is_alive() else _start()
    if threading.current_thread() is _thread:
        coro.close()
        msg = (
            "a sync emit reached an async handler from the handler loop thread itself; "
            "use the async forms (aemit, aupdate, acomplete, afail) inside async handlers"
        )
        raise RuntimeError(msg)
    succeeded, outcome = asyncio.run_coroutine_threadsafe(_outcome(coro), loop).result()
    if succeeded:
        return typing.cast("T", outcome)
    raise outcome


async def _outcome(coro: Coroutine[Any, Any, T]) -> tuple[bool, Any]:
    """
    Await ``coro`` and return (True, its result) or (False, what it raised), whatever it raised.

    ``SystemExit`` and ``KeyboardInterrupt`` would otherwise stop the loop thread itself and
    leave the waiting emitter without an answer; they are raised in the emitter's thread.
    """
    try:
        return True, await coro
    except BaseException as exc:  # noqa: BLE001  (handed to the emitter, raised there)
        return False, exc


def _reset_after_fork() -> None:
    # The child has only the forking thread: the loop thread is gone, and the lock may have
    # been held by a thread that no longer exists.
    global _loop, _thread, _lock
    _loop, _thread, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
