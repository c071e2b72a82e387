"""
Tests of ``@alien_event`` (``alien_events_api._decorator``).

Sync, async, generator and async-generator functions, factories, and ``current_event()``
inside the scopes the decorator opens.
"""

import asyncio
import functools
import inspect

import pytest

from alien_events_api import (
    AlienError,
    AlienEvent,
    Created,
    Event,
    EventHandle,
    EventState,
    StateChanged,
    Updated,
    alien_event,
    current_event,
)

LOADING = AlienEvent.LoadingConfiguration()


def label(event: Event) -> str:
    stack = getattr(event, "stack", None)
    return type(event).__name__ if stack is None else f"{type(event).__name__}:{stack}"


def story(recorder) -> list[tuple]:
    """The recorded changes, by event label: who was created under whom, and how each ended."""
    labels: dict[str, str] = {}
    out: list[tuple] = []
    for change in recorder.changes:
        if isinstance(change, Created):
            labels[change.id] = label(change.event)
            parent = None if change.parent_id is None else labels.get(change.parent_id, "?")
            out.append(("created", labels[change.id], change.state.value, parent))
        elif isinstance(change, Updated):
            out.append(("updated", labels[change.id], label(change.event)))
        else:
            code = None if change.error is None else change.error.code
            out.append(("ended", labels.get(change.id, "?"), change.new_state.value, code))
    return out


def child(stack: str) -> EventHandle:
    return AlienEvent.BuildingStack(stack=stack).emit()


def started(name: str, parent: str | None = None) -> tuple:
    return ("created", name, "started", parent)


def plain(name: str, parent: str | None) -> tuple:
    return ("created", name, "none", parent)


def success(name: str) -> tuple:
    return ("ended", name, "success", None)


def failed(name: str, code: str) -> tuple:
    return ("ended", name, "failed", code)


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() is broken")


class TestDecoratorArguments:
    @pytest.mark.parametrize("value", [123, "LoadingConfiguration", None])
    def test_refuses_what_is_neither_an_event_nor_a_factory(self, value):
        """``@alien_event`` with neither an event nor a callable is a ``TypeError`` at once."""
        with pytest.raises(TypeError, match="takes an event or a factory"):
            alien_event(value)

    def test_factory_naming_a_missing_parameter_fails_at_decoration(self):
        """A factory asking for a parameter the function lacks is a ``TypeError`` when decorating."""
        decorate = alien_event(lambda stack_id: AlienEvent.BuildingStack(stack=stack_id))
        with pytest.raises(TypeError, match=r"asks for \['stack_id'\]") as caught:

            @decorate
            def build(stack):
                return stack

        assert "build(stack)" in str(caught.value)

    def test_factory_parameter_with_default_may_be_missing(self):
        """A factory parameter the function lacks is fine if the factory gives it a default."""

        @alien_event(lambda stack, suffix="-x": AlienEvent.BuildingStack(stack=stack + suffix))
        def build(stack):
            return current_event()

        assert EventHandle.noop() == build("s")

    def test_factory_returning_a_non_event_is_a_type_error(self, bus, recorder):
        """A factory that returns something other than an event is a ``TypeError``; the body never runs."""
        ran = []

        @alien_event(lambda: "BuildingStack")
        def build():
            ran.append(True)

        with bus, pytest.raises(TypeError, match="returned str, not an event"):
            build()
        assert ([], []) == (ran, recorder.changes)

    def test_factory_error_propagates_before_the_body(self, bus, recorder):
        """A factory that raises (a bad field) stops the call before anything is emitted."""
        ran = []

        @alien_event(lambda stack: AlienEvent.BuildingStack(stack=stack))
        def build(stack):
            ran.append(stack)

        with bus, pytest.raises(TypeError, match=r"BuildingStack\.stack: expected str"):
            build(3)
        assert ([], []) == (ran, recorder.changes)

    def test_positional_only_factory_parameter(self):
        """A positional-only factory parameter is refused when decorating, or filled by name."""

        def make(stack, /):
            return AlienEvent.BuildingStack(stack=stack)

        try:

            @alien_event(make)
            def build(stack):
                return stack

        except TypeError:
            return
        assert "s" == build("s")


class TestFactoryMatching:
    def test_arguments_are_matched_by_name(self, bus, recorder):
        """The factory gets the function's arguments of the same names, passed either way."""

        @alien_event(lambda name: AlienEvent.BuildingStack(stack=name))
        def build(count, name, flag=False):
            return (count, name, flag)

        with bus:
            assert (1, "a", False) == build(1, "a")
            assert (2, "b", True) == build(count=2, flag=True, name="b")
        assert ["BuildingStack:a", "BuildingStack:b"] == [
            label(c.event) for c in recorder.changes if isinstance(c, Created)
        ]

    def test_function_defaults_are_applied(self, bus, recorder):
        """A parameter left to its default reaches the factory with that default."""

        @alien_event(lambda stack: AlienEvent.BuildingStack(stack=stack))
        def build(stack="default"):
            pass

        with bus:
            build()
        assert "default" == recorder.changes[0].event.stack

    def test_method_factory_gets_self(self, bus, recorder):
        """On a method, a factory may ask for ``self``."""

        class Builder:
            def __init__(self, name):
                self.name = name

            @alien_event(lambda self, suffix: AlienEvent.BuildingStack(stack=self.name + suffix))
            def build(self, suffix):
                return self.name

        with bus:
            assert "api" == Builder("api").build("-v2")
        assert "api-v2" == recorder.changes[0].event.stack

    def test_positional_only_factory_parameter_the_function_lacks_keeps_its_default(
        self, bus, recorder
    ):
        """A positional-only factory parameter the function does not take gets the factory's default."""

        def make(stack="default", /):
            return AlienEvent.BuildingStack(stack=stack)

        @alien_event(make)
        def build():
            return "built"

        with bus:
            assert "built" == build()
        assert "default" == recorder.changes[0].event.stack

    def test_positional_only_factory_parameter_after_a_missing_one_is_still_matched(
        self, bus, recorder
    ):
        """A positional-only factory parameter the function takes is matched even after one it lacks."""

        def make(region="eu", stack="default", /):
            return AlienEvent.BuildingStack(stack=f"{region}/{stack}")

        @alien_event(make)
        def build(stack):
            return stack

        with bus:
            build("mine")
        assert "eu/mine" == recorder.changes[0].event.stack

    def test_var_keyword_factory_gets_every_argument(self, bus, recorder):
        """A factory taking ``**kwargs`` gets every argument of the call, defaults included."""
        seen = []

        def make(**kwargs):
            seen.append(kwargs)
            return LOADING

        @alien_event(make)
        def load(path, *, strict=True):
            pass

        load("a.toml")
        assert [{"path": "a.toml", "strict": True}] == seen

    def test_event_class_is_a_factory(self, bus, recorder):
        """An event class works as a factory, its fields filled from same-named arguments."""

        @alien_event(AlienEvent.RunningPreflights)
        def preflights(stack, platform, verbose=False):
            pass

        @alien_event(AlienEvent.LoadingConfiguration)
        def load(path):
            pass

        with bus:
            preflights("s", "aws")
            load("a.toml")
        created = [c.event for c in recorder.changes if isinstance(c, Created)]
        assert [
            AlienEvent.RunningPreflights(stack="s", platform="aws"),
            AlienEvent.LoadingConfiguration(),
        ] == created

    def test_factory_runs_outside_the_new_scope(self, bus, recorder):
        """The factory runs in the caller's context, before the new event exists."""
        seen = []

        def make():
            seen.append(current_event())
            return LOADING

        @alien_event(make)
        def load():
            pass

        with bus, AlienEvent.Finished().in_scope() as outer:
            load()
        assert [outer] == seen

    def test_the_same_event_is_used_for_every_call(self, bus, recorder):
        """With an event (not a factory), every call emits that event."""

        @alien_event(LOADING)
        def load():
            pass

        with bus:
            load()
            load()
        assert [LOADING, LOADING] == [c.event for c in recorder.changes if isinstance(c, Created)]


class TestSyncFunction:
    def test_lifecycle(self, bus, recorder):
        """The event starts, parents what the body emits, ends in success, and the result is returned."""

        @alien_event(LOADING)
        def load():
            child("a")
            return 42

        with bus:
            assert 42 == load()
        assert [
            started("LoadingConfiguration"),
            plain("BuildingStack:a", "LoadingConfiguration"),
            success("LoadingConfiguration"),
        ] == story(recorder)

    def test_exception_fails_the_event_and_propagates_unchanged(self, bus, recorder):
        """An exception fails the event with the error made from it, then propagates as is."""
        exc = KeyError("missing")

        @alien_event(LOADING)
        def load():
            raise exc

        with bus, pytest.raises(KeyError) as caught:
            load()
        assert exc is caught.value
        assert AlienError.from_exception(exc) == recorder.changes[-1].error
        assert [started("LoadingConfiguration"), failed("LoadingConfiguration", "KEY_ERROR")] == (
            story(recorder)
        )

    def test_keyboard_interrupt_cancels_the_event(self, bus, recorder):
        """A ``KeyboardInterrupt`` ends the event failed with code ``CANCELLED``."""

        @alien_event(LOADING)
        def load():
            raise KeyboardInterrupt

        with bus, pytest.raises(KeyboardInterrupt):
            load()
        assert failed("LoadingConfiguration", "CANCELLED") == story(recorder)[-1]

    def test_current_event_is_the_scope_handle_inside_and_noop_outside(self, bus, recorder):
        """Inside the body ``current_event()`` is the event's handle; outside, the no-op handle."""

        @alien_event(LOADING)
        def load():
            return current_event()

        with bus:
            handle = load()
            after = current_event()
        assert (recorder.changes[0].id, False) == (handle.id, handle.is_noop)
        assert EventHandle.noop() is after

    def test_nested_functions_nest_their_events(self, bus, recorder):
        """A decorated function called inside another makes its event a child of the outer one."""

        @alien_event(lambda stack: AlienEvent.BuildingStack(stack=stack))
        def inner(stack):
            child(stack + "-child")

        @alien_event(LOADING)
        def outer():
            inner("x")

        with bus:
            outer()
        assert [
            started("LoadingConfiguration"),
            started("BuildingStack:x", "LoadingConfiguration"),
            plain("BuildingStack:x-child", "BuildingStack:x"),
            success("BuildingStack:x"),
            success("LoadingConfiguration"),
        ] == story(recorder)

    def test_without_a_bus_the_function_just_runs(self):
        """With no bus, the function runs and returns, and ``current_event()`` is a no-op handle."""

        @alien_event(LOADING)
        def load(x):
            return x, current_event()

        value, handle = load(5)
        assert (5, True) == (value, handle.is_noop)

    def test_exception_with_broken_str_propagates_unchanged(self, bus, recorder):
        """Even an exception whose ``__str__`` raises propagates unchanged and fails the event."""

        @alien_event(LOADING)
        def load():
            raise BrokenStr

        with bus, pytest.raises(BrokenStr):
            load()
        assert [StateChanged] == [type(c) for c in recorder.changes[1:]]
        assert EventState.FAILED == recorder.changes[-1].new_state


class TestAsyncFunction:
    def test_is_still_a_coroutine_function(self):
        """A decorated ``async def`` is still a coroutine function."""

        @alien_event(LOADING)
        async def load():
            pass

        assert inspect.iscoroutinefunction(load)

    def test_lifecycle(self, bus, recorder):
        """The event starts when awaited, parents what the body emits, and ends in success."""

        @alien_event(LOADING)
        async def load():
            await AlienEvent.BuildingStack(stack="a").aemit()
            return current_event()

        async def main():
            async with bus:
                return await load()

        handle = asyncio.run(main())
        assert recorder.changes[0].id == handle.id
        assert [
            started("LoadingConfiguration"),
            plain("BuildingStack:a", "LoadingConfiguration"),
            success("LoadingConfiguration"),
        ] == story(recorder)

    def test_event_starts_when_awaited_not_when_called(self, bus, recorder):
        """Calling the function makes a coroutine; the event starts only when it runs."""

        @alien_event(LOADING)
        async def load():
            pass

        async def main():
            async with bus:
                coroutine = load()
                before = list(recorder.changes)
                await coroutine
                return before

        assert [] == asyncio.run(main())
        assert 2 == len(recorder.changes)

    def test_exception_fails_the_event(self, bus, recorder):
        """An exception fails the event and propagates unchanged."""
        exc = ValueError("bad")

        @alien_event(LOADING)
        async def load():
            raise exc

        async def main():
            async with bus:
                await load()

        with pytest.raises(ValueError, match="bad") as caught:
            asyncio.run(main())
        assert exc is caught.value
        assert failed("LoadingConfiguration", "VALUE_ERROR") == story(recorder)[-1]

    def test_cancellation_cancels_the_event(self, bus, recorder):
        """A task cancelled inside the body ends the event failed with code ``CANCELLED``."""

        @alien_event(LOADING)
        async def load(entered):
            entered.set()
            await asyncio.Event().wait()

        async def main():
            async with bus:
                entered = asyncio.Event()
                task = asyncio.create_task(load(entered))
                await entered.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        asyncio.run(main())
        assert [started("LoadingConfiguration"), failed("LoadingConfiguration", "CANCELLED")] == (
            story(recorder)
        )

    def test_concurrent_calls_keep_their_own_scopes(self, bus, recorder):
        """Two calls running at once each parent their own children."""

        @alien_event(lambda stack: AlienEvent.BuildingStack(stack=stack))
        async def build(stack, both_started, started_count):
            started_count.append(stack)
            if len(started_count) == 2:
                both_started.set()
            await both_started.wait()
            await AlienEvent.BuildingStack(stack=f"{stack}-child").aemit()

        async def main():
            async with bus:
                gate, count = asyncio.Event(), []
                await asyncio.gather(build("a", gate, count), build("b", gate, count))

        asyncio.run(main())
        parents = {c[1]: c[3] for c in story(recorder) if c[0] == "created"}
        assert ("BuildingStack:a", "BuildingStack:b") == (
            parents["BuildingStack:a-child"],
            parents["BuildingStack:b-child"],
        )


class TestGenerator:
    def test_event_starts_at_the_first_step(self, bus, recorder):
        """Calling a decorated generator function emits nothing; the first ``next`` starts it."""

        @alien_event(LOADING)
        def items():
            yield 1

        with bus:
            iterator = items()
            assert [] == recorder.changes
            next(iterator)
            assert [started("LoadingConfiguration")] == story(recorder)
            iterator.close()

    def test_scope_lasts_until_the_generator_finishes(self, bus, recorder):
        """The event ends in success only after the last item was taken and the body returned."""

        @alien_event(LOADING)
        def items():
            yield 1
            child("between")
            yield 2

        seen = []
        with bus:
            for item in items():
                seen.append((item, len(recorder.changes)))
        assert [(1, 1), (2, 2)] == seen
        assert [
            started("LoadingConfiguration"),
            plain("BuildingStack:between", "LoadingConfiguration"),
            success("LoadingConfiguration"),
        ] == story(recorder)

    def test_return_value_is_kept(self, bus, recorder):
        """The generator's return value reaches ``yield from``."""

        @alien_event(LOADING)
        def items():
            yield 1
            return "done"

        def consumer():
            result = yield from items()
            return result

        with bus:
            iterator = consumer()
            next(iterator)
            with pytest.raises(StopIteration) as stopped:
                next(iterator)
        assert "done" == stopped.value.value

    def test_sent_values_reach_the_body(self, bus, recorder):
        """Values sent to the wrapper reach the wrapped generator."""

        @alien_event(LOADING)
        def echo():
            received = []
            while len(received) < 2:
                received.append((yield len(received)))
            return received

        with bus:
            iterator = echo()
            assert 0 == next(iterator)
            assert 1 == iterator.send("a")
            with pytest.raises(StopIteration) as stopped:
                iterator.send("b")
        assert ["a", "b"] == stopped.value.value
        assert success("LoadingConfiguration") == story(recorder)[-1]

    def test_thrown_exception_can_be_handled_by_the_body(self, bus, recorder):
        """An exception thrown into the wrapper reaches the body, which may handle it and go on."""

        @alien_event(LOADING)
        def items():
            try:
                yield 1
            except KeyError:
                yield "handled"

        with bus:
            iterator = items()
            next(iterator)
            assert "handled" == iterator.throw(KeyError("k"))
            with pytest.raises(StopIteration):
                next(iterator)
        assert success("LoadingConfiguration") == story(recorder)[-1]

    def test_thrown_exception_not_handled_fails_the_event(self, bus, recorder):
        """An exception thrown in and not handled fails the event and propagates."""

        @alien_event(LOADING)
        def items():
            yield 1

        with bus:
            iterator = items()
            next(iterator)
            with pytest.raises(KeyError):
                iterator.throw(KeyError("k"))
        assert failed("LoadingConfiguration", "KEY_ERROR") == story(recorder)[-1]

    def test_exception_in_the_body_fails_the_event(self, bus, recorder):
        """An exception raised by the body between items fails the event and propagates."""

        @alien_event(LOADING)
        def items():
            yield 1
            raise ValueError("bad item")

        with bus, pytest.raises(ValueError, match="bad item"):
            list(items())
        assert failed("LoadingConfiguration", "VALUE_ERROR") == story(recorder)[-1]

    def test_closed_early_ends_failed_with_cancelled(self, bus, recorder):
        """A generator closed before it finishes ends failed with ``CANCELLED``, after its cleanup."""
        cleaned = []

        @alien_event(LOADING)
        def items():
            try:
                yield 1
                yield 2
            finally:
                cleaned.append(current_event())
                child("cleanup")

        with bus:
            iterator = items()
            next(iterator)
            iterator.close()
        assert [
            started("LoadingConfiguration"),
            plain("BuildingStack:cleanup", "LoadingConfiguration"),
            failed("LoadingConfiguration", "CANCELLED"),
        ] == story(recorder)
        assert [recorder.changes[0].id] == [h.id for h in cleaned]
        error = recorder.changes[-1].error
        assert ("cancelled (GeneratorExit)", True, 499) == (
            error.message,
            error.retryable,
            error.http_status_code,
        )

    def test_closed_before_the_first_step_emits_nothing(self, bus, recorder):
        """A generator closed before it started never emits its event."""

        @alien_event(LOADING)
        def items():
            yield 1

        with bus:
            items().close()
        assert [] == recorder.changes

    def test_parent_context_is_set_only_while_the_body_runs(self, bus, recorder):
        """Between items the consumer runs in its own context: its events are not the generator's children."""
        inside = []

        @alien_event(LOADING)
        def items():
            inside.append(current_event())
            yield 1
            inside.append(current_event())
            child("body")
            yield 2

        outside = []
        with bus:
            for _ in items():
                outside.append(current_event())
                child("consumer")
        assert [recorder.changes[0].id] * 2 == [h.id for h in inside]
        assert [EventHandle.noop()] * 2 == outside
        assert [
            started("LoadingConfiguration"),
            plain("BuildingStack:consumer", None),
            plain("BuildingStack:body", "LoadingConfiguration"),
            plain("BuildingStack:consumer", None),
            success("LoadingConfiguration"),
        ] == story(recorder)

    def test_consumer_inside_an_outer_scope_keeps_it(self, bus, recorder):
        """A consumer iterating inside another scope sees that scope between items, not the generator's."""

        @alien_event(LOADING)
        def items():
            yield 1

        with bus, AlienEvent.Finished().in_scope() as outer:
            for _ in items():
                between = current_event()
                child("consumer")
        assert outer is between
        assert [
            started("Finished"),
            started("LoadingConfiguration", "Finished"),
            plain("BuildingStack:consumer", "Finished"),
            success("LoadingConfiguration"),
            success("Finished"),
        ] == story(recorder)

    def test_closed_early_with_a_failing_cleanup_still_ends_the_event(self, bus, recorder):
        """A generator whose cleanup raises when closed early still ends its event failed."""

        @alien_event(LOADING)
        def items():
            try:
                yield 1
            finally:
                raise ValueError("cleanup failed")

        with bus:
            iterator = items()
            next(iterator)
            with pytest.raises(ValueError, match="cleanup failed"):
                iterator.close()
        assert [Created, StateChanged] == [type(c) for c in recorder.changes]
        assert EventState.FAILED == recorder.changes[-1].new_state

    def test_is_still_a_generator_function(self):
        """A decorated generator function is still a generator function."""

        @alien_event(LOADING)
        def items():
            yield 1

        assert inspect.isgeneratorfunction(items)

    def test_stacked_decorators_nest_around_a_generator(self, bus, recorder):
        """Two ``@alien_event`` on one generator nest, both lasting until it finishes."""

        @alien_event(AlienEvent.Finished())
        @alien_event(LOADING)
        def items():
            child("body")
            yield 1

        with bus:
            assert [1] == list(items())
        assert [
            started("Finished"),
            started("LoadingConfiguration", "Finished"),
            plain("BuildingStack:body", "LoadingConfiguration"),
            success("LoadingConfiguration"),
            success("Finished"),
        ] == story(recorder)


class TestAsyncGenerator:
    def test_scope_lasts_until_the_generator_finishes(self, bus, recorder):
        """The event starts at the first step, parents the body, and ends after the last item."""

        @alien_event(LOADING)
        async def items():
            yield 1
            await AlienEvent.BuildingStack(stack="between").aemit()
            yield 2

        async def main():
            async with bus:
                generator = items()
                before = len(recorder.changes)
                seen = [(item, len(recorder.changes)) async for item in generator]
                return before, seen

        assert (0, [(1, 1), (2, 2)]) == asyncio.run(main())
        assert [
            started("LoadingConfiguration"),
            plain("BuildingStack:between", "LoadingConfiguration"),
            success("LoadingConfiguration"),
        ] == story(recorder)

    def test_sent_values_reach_the_body(self, bus, recorder):
        """Values sent with ``asend`` reach the wrapped async generator."""
        received = []

        @alien_event(LOADING)
        async def echo():
            while True:
                received.append((yield len(received)))

        async def main():
            async with bus:
                generator = echo()
                await anext(generator)
                await generator.asend("a")
                await generator.asend("b")
                await generator.aclose()

        asyncio.run(main())
        assert ["a", "b"] == received

    def test_closed_early_ends_failed_with_cancelled(self, bus, recorder):
        """An async generator closed before it finishes ends failed with ``CANCELLED``."""
        cleaned = []

        @alien_event(LOADING)
        async def items():
            try:
                yield 1
                yield 2
            finally:
                cleaned.append(current_event().id)

        async def main():
            async with bus:
                generator = items()
                await anext(generator)
                await generator.aclose()

        asyncio.run(main())
        assert [started("LoadingConfiguration"), failed("LoadingConfiguration", "CANCELLED")] == (
            story(recorder)
        )
        assert [recorder.changes[0].id] == cleaned

    def test_exception_in_the_body_fails_the_event(self, bus, recorder):
        """An exception raised by the body fails the event and propagates."""

        @alien_event(LOADING)
        async def items():
            yield 1
            raise ValueError("bad item")

        async def main():
            async with bus:
                return [item async for item in items()]

        with pytest.raises(ValueError, match="bad item"):
            asyncio.run(main())
        assert failed("LoadingConfiguration", "VALUE_ERROR") == story(recorder)[-1]

    def test_thrown_exception_can_be_handled_by_the_body(self, bus, recorder):
        """An exception thrown in with ``athrow`` reaches the body, which may handle it."""

        @alien_event(LOADING)
        async def items():
            try:
                yield 1
            except KeyError:
                yield "handled"

        async def main():
            async with bus:
                generator = items()
                await anext(generator)
                result = await generator.athrow(KeyError("k"))
                with pytest.raises(StopAsyncIteration):
                    await anext(generator)
                return result

        assert "handled" == asyncio.run(main())
        assert success("LoadingConfiguration") == story(recorder)[-1]

    def test_parent_context_is_set_only_while_the_body_runs(self, bus, recorder):
        """Between items the consumer sees no scope, while the body sees the generator's event."""
        inside = []

        @alien_event(LOADING)
        async def items():
            inside.append(current_event())
            yield 1
            inside.append(current_event())
            yield 2

        async def main():
            async with bus:
                outside = []
                async for _ in items():
                    outside.append(current_event())
                    await AlienEvent.BuildingStack(stack="consumer").aemit()
                return outside

        outside = asyncio.run(main())
        assert [recorder.changes[0].id] * 2 == [h.id for h in inside]
        assert [EventHandle.noop()] * 2 == outside
        assert [
            started("LoadingConfiguration"),
            plain("BuildingStack:consumer", None),
            plain("BuildingStack:consumer", None),
            success("LoadingConfiguration"),
        ] == story(recorder)

    def test_closed_early_with_a_failing_cleanup_still_ends_the_event(self, bus, recorder):
        """An async generator whose cleanup raises when closed early still ends its event failed."""

        @alien_event(LOADING)
        async def items():
            try:
                yield 1
            finally:
                raise ValueError("cleanup failed")

        async def main():
            async with bus:
                generator = items()
                await anext(generator)
                with pytest.raises(ValueError, match="cleanup failed"):
                    await generator.aclose()

        asyncio.run(main())
        assert [Created, StateChanged] == [type(c) for c in recorder.changes]
        assert EventState.FAILED == recorder.changes[-1].new_state

    def test_is_still_an_async_generator_function(self):
        """A decorated async generator function is still an async generator function."""

        @alien_event(LOADING)
        async def items():
            yield 1

        assert inspect.isasyncgenfunction(items)


def sync_function(path: str, *, strict: bool = True) -> int:
    """Load a file."""
    return len(path)


async def async_function(path: str) -> int:
    """Load a file, asynchronously."""
    return len(path)


def generator_function(path: str):
    """Yield the lines of a file."""
    yield path


async def async_generator_function(path: str):
    """Yield the lines of a file, asynchronously."""
    yield path


class TestWraps:
    @pytest.mark.parametrize(
        "fn",
        [sync_function, async_function, generator_function, async_generator_function],
        ids=["sync", "async", "generator", "async-generator"],
    )
    def test_metadata_is_kept(self, fn):
        """The wrapper keeps the function's name, qualname, module, doc, signature and ``__wrapped__``."""
        wrapped = alien_event(LOADING)(fn)
        assert (fn.__name__, fn.__qualname__, fn.__module__, fn.__doc__) == (
            wrapped.__name__,
            wrapped.__qualname__,
            wrapped.__module__,
            wrapped.__doc__,
        )
        assert fn is wrapped.__wrapped__
        assert inspect.signature(fn) == inspect.signature(wrapped)

    def test_wraps_result_matches_functools(self):
        """The wrapper carries every attribute ``functools.wraps`` copies, plus the function's dict."""
        sync_function.marker = "kept"  # type: ignore[attr-defined]
        try:
            wrapped = alien_event(LOADING)(sync_function)
            for name in functools.WRAPPER_ASSIGNMENTS:
                assert getattr(sync_function, name) == getattr(wrapped, name)
            assert "kept" == wrapped.marker
        finally:
            del sync_function.marker  # type: ignore[attr-defined]

    def test_result_is_the_functions(self):
        """The decorated function returns what the function returns, with or without a bus."""
        assert 4 == alien_event(LOADING)(sync_function)("a.md")
        assert 4 == asyncio.run(alien_event(LOADING)(async_function)("a.md"))
        assert ["a.md"] == list(alien_event(LOADING)(generator_function)("a.md"))

        async def collect():
            return [x async for x in alien_event(LOADING)(async_generator_function)("a.md")]

        assert ["a.md"] == asyncio.run(collect())


class TestCurrentEvent:
    def test_outside_any_scope_is_the_noop_handle(self):
        """Outside every scope ``current_event()`` is the shared no-op handle."""
        assert EventHandle.noop() is current_event()

    def test_restored_after_the_scope_ends_with_an_error(self, bus):
        """After a decorated function raised, ``current_event()`` is back to the caller's."""

        @alien_event(LOADING)
        def load():
            raise ValueError

        with bus, AlienEvent.Finished().in_scope() as outer:
            with pytest.raises(ValueError):
                load()
            after = current_event()
        assert outer is after
        assert EventHandle.noop() is current_event()
