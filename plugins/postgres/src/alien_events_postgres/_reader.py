"""
Reading a table back: ``load_tree`` folds it into an ``EventTree``, ``follow`` streams it live.
"""

from __future__ import annotations

import contextlib
import json
import typing
from typing import Any

import psycopg
from psycopg import sql

from alien_events_postgres._links import READER_NAME, connect_kwargs
from alien_events_postgres._rows import row_changes, rows_changes, select
from alien_events_postgres._schema import (
    CHANNEL_LIMIT,
    TABLE_LIMIT,
    check_identifier,
    schema_version,
)
from alien_events_sdk import EventTree, from_dict

if typing.TYPE_CHECKING:
    from collections.abc import Iterator

    from alien_events_api import EventChange

Source = str | psycopg.Connection[Any]


@contextlib.contextmanager
def _connected(source: Source) -> Iterator[psycopg.Connection[Any]]:
    """A connection: the one given (left open), or a new one from a DSN (closed after)."""
    if isinstance(source, psycopg.Connection):
        yield source
        return
    with psycopg.Connection.connect(source, **connect_kwargs(source, READER_NAME)) as connection:
        yield connection


def _rows(
    connection: psycopg.Connection[Any], table: str, root_id: str | None
) -> list[tuple[Any, ...]]:
    """The table's rows (those under ``root_id`` if given); none if the table does not exist."""
    if schema_version(connection, table) == 0:
        return []
    with connection.transaction():
        if root_id is None:
            return connection.execute(select(table)).fetchall()
        return connection.execute(select(table, by_root=True), (root_id,)).fetchall()


def load_changes(
    dsn: Source, root_id: str | None = None, *, table: str = "alien_events"
) -> list[EventChange]:
    """Return the changes that rebuild the stored events (only ``root_id``'s tree if given)."""
    check_identifier("table", table, TABLE_LIMIT)
    with _connected(dsn) as connection:
        return rows_changes(_rows(connection, table, root_id))


def load_tree(dsn: Source, root_id: str | None = None, *, table: str = "alien_events") -> EventTree:
    """
    Return the stored events as an ``EventTree`` (only ``root_id``'s tree if given).

    ``dsn`` is a connection string or an open ``psycopg.Connection`` (left open). A table
    never written to gives an empty tree.
    """
    return EventTree(load_changes(dsn, root_id, table=table))


def follow(
    dsn: str,
    root_id: str | None = None,
    *,
    table: str = "alien_events",
    channel: str = "alien_events",
    idle_timeout: float | None = None,
) -> Iterator[EventChange]:
    """
    Yield the stored events' changes, then every change as it commits (``LISTEN``/``NOTIFY``).

    It listens first, then yields the changes that rebuild the rows already there, then each
    notified change; a change too big for a notification is read from its row. With
    ``root_id``, only that root's tree (and events that join it later, when a late parent
    links them in). A change may come twice (stored and notified at the same moment): fold
    them into an ``EventTree``, which ignores duplicates. Stops after ``idle_timeout``
    seconds without news, if given; closing the generator closes its connection.
    """
    check_identifier("table", table, TABLE_LIMIT)
    check_identifier("channel", channel, CHANNEL_LIMIT)
    connection = psycopg.Connection.connect(dsn, **connect_kwargs(dsn, READER_NAME))
    try:
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        rows = _rows(connection, table, root_id)
        seen = {row[0] for row in rows}
        yield from rows_changes(rows)
        while True:
            notices = list(connection.notifies(timeout=idle_timeout, stop_after=1))
            if not notices:
                if idle_timeout is not None:
                    return
                continue
            for notice in notices:
                yield from _noticed(connection, table, root_id, notice.payload, seen)
    finally:
        connection.close()


def _noticed(
    connection: psycopg.Connection[Any],
    table: str,
    root_id: str | None,
    payload: str,
    seen: set[str],
) -> Iterator[EventChange]:
    """The changes one notification stands for (none if it is outside the followed tree)."""
    notice: dict[str, Any] = json.loads(payload)
    if root_id is not None and notice.get("root") != root_id:
        return
    event_id = notice["id"]
    if "change" in notice:
        yield from_dict(notice["change"])
    else:  # too big to notify: read the row as it is now
        for row in connection.execute(select(table, by_id=True), (event_id,)).fetchall():
            yield from row_changes(row)
    if root_id is None:
        return
    seen.add(event_id)
    if notice.get("adopted"):
        # A late parent linked stored descendants into the tree: send those not seen yet.
        rows = _rows(connection, table, root_id)
        for row in rows:
            if row[0] not in seen:
                seen.add(row[0])
                yield from row_changes(row)
