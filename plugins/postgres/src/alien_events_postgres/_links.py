"""
Where a handler gets its connection: its own (from a DSN), one given to it, or a pool's.

Each link hands out a connection for one unit of work (``connection()``), forgets a broken
one (``reset()``) and says whether it can still give a working connection (``usable()``).
"""

from __future__ import annotations

import contextlib
import typing
from typing import Any, Protocol, TypeVar

import attrs
import psycopg
from psycopg.conninfo import conninfo_to_dict

from alien_events_postgres._errors import PostgresEventsError

if typing.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

APPLICATION_NAME = "alien-events-postgres"
"""The ``application_name`` of the handlers' own connections (unless the DSN sets one)."""
READER_NAME = "alien-events-postgres-reader"
"""The ``application_name`` of ``load_tree``'s and ``follow``'s connections."""

L = TypeVar("L")


def connect_kwargs(dsn: str, name: str = APPLICATION_NAME) -> dict[str, Any]:
    """Check the DSN's syntax; return the connect arguments (autocommit, an application name)."""
    try:
        given = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        msg = f"not a PostgreSQL connection string: {exc}"
        raise ValueError(msg) from None
    kwargs: dict[str, Any] = {"autocommit": True}
    if "application_name" not in given:
        kwargs["application_name"] = name
    return kwargs


def choose_link(
    dsn: str | None,
    connection: Any,
    pool: Any,
    kinds: tuple[Callable[[str], L], Callable[[Any], L], Callable[[Any], L]],
) -> L:
    """
    The link for exactly one of ``dsn``, ``connection`` and ``pool`` (anything else is refused).

    ``kinds`` are the handler's own, given and pool link classes, in that order.
    """
    one_source(dsn, connection, pool)
    own, given, pooled = kinds
    if dsn:
        return own(dsn)
    return given(connection) if connection is not None else pooled(pool)


@attrs.frozen
class Retries:
    """
    How a handler retries a connection error, reconnecting each time.

    ``count`` retries at most, the first after ``backoff`` seconds, each next after twice the
    pause before it.
    """

    count: int
    backoff: float

    @classmethod
    def checked(cls, count: object, backoff: object) -> Retries:
        """Refuse a negative or non-numeric ``retries`` or ``backoff``."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            msg = f"retries must be an int >= 0, got {count!r}"
            raise ValueError(msg)
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 0:
            msg = f"backoff must be a number of seconds >= 0, got {backoff!r}"
            raise ValueError(msg)
        return cls(count, float(backoff))

    def allow(self, error: psycopg.Error, attempts: int) -> bool:
        """Whether the error is a connection error and attempts remain."""
        return isinstance(error, psycopg.OperationalError) and attempts <= self.count

    def pause(self, attempts: int) -> float:
        """The seconds to wait before attempt ``attempts + 1``."""
        return self.backoff * 2.0 ** (attempts - 1)


def one_source(dsn: object, connection: object, pool: object) -> None:
    """Refuse anything but exactly one of ``dsn``, ``connection`` and ``pool``."""
    present = (
        ("dsn", bool(dsn)),
        ("connection", connection is not None),
        ("pool", pool is not None),
    )
    given = [name for name, there in present if there]
    if len(given) != 1:
        msg = (
            "give exactly one of dsn (a connection string), connection or pool, "
            f"got {', '.join(given) or 'none'}"
        )
        raise TypeError(msg)


def closed_error() -> PostgresEventsError:
    """The error for a change that reaches a closed handler."""
    return PostgresEventsError("the PostgreSQL events handler is closed")


class Link(Protocol):
    """A source of connections for a sync handler."""

    def connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """Lend a connection for one unit of work."""

    def usable(self) -> bool:
        """Whether the link can still give a working connection after an error."""

    def reset(self) -> None:
        """Drop the current connection after a connection error."""

    def close(self) -> None:
        """Close what the link owns."""


@typing.final
class OwnLink:
    """One connection of the handler's own, opened when first needed and reopened after loss."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._kwargs = connect_kwargs(dsn)
        self._connection: psycopg.Connection[Any] | None = None

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend the connection, opening it first if there is none."""
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.Connection.connect(self._dsn, **self._kwargs)
        yield self._connection

    def usable(self) -> bool:
        """A new connection can always be tried."""
        return True

    def reset(self) -> None:
        """Close and forget the connection; the next use opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def close(self) -> None:
        """Close the connection."""
        self.reset()


@typing.final
class GivenLink:
    """The caller's connection: used as it is, never closed, never replaced."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Lend the caller's connection."""
        yield self._connection

    def usable(self) -> bool:
        """Usable while the connection is not broken or closed."""
        return not (self._connection.broken or self._connection.closed)

    def reset(self) -> None:
        """Nothing to do: the connection is the caller's."""

    def close(self) -> None:
        """Nothing to do: the connection is the caller's."""


@typing.final
class PoolLink:
    """A pool's connections (anything with a ``connection()`` context manager, as psycopg_pool)."""

    def __init__(self, pool: Any) -> None:
        if not callable(getattr(pool, "connection", None)):
            msg = f"pool must have a connection() context manager, got {type(pool).__name__}"
            raise TypeError(msg)
        self._pool = pool

    def connection(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        """Borrow a connection from the pool (it takes it back, or discards it if broken)."""
        return typing.cast(
            "contextlib.AbstractContextManager[psycopg.Connection[Any]]", self._pool.connection()
        )

    def usable(self) -> bool:
        """The pool gives a new connection for a broken one."""
        return True

    def reset(self) -> None:
        """Nothing to do: the pool checks the connections it takes back."""

    def close(self) -> None:
        """Nothing to do: the pool is the caller's."""


class AsyncLink(Protocol):
    """A source of connections for an async handler."""

    def connection(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """Lend a connection for one unit of work."""

    def usable(self) -> bool:
        """Whether the link can still give a working connection after an error."""

    async def reset(self) -> None:
        """Drop the current connection after a connection error."""

    async def close(self) -> None:
        """Close what the link owns."""


@typing.final
class AsyncOwnLink:
    """Async twin of ``OwnLink``."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._kwargs = connect_kwargs(dsn)
        self._connection: psycopg.AsyncConnection[Any] | None = None

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Lend the connection, opening it first if there is none."""
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(self._dsn, **self._kwargs)
        yield self._connection

    def usable(self) -> bool:
        """A new connection can always be tried."""
        return True

    async def reset(self) -> None:
        """Close and forget the connection; the next use opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        """Close the connection."""
        await self.reset()


@typing.final
class AsyncGivenLink:
    """Async twin of ``GivenLink``."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._connection = connection

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Lend the caller's connection."""
        yield self._connection

    def usable(self) -> bool:
        """Usable while the connection is not broken or closed."""
        return not (self._connection.broken or self._connection.closed)

    async def reset(self) -> None:
        """Nothing to do: the connection is the caller's."""

    async def close(self) -> None:
        """Nothing to do: the connection is the caller's."""


@typing.final
class AsyncPoolLink:
    """Async twin of ``PoolLink`` (``psycopg_pool.AsyncConnectionPool`` or alike)."""

    def __init__(self, pool: Any) -> None:
        if not callable(getattr(pool, "connection", None)):
            msg = f"pool must have a connection() async context manager, got {type(pool).__name__}"
            raise TypeError(msg)
        self._pool = pool

    def connection(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """Borrow a connection from the pool."""
        return typing.cast(
            "contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]",
            self._pool.connection(),
        )

    def usable(self) -> bool:
        """The pool gives a new connection for a broken one."""
        return True

    async def reset(self) -> None:
        """Nothing to do: the pool checks the connections it takes back."""

    async def close(self) -> None:
        """Nothing to do: the pool is the caller's."""


LINKS: tuple[Callable[[str], Link], Callable[[Any], Link], Callable[[Any], Link]] = (
    OwnLink,
    GivenLink,
    PoolLink,
)
"""The sync handler's kinds of link, in ``choose_link``'s order: own, given, pool."""
ASYNC_LINKS: tuple[
    Callable[[str], AsyncLink], Callable[[Any], AsyncLink], Callable[[Any], AsyncLink]
] = (AsyncOwnLink, AsyncGivenLink, AsyncPoolLink)
"""The async handler's kinds of link, in the same order."""
