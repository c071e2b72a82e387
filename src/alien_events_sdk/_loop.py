"""
A private event loop on a daemon thread, so sync code can deliver to async handlers and wait.
"""

from __future__ import annotations

import asyncio
import os
import threading
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
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def _reset_after_fork() -> None:
    global _loop, _thread
    _loop, _thread = None, None


os.register_at_fork(after_in_child=_reset_after_fork)
