"""
Where ``alien-events view`` reads changes from: a JSON-lines file, or a PostgreSQL store.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from alien_events_api import EventChange
from alien_events_jsonl import BadLineError, read_changes

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable


class UsageError(Exception):
    """
    A command was given arguments that cannot work together, or a source it cannot use (exit 2).
    """


class SourceError(Exception):
    """
    Reading the source failed part way (a lost database connection): the view fails (exit 1).
    """


@typing.final
@attrs.frozen
class ViewSource:
    """The changes to show, and how to name where they came from in messages."""

    changes: Iterator[EventChange]
    label: str


def file_source(
    path: pathlib.Path,
    *,
    follow: bool,
    strict: bool,
    idle_timeout: float | None,
    on_error: Callable[[BadLineError], None],
) -> ViewSource:
    """The changes of a JSON-lines file (``UsageError`` if it cannot be read)."""
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a JSON-lines file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror}") from None
    changes = read_changes(
        path, follow=follow, strict=strict, on_error=on_error, idle_timeout=idle_timeout
    )
    return ViewSource(changes, str(path))


def postgres_source(
    dsn: str, *, root: str | None, follow: bool, idle_timeout: float | None
) -> ViewSource:
    """The changes stored in PostgreSQL (``UsageError`` if the plugin or the server is missing)."""
    try:
        import psycopg  # noqa: PLC0415

        import alien_events_postgres  # noqa: PLC0415  (an optional dependency)
    except ImportError:
        raise UsageError(
            "--postgres needs the PostgreSQL plugin: pip install alien-events-postgres"
        ) from None
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except (psycopg.Error, ValueError) as exc:  # ValueError: a malformed connection string
        raise UsageError(f"--postgres: cannot connect: {_first_line(exc)}") from None
    if follow:
        changes = alien_events_postgres.follow(dsn, root, idle_timeout=idle_timeout)
    else:
        changes = iter(alien_events_postgres.load_changes(dsn, root))
    label = "the PostgreSQL store" + ("" if root is None else f" (root {root})")
    return ViewSource(_reported(changes, psycopg.Error), label)


def _reported(changes: Iterator[EventChange], error: type[Exception]) -> Iterator[EventChange]:
    """Pass the changes on, turning the database's errors into ``SourceError``."""
    try:
        yield from changes
    except error as exc:
        raise SourceError(f"reading the PostgreSQL store failed: {_first_line(exc)}") from exc
    finally:
        close: Any = getattr(changes, "close", None)
        if callable(close):
            close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
