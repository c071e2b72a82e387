"""
Runs database work written once as a generator of steps, on a sync or an async connection.

A step is a ``Query`` (its rows are sent back into the generator), ``BEGIN`` or ``COMMIT``.
An error, from the database or from the generator, rolls back every transaction it opened.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Generator
from typing import Any, TypeVar

import attrs
from psycopg import sql

if typing.TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
Rows = list[tuple[Any, ...]]


@typing.final
@attrs.frozen
class Query:
    """One statement and its parameters."""

    statement: sql.SQL | sql.Composed
    params: tuple[Any, ...] | dict[str, Any] | None = None


@typing.final
class _Marker:
    """A transaction boundary."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


BEGIN = _Marker("BEGIN")
COMMIT = _Marker("COMMIT")
Step = Query | _Marker
Steps = Generator[Step, Rows, T]


def run_steps(connection: psycopg.Connection[Any], steps: Steps[T]) -> T:
    """Run the steps on a sync connection and return the generator's result."""
    open_transactions: list[contextlib.AbstractContextManager[Any]] = []
    try:
        step = next(steps)
        while True:
            rows: Rows = []
            if step is BEGIN:
                transaction = connection.transaction()
                transaction.__enter__()
                open_transactions.append(transaction)
            elif step is COMMIT:
                open_transactions.pop().__exit__(None, None, None)
            else:
                step = typing.cast("Query", step)
                cursor = connection.execute(step.statement, step.params)
                rows = cursor.fetchall() if cursor.description is not None else []
            step = steps.send(rows)
    except StopIteration as stop:
        return typing.cast("T", stop.value)
    except BaseException as exc:
        while open_transactions:
            with contextlib.suppress(Exception):  # the first error is the one to report
                open_transactions.pop().__exit__(type(exc), exc, exc.__traceback__)
        raise
    finally:
        steps.close()


async def arun_steps(connection: psycopg.AsyncConnection[Any], steps: Steps[T]) -> T:
    """Run the steps on an async connection and return the generator's result."""
    open_transactions: list[contextlib.AbstractAsyncContextManager[Any]] = []
    try:
        step = next(steps)
        while True:
            rows: Rows = []
            if step is BEGIN:
                transaction = connection.transaction()
                await transaction.__aenter__()
                open_transactions.append(transaction)
            elif step is COMMIT:
                await open_transactions.pop().__aexit__(None, None, None)
            else:
                step = typing.cast("Query", step)
                cursor = await connection.execute(step.statement, step.params)
                rows = await cursor.fetchall() if cursor.description is not None else []
            step = steps.send(rows)
    except StopIteration as stop:
        return typing.cast("T", stop.value)
    except BaseException as exc:
        while open_transactions:
            with contextlib.suppress(Exception):  # the first error is the one to report
                await open_transactions.pop().__aexit__(type(exc), exc, exc.__traceback__)
        raise
    finally:
        steps.close()
