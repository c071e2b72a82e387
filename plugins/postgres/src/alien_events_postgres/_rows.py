"""
The read side: rows turned back into changes that fold into the same ``EventNode``.

A row becomes a ``Created`` (if one was stored) plus an ``Updated`` carrying the data and a
``StateChanged`` carrying the state (the latter at the row's ``updated_at``), each at the
version the row holds for that field, so a tree fed these changes and then newer ones ends as
a tree fed everything (short of a newer change with the very same version as a stored one
and a tie the row cannot replay: the same time, which the tree orders by the original
change's text, or data ranked unlike the state, as a ``Created`` ranks its data by its own
``CANCELLED`` error and the rebuilt one carries the state's error). Where the ``Created``
already carries a field at that version and time, the other change is left out. A field last
set by a change without ``seq`` (arrival order) comes back as such a change, preceded by one
at the row's highest version so the node's ``version`` is the same; a row with data but no
state yet gets one more ``Updated`` at the lowest version to carry its ``updated_at``.
"""

from __future__ import annotations

import datetime as dt
import typing
from typing import Any

from psycopg import sql

from alien_events_api import (
    AlienError,
    Created,
    Event,
    EventChange,
    EventState,
    StateChanged,
    Updated,
)
from alien_events_sdk import from_dict

COLUMNS = (
    "id",
    "parent_id",
    "data",
    "state",
    "error",
    "created_at",
    "updated_at",
    "epoch",
    "seq",
    "data_epoch",
    "data_seq",
    "data_at",
    "state_epoch",
    "state_seq",
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
Version = tuple[int, int]


def select(table: str, *, by_root: bool = False, by_id: bool = False) -> sql.Composed:
    """The query for rows of ``table``: all, those under a root, or one by id."""
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in COLUMNS)
    where = sql.SQL("")
    if by_root:
        where = sql.SQL(" WHERE root_id = %s")
    elif by_id:
        where = sql.SQL(" WHERE id = %s")
    return sql.SQL("SELECT {} FROM {}{} ORDER BY created_at NULLS LAST, id").format(
        columns, sql.Identifier(table), where
    )


def _micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _version(epoch: int | None, seq: int | None) -> Version | None:
    return None if epoch is None or seq is None else (int(epoch), int(seq))


def row_changes(row: tuple[Any, ...]) -> list[EventChange]:
    """Return the changes that rebuild one row's event (see the module docstring)."""
    values = dict(zip(COLUMNS, row, strict=True))
    event_id: str = values["id"]
    top = _version(values["epoch"], values["seq"])
    data_version = _version(values["data_epoch"], values["data_seq"])
    state_version = _version(values["state_epoch"], values["state_seq"])
    event = None if values["data"] is None else from_dict(values["data"], Event)
    state = None if values["state"] is None else EventState(values["state"])
    error = None if values["error"] is None else from_dict(values["error"], AlienError)
    updated = _micros(values["updated_at"])
    changes: list[EventChange] = []
    created: tuple[int, Version] | None = None  # the rebuilt Created's time and version
    if values["created_at"] is not None and event is not None and state is not None:
        known = [v for v in (data_version, state_version) if v is not None]
        epoch, seq = min(known) if known else (top or (0, 0))
        created = (_micros(values["created_at"]), (epoch, seq))
        changes.append(
            Created.unchecked(
                event_id, values["parent_id"], created[0], event, state, error, seq, epoch
            )
        )
    if event is not None:
        at = _micros(values["data_at"])
        if created is None or (at, data_version) != created:  # else the Created says it all
            changes.extend(
                Updated.unchecked(event_id, at, event, *_seq_epoch(version))
                for version in _versions(data_version, top)
            )
        if state is None and updated > at:
            # A later change lost to the data's version but moved updated_at: one that loses
            # too (the lowest version) carries that time; no StateChanged will.
            changes.append(Updated.unchecked(event_id, updated, event, 0, 0))
    if state is not None and (created is None or (updated, state_version) != created):
        changes.extend(
            StateChanged.unchecked(event_id, updated, state, error, *_seq_epoch(version))
            for version in _versions(state_version, top)
        )
    return changes


def _versions(field: Version | None, top: Version | None) -> list[Version | None]:
    """The versions to send a field at: its own, or (arrival order) the row's top, then none."""
    if field is not None:
        return [field]
    return [top, None] if top is not None else [None]


def _seq_epoch(version: Version | None) -> tuple[int | None, int]:
    """The ``seq`` and ``epoch`` a change at ``version`` carries (``None``: arrival order)."""
    return (None, 0) if version is None else (version[1], version[0])


def rows_changes(rows: typing.Iterable[tuple[Any, ...]]) -> list[EventChange]:
    """Return the changes of many rows, row after row."""
    return [change for row in rows for change in row_changes(row)]
