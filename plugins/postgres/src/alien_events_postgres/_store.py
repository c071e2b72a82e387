"""
The write side: each change becomes one call of the table's upsert function (see ``_upsert``).

The function folds a change into its event's row exactly as ``EventTree`` folds it:

- fixed fields are filled once: the earliest ``created_at``, and of disagreeing parents the
  smallest id (``LEAST`` in byte order, as Python compares strings);
- data and state are versioned separately, each replaced only by a change of a higher
  ``(epoch, seq)`` (a ``Created`` counts for both); equal versions are ordered by the change's
  rank (0 for an ending with a ``CANCELLED`` error, an interruption, else 1; kept in
  ``data_rank``/``state_rank``), then its time, then its ``repr`` (kept in
  ``data_tie``/``state_tie``), so duplicates change nothing; a change without ``seq`` always
  replaces the field and is replaced only by another such change (arrival order), as in the
  tree;
- ``root_id`` is the row's own id for a root, its parent's ``root_id`` for a child, and NULL
  while unknown (parent not stored yet); when a ``Created`` gives a row a root, the same call
  hands it down to every stored descendant.

For a ``Created`` the function first takes a per-table advisory lock (the tree lock), so two
rows that must see each other's root (a parent and its child written at the same moment from
two processes) never miss each other. ``Updated`` and ``StateChanged`` never change the tree's
shape and take no lock.
"""

from __future__ import annotations

import typing
from typing import Any

import attrs

from alien_events_api import AlienError, Created, EventChange, StateChanged, Updated
from alien_events_postgres._schema import CHANNEL_LIMIT, TABLE_LIMIT, check_identifier
from alien_events_postgres._upsert import call
from alien_events_sdk import dumps

_NO_DATA = (None, None, None, None, None, None)
_NO_STATE = (None, None, None, None, None, None, None)


@typing.final
@attrs.frozen
class Write:
    """One change ready to write: the event id and the upsert function's arguments."""

    id: str
    params: tuple[Any, ...]


def rank(error: AlienError | None) -> int:
    """A change's rank at a tied version: 0 for a ``CANCELLED`` ending (it loses), else 1."""
    return 0 if error is not None and error.is_cancellation else 1


def _error_json(error: AlienError | None) -> str | None:
    return None if error is None else dumps(error)


def _values(change: EventChange) -> tuple[Any, ...]:
    """
    The row values a change brings, in ``_upsert.PARAMETERS`` order up to the channel.

    Its fixed fields, its time and version, then the data and the state with their versions
    (all NULL for the field it does not carry).
    """
    tie = repr(change)
    if isinstance(change, Created):
        seq = 0 if change.seq is None else change.seq  # a Created is version (epoch, 0) at least
        at, epoch, error = change.created_at, change.epoch, change.error
        level = rank(error)  # the tree ranks a Created's data by its error too
        return (
            change.id,
            change.parent_id,
            at,
            at,
            epoch,
            seq,
            *(dumps(change.event), epoch, seq, level, at, tie),
            *(change.state.value, _error_json(error), epoch, seq, level, at, tie),
        )
    when, number = change.updated_at, change.seq  # no seq: arrival order, no version
    head = (change.id, None, None, when, None if number is None else change.epoch, number)
    if isinstance(change, Updated):
        return (*head, dumps(change.event), change.epoch, number, 1, when, tie, *_NO_STATE)
    failure = change.error
    state = (change.new_state.value, _error_json(failure), change.epoch, number, rank(failure))
    return (*head, *_NO_DATA, *state, when, tie)


@typing.final
class Statements:
    """The write statement of one table and notification channel, composed once."""

    def __init__(self, table: str, channel: str) -> None:
        self.table = check_identifier("table", table, TABLE_LIMIT)
        self.channel = check_identifier("channel", channel, CHANNEL_LIMIT)
        self.upsert: bytes = call(table).as_bytes(None)  # rendered once: no per-call composing

    def prepare(self, change: EventChange) -> Write:
        """Turn a change into its write (the arguments of the upsert function)."""
        if not isinstance(change, Created | Updated | StateChanged):
            msg = f"expected a change (Created, Updated, StateChanged), got {type(change).__name__}"
            raise TypeError(msg)
        return Write(change.id, (*_values(change), self.channel, dumps(change)))
