"""
Tests of ``EventScope`` and ``ParentScope`` (``alien_events_api._scope``).

Async callables behind partials, a scope's handle before entry, leaving a scope twice, and the
error a scope ends with.
"""

import asyncio
import functools

import pytest

from alien_events_api import (
    AlienError,
    AlienEvent,
    Created,
    EventHandle,
    EventState,
    StateChanged,
    current_event,
)
from alien_events_api._alien_error import cancelled_error
from alien_events_api._scope import terminal_error


class AsyncCallable:
    """An object whose ``__call__`` is a coroutine function: calling it gives an awaitable."""

    async def __call__(self, extra: str, handle: EventHandle) -> tuple[str, str, EventHandle]:
        return extra, handle.id, current_event()


class TestAsyncCallables:
    def test_in_scope_with_a_partial_of_an_async_callable_starts_when_awaited(self, bus, recorder):
        """``in_scope`` given a partial of an object with an async ``__call__`` emits nothing until awaited."""
        with bus:
            awaitable = AlienEvent.Finished().in_scope(functools.partial(AsyncCallable(), "x"))
            assert [] == recorder.changes

            async def main():
                return await awaitable

            extra, handle_id, inside = asyncio.run(main())
        assert ("x", handle_id) == (extra, inside.id)
        assert [(Created, EventState.STARTED), (StateChanged, EventState.SUCCESS)] == [
            (type(c), c.state if isinstance(c, Created) else c.new_state) for c in recorder.changes
        ]
        assert {handle_id} == {c.id for c in recorder.changes}

    def test_as_parent_with_a_nested_partial_of_an_async_callable(self, bus, recorder):
        """``as_parent`` given a partial of a partial of an async callable parents what it emits."""

        async def emit_child(tag: str, handle: EventHandle) -> str:
            return (await AlienEvent.BuildingStack(stack=tag).aemit()).parent_id

        parent = EventHandle("parent-id")
        fn = functools.partial(functools.partial(emit_child), "s")

        async def main():
            async with bus:
                return await parent.as_parent(fn)

        assert "parent-id" == asyncio.run(main())


class TestScopeObject:
    def test_handle_before_entry_is_an_error(self):
        """Asking an event scope for its handle before it was entered is a ``RuntimeError``."""
        scope = AlienEvent.Finished().in_scope()
        with pytest.raises(RuntimeError, match="has not been entered yet"):
            _ = scope.handle

    def test_handle_after_entry_is_the_scope_handle(self, bus):
        """Once entered, an event scope's ``handle`` is the handle its ``with`` gave."""
        scope = AlienEvent.Finished().in_scope()
        with bus, scope as given:
            assert given is scope.handle

    def test_leaving_a_parent_scope_again_leaves_the_context_alone(self):
        """Exiting a parent scope a second time does nothing: the enclosing parent stays current."""
        outer, inner = EventHandle("outer"), EventHandle("inner")
        with outer.as_parent():
            scope = inner.as_parent()
            with scope:
                assert inner is current_event()
            scope.__exit__(None, None, None)
            assert outer is current_event()
        assert EventHandle.noop() is current_event()


class TestTerminalError:
    def test_success_ends_without_error(self):
        """A body that ended without an exception ends its scope with no error."""
        assert terminal_error(None) is None

    @pytest.mark.parametrize("exc", [ValueError("bad"), KeyError("k"), RuntimeError()])
    def test_exception_ends_with_its_converted_error(self, exc):
        """An ``Exception`` ends the scope with the error ``AlienError.from_exception`` builds."""
        assert AlienError.from_exception(exc) == terminal_error(exc)

    @pytest.mark.parametrize(
        "exc", [KeyboardInterrupt(), GeneratorExit(), SystemExit(2), asyncio.CancelledError()]
    )
    def test_other_base_exception_ends_cancelled(self, exc):
        """A ``BaseException`` that is not an ``Exception`` ends the scope ``CANCELLED``."""
        assert cancelled_error(exc) == terminal_error(exc)
        assert "CANCELLED" == terminal_error(exc).code
