"""
``@alien_event``: run a function (sync, async, generator, async generator) inside an event's scope.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, TypeVar, cast

from alien_events_api._event import Event
from alien_events_api._scope import EventScope

F = TypeVar("F", bound=Callable[..., Any])

EventFactory = Callable[..., Event]


def _event_builder(
    event_or_factory: Event | EventFactory, fn: Callable[..., Any]
) -> Callable[[tuple[Any, ...], dict[str, Any]], Event]:
    """Return how to get the event for one call of ``fn``, checking the factory's names now."""
    if isinstance(event_or_factory, Event):
        event = event_or_factory
        return lambda _args, _kwargs: event
    factory = event_or_factory
    signature = inspect.signature(fn)
    factory_params = inspect.signature(factory).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in factory_params.values())
    positional = [
        name for name, p in factory_params.items() if p.kind is inspect.Parameter.POSITIONAL_ONLY
    ]
    wanted = [
        name
        for name, p in factory_params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    missing = [
        name
        for name in positional + wanted
        if name not in signature.parameters
        and factory_params[name].default is inspect.Parameter.empty
    ]
    if missing:
        msg = (
            f"@alien_event factory for {fn.__qualname__} asks for {missing}, which "
            f"{fn.__qualname__}{signature} does not take; name the factory's parameters after "
            "the function's"
        )
        raise TypeError(msg)

    def build(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Event:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        chosen = dict(values) if takes_all else {n: values[n] for n in wanted if n in values}
        # Positional-only parameters cannot be skipped: one the function lacks (it has a
        # default, else the factory was refused above) gets that default, so later ones land.
        leading = []
        for name in positional:
            leading.append(values[name] if name in values else factory_params[name].default)
            chosen.pop(name, None)
        made = factory(*leading, **chosen)
        if not isinstance(made, Event):
            msg = (
                f"@alien_event factory for {fn.__qualname__} returned "
                f"{type(made).__name__}, not an event"
            )
            raise TypeError(msg)
        return made

    return build


def _drive(gen: Generator[Any, Any, Any], scope: EventScope) -> Generator[Any, Any, Any]:
    """Run ``gen`` one step at a time with the scope's event as parent, only while it runs."""
    handle = scope._start()
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            scope._enter_parent(handle)
            try:
                if to_throw is not None:
                    exc, to_throw = to_throw, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(to_send)
            finally:
                scope._exit_parent()
            try:
                to_send = yield item
            except GeneratorExit:
                raise
            except BaseException as exc:  # noqa: BLE001  (handed to the wrapped generator)
                to_throw = exc
    except StopIteration as stop:
        scope._finish(None)
        return stop.value
    except GeneratorExit as closed:
        ended: BaseException = closed
        try:
            scope._enter_parent(handle)
            try:
                gen.close()
            finally:
                scope._exit_parent()
        except BaseException as exc:  # the generator's own cleanup failed: that ends it
            ended = exc
            raise
        finally:
            scope._finish(ended)
        raise
    except BaseException as exc:
        scope._finish(exc)
        raise


def _async_generator_wrapper(
    fn: Callable[..., AsyncGenerator[Any, Any]],
    build: Callable[[tuple[Any, ...], dict[str, Any]], Event],
) -> Callable[..., AsyncGenerator[Any, Any]]:
    """Return an async generator function running ``fn``'s generators inside the event's scope."""

    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        scope = EventScope(build(args, kwargs))
        agen = fn(*args, **kwargs)
        handle = await scope._astart()
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                scope._enter_parent(handle)
                try:
                    if to_throw is not None:
                        exc, to_throw = to_throw, None
                        item = await agen.athrow(exc)
                    else:
                        item = await agen.asend(to_send)
                finally:
                    scope._exit_parent()
                try:
                    to_send = yield item
                except GeneratorExit:
                    raise
                except BaseException as exc:  # noqa: BLE001  (handed to the wrapped generator)
                    to_throw = exc
        except StopAsyncIteration:
            await scope._afinish(None)
        except GeneratorExit as closed:
            ended: BaseException = closed
            try:
                scope._enter_parent(handle)
                try:
                    await agen.aclose()
                finally:
                    scope._exit_parent()
            except BaseException as exc:  # the generator's own cleanup failed: that ends it
                ended = exc
                raise
            finally:
                await scope._afinish(ended)
            raise
        except BaseException as exc:
            await scope._afinish(exc)
            raise

    return wrapper


def alien_event(event_or_factory: Event | EventFactory) -> Callable[[F], F]:
    """
    Run the decorated function inside an event's scope, like Rust's ``#[alien_event]``.

    Give an event, or a factory called with the function's own arguments matched by name
    (``@alien_event(lambda stack_id: AlienEvent.BuildingStack(stack=f"stack-{stack_id}"))``).
    The event is started at each call (at the first step, for generators), everything emitted
    inside becomes its child, and it ends as success, or failed if the function raises.
    ``current_event()`` returns its handle inside the body.
    """
    if not isinstance(event_or_factory, Event) and not callable(event_or_factory):
        msg = (
            "@alien_event takes an event or a factory that returns one, "
            f"got {type(event_or_factory).__name__}"
        )
        raise TypeError(msg)

    def decorate(fn: F) -> F:
        build = _event_builder(event_or_factory, fn)
        wrapper: Callable[..., Any]
        if inspect.isasyncgenfunction(fn):
            wrapper = _async_generator_wrapper(fn, build)

        elif inspect.iscoroutinefunction(fn):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                async with EventScope(build(args, kwargs)):
                    return await fn(*args, **kwargs)

        elif inspect.isgeneratorfunction(fn):

            def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                # A generator function itself (so decorators stack): starts at the first step.
                return (yield from _drive(fn(*args, **kwargs), EventScope(build(args, kwargs))))

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with EventScope(build(args, kwargs)):
                    return fn(*args, **kwargs)

        return cast("F", functools.wraps(fn)(wrapper))

    return decorate
