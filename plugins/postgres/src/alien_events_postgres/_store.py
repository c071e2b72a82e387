"""
The write side: one idempotent, order-insensitive upsert per change, and its notification.

The upsert folds a change into its event's row exactly as ``EventTree`` folds it:

- fixed fields are filled once: the earliest ``created_at``, and of disagreeing parents the
  smallest id (``LEAST`` in byte order, as Python compares strings);
- data and state are versioned separately, each replaced only by a change of a higher
  ``(epoch, seq)`` (a ``Created`` counts for both); equal versions are ordered by the change's
  time, then its ``repr`` (kept in ``data_tie``/``state_tie``), so duplicates change nothing;
  a change without ``seq`` always replaces the field and is replaced only by another such
  change (arrival order), as in the tree;
- ``root_id`` is the row's own id for a root, its parent's ``root_id`` for a child, and NULL
  while unknown (parent not stored yet); when a ``Created`` gives a row a root, a recursive
  CTE in the same statement hands it down to every stored descendant.

``Created`` changes take a per-table advisory lock (``tree_lock``) in a statement of their own
first: two rows that must see each other's root (a parent and its child written at the same
moment from two processes) then never miss each other. ``Updated`` and ``StateChanged`` never
change the tree's shape and take no lock.
"""

from __future__ import annotations

import typing
from typing import Any

import attrs
from psycopg import sql

from alien_events_api import AlienError, Created, EventChange, StateChanged, Updated
from alien_events_postgres._schema import CHANNEL_LIMIT, TABLE_LIMIT, check_identifier
from alien_events_postgres._steps import Query
from alien_events_sdk import dumps

NOTIFY_LIMIT = 7900
"""Payloads above this many bytes carry only the ids; readers fetch the row (PostgreSQL: 8000)."""
TREE_LOCK_CLASS = 0x41455650  # "AEVP": the advisory lock space of events tables

_NEWER = """
    EXCLUDED.{f} IS NOT NULL AND (
        e.{f} IS NULL
        OR EXCLUDED.{f}_seq IS NULL
        OR (e.{f}_seq IS NOT NULL AND (
            (EXCLUDED.{f}_epoch, EXCLUDED.{f}_seq, EXCLUDED.{f}_at)
                > (e.{f}_epoch, e.{f}_seq, e.{f}_at)
            OR ((EXCLUDED.{f}_epoch, EXCLUDED.{f}_seq, EXCLUDED.{f}_at)
                    = (e.{f}_epoch, e.{f}_seq, e.{f}_at)
                AND EXCLUDED.{f}_tie COLLATE "C" > e.{f}_tie COLLATE "C"))))
"""


def _newer(field: str) -> str:
    """The condition under which the incoming change replaces ``field`` (data or state)."""
    return _NEWER.replace("{f}", field)


def _take(condition: str, *columns: str) -> str:
    return ",\n".join(
        f"{column} = CASE WHEN {condition} THEN EXCLUDED.{column} ELSE e.{column} END"
        for column in columns
    )


_PARENT = 'LEAST(e.parent_id COLLATE "C", EXCLUDED.parent_id COLLATE "C")'
_VERSION_NEWER = (
    "EXCLUDED.seq IS NOT NULL"
    " AND (e.seq IS NULL OR (EXCLUDED.epoch, EXCLUDED.seq) > (e.epoch, e.seq))"
)
_SET_VERSION = _take(_VERSION_NEWER, "epoch", "seq")
_SET_DATA = _take(_newer("data"), "data", "data_epoch", "data_seq", "data_at", "data_tie")
_SET_STATE = _take(
    _newer("state"), "state", "error", "state_epoch", "state_seq", "state_at", "state_tie"
)

_UPSERT = f"""
WITH RECURSIVE old AS (
    SELECT root_id FROM {{t}} WHERE id = %(id)s
), up AS (
    INSERT INTO {{t}} AS e (
        id, parent_id, root_id, data, state, error, created_at, updated_at, epoch, seq,
        data_epoch, data_seq, data_at, data_tie, state_epoch, state_seq, state_at, state_tie)
    VALUES (
        %(id)s, %(parent_id)s,
        CASE WHEN %(created_at)s::timestamptz IS NULL THEN NULL
             WHEN %(parent_id)s::text IS NULL THEN %(id)s::text
             ELSE (SELECT p.root_id FROM {{t}} p WHERE p.id = %(parent_id)s::text) END,
        %(data)s::jsonb, %(state)s, %(error)s::jsonb, %(created_at)s::timestamptz,
        %(at)s::timestamptz, %(epoch)s::bigint, %(seq)s::bigint,
        %(data_epoch)s::bigint, %(data_seq)s::bigint, %(data_at)s::timestamptz, %(data_tie)s,
        %(state_epoch)s::bigint, %(state_seq)s::bigint, %(state_at)s::timestamptz,
        %(state_tie)s)
    ON CONFLICT (id) DO UPDATE SET
        parent_id = {_PARENT},
        root_id = CASE
            WHEN e.created_at IS NULL AND EXCLUDED.created_at IS NULL THEN NULL
            WHEN e.created_at IS NOT NULL AND e.parent_id IS NOT DISTINCT FROM {_PARENT}
                THEN e.root_id
            WHEN {_PARENT} IS NULL THEN e.id
            ELSE (SELECT p.root_id FROM {{t}} p WHERE p.id = {_PARENT}) END,
        created_at = LEAST(e.created_at, EXCLUDED.created_at),
        updated_at = GREATEST(e.updated_at, EXCLUDED.updated_at),
        {_SET_VERSION},
        {_SET_DATA},
        {_SET_STATE}
    RETURNING e.id, e.root_id
), below (id, root) AS (
    SELECT c.id, up.root_id FROM up JOIN {{t}} c ON c.parent_id = up.id
    WHERE %(created_at)s::timestamptz IS NOT NULL
        AND up.root_id IS DISTINCT FROM (SELECT root_id FROM old)
        AND c.id <> up.id
    UNION
    SELECT c.id, below.root FROM below JOIN {{t}} c ON c.parent_id = below.id
    WHERE c.id <> %(id)s
), fixed AS (
    UPDATE {{t}} d SET root_id = below.root FROM below
    WHERE d.id = below.id AND d.root_id IS DISTINCT FROM below.root
    RETURNING d.id
), payload AS (
    SELECT up.id, up.root_id, (SELECT count(*) FROM fixed) AS adopted FROM up
)
SELECT root_id, adopted, pg_notify(
    {{channel}},
    CASE WHEN octet_length(full_text) <= {NOTIFY_LIMIT} THEN full_text ELSE short_text END)
FROM (
    SELECT root_id, adopted,
        json_build_object('id', id, 'root', root_id, 'adopted', adopted,
                          'change', %(wire)s::json)::text AS full_text,
        json_build_object('id', id, 'root', root_id, 'adopted', adopted)::text AS short_text
    FROM payload
) AS notice
"""  # noqa: S608  (built from constants; the names go in as sql.Identifier)


@typing.final
@attrs.frozen
class Write:
    """One change ready to write: the event id, whether it takes the tree lock, the parameters."""

    id: str
    locks_tree: bool
    params: dict[str, Any]


def _error_json(error: AlienError | None) -> str | None:
    return None if error is None else dumps(error)


def _versioned(field: str, stamp: dict[str, Any] | None, **values: Any) -> dict[str, Any]:
    """A field's values and its version columns (all NULL when the change does not carry it)."""
    for key in ("epoch", "seq", "at", "tie"):
        values[f"{field}_{key}"] = None if stamp is None else stamp[key]
    return values


def _fields(change: EventChange) -> dict[str, Any]:
    """The row values a change brings: its version, data and/or state, and its fixed fields."""
    if isinstance(change, Created):
        seq = 0 if change.seq is None else change.seq  # a Created is version (epoch, 0) at least
        at = change.created_at
        stamp = {"epoch": change.epoch, "seq": seq, "at": at, "tie": repr(change)}
        return {
            "parent_id": change.parent_id,
            "created_at": at,
            "at": at,
            "epoch": change.epoch,
            "seq": seq,
            **_versioned("data", stamp, data=dumps(change.event)),
            **_versioned("state", stamp, state=change.state.value, error=_error_json(change.error)),
        }
    stamp = {"epoch": change.epoch, "seq": change.seq, "at": change.updated_at, "tie": repr(change)}
    fields = {
        "parent_id": None,
        "created_at": None,
        "at": change.updated_at,
        "epoch": None if change.seq is None else change.epoch,  # no seq: arrival order
        "seq": change.seq,
    }
    if isinstance(change, Updated):
        return {
            **fields,
            **_versioned("data", stamp, data=dumps(change.event)),
            **_versioned("state", None, state=None, error=None),
        }
    return {
        **fields,
        **_versioned("data", None, data=None),
        **_versioned("state", stamp, state=change.new_state.value, error=_error_json(change.error)),
    }


@typing.final
class Statements:
    """The statements of one table and notification channel, composed once."""

    def __init__(self, table: str, channel: str) -> None:
        self.table = check_identifier("table", table, TABLE_LIMIT)
        self.channel = check_identifier("channel", channel, CHANNEL_LIMIT)
        self.upsert = sql.SQL(_UPSERT).format(t=sql.Identifier(table), channel=sql.Literal(channel))
        self.tree_lock = sql.SQL("SELECT pg_advisory_xact_lock(%s, hashtext(%s))")

    def prepare(self, change: EventChange) -> Write:
        """Turn a change into its write (the parameters of the upsert)."""
        if not isinstance(change, Created | Updated | StateChanged):
            msg = f"expected a change (Created, Updated, StateChanged), got {type(change).__name__}"
            raise TypeError(msg)
        params = {"id": change.id, "wire": dumps(change), **_fields(change)}
        return Write(change.id, isinstance(change, Created), params)

    def queries(self, write: Write) -> list[Query]:
        """The statements that apply one write, in order (the tree lock first for a Created)."""
        upsert = Query(self.upsert, write.params)
        if not write.locks_tree:
            return [upsert]
        return [Query(self.tree_lock, (TREE_LOCK_CLASS, self.table)), upsert]
