"""
The per-table PL/pgSQL function that folds one change into its event's row, and notifies.

One call, ``SELECT <table>_upsert_change(...)``, takes the tree lock (``Created`` only), upserts
the row as ``EventTree`` folds the change, hands a new root down to the stored descendants and
sends the notification. The function's plans stay cached in the session, and the short call
text keeps psycopg's parsed-query cache and the server's prepared statement in use. Migration
3 creates the function; a change to its text or signature needs a migration of its own that
creates it again (``create_function``), or stored tables keep the old one.
"""

from __future__ import annotations

from psycopg import sql

NOTIFY_LIMIT = 7900
"""Payloads above this many bytes carry only the ids; readers fetch the row (PostgreSQL: 8000)."""
TREE_LOCK_CLASS = 0x41455650  # "AEVP": the advisory lock space of events tables
FUNCTION_SUFFIX = "_upsert_change"
"""The function's name is the table's (at most 40 bytes) with this suffix: under PostgreSQL's 63."""

PARAMETERS = (
    ("p_id", "text"),
    ("p_parent_id", "text"),
    ("p_created_at", "timestamptz"),
    ("p_at", "timestamptz"),
    ("p_epoch", "bigint"),
    ("p_seq", "bigint"),
    ("p_data", "jsonb"),
    ("p_data_epoch", "bigint"),
    ("p_data_seq", "bigint"),
    ("p_data_rank", "smallint"),
    ("p_data_at", "timestamptz"),
    ("p_data_tie", "text"),
    ("p_state", "text"),
    ("p_error", "jsonb"),
    ("p_state_epoch", "bigint"),
    ("p_state_seq", "bigint"),
    ("p_state_rank", "smallint"),
    ("p_state_at", "timestamptz"),
    ("p_state_tie", "text"),
    ("p_channel", "text"),
    ("p_wire", "text"),
)
"""The function's parameters in order (``Statements.prepare`` gives the values in this order)."""

# A change replaces a field (data or state) when it carries the field and the field is empty,
# or either change is without seq (arrival order: the stored one is replaced only by such a
# change), or its (epoch, seq, rank, time, repr) is higher: equal changes change nothing. The
# rank is 0 for a CANCELLED ending (an interruption loses a tie), else 1; COALESCE covers a row
# a writer older than the rank left without one.
_NEWER = """
    EXCLUDED.{f} IS NOT NULL AND (
        e.{f} IS NULL
        OR EXCLUDED.{f}_seq IS NULL
        OR (e.{f}_seq IS NOT NULL AND
            (EXCLUDED.{f}_epoch, EXCLUDED.{f}_seq, EXCLUDED.{f}_rank, EXCLUDED.{f}_at,
                EXCLUDED.{f}_tie COLLATE "C")
            > (e.{f}_epoch, e.{f}_seq, COALESCE(e.{f}_rank, 1), e.{f}_at,
                e.{f}_tie COLLATE "C")))"""


def _take(field: str, *columns: str) -> str:
    """The SET items that take ``columns`` from the change when it replaces ``field``."""
    condition = _NEWER.replace("{f}", field)
    return ",\n".join(
        f"        {column} = CASE WHEN {condition}\n"
        f"            THEN EXCLUDED.{column} ELSE e.{column} END"
        for column in columns
    )


_PARENT = 'LEAST(e.parent_id COLLATE "C", EXCLUDED.parent_id COLLATE "C")'
_VERSION_NEWER = (
    "EXCLUDED.seq IS NOT NULL"
    " AND (e.seq IS NULL OR (EXCLUDED.epoch, EXCLUDED.seq) > (e.epoch, e.seq))"
)
_SET_VERSION = ",\n".join(
    f"        {c} = CASE WHEN {_VERSION_NEWER} THEN EXCLUDED.{c} ELSE e.{c} END"
    for c in ("epoch", "seq")
)
_SET_DATA = _take("data", "data", "data_epoch", "data_seq", "data_rank", "data_at", "data_tie")
_SET_STATE = _take(
    "state",
    "state",
    "error",
    "state_epoch",
    "state_seq",
    "state_rank",
    "state_at",
    "state_tie",
)
_SET_FIXED = f"""
        parent_id = {_PARENT},
        root_id = CASE
            WHEN e.created_at IS NULL AND EXCLUDED.created_at IS NULL THEN NULL
            WHEN e.created_at IS NOT NULL AND e.parent_id IS NOT DISTINCT FROM {_PARENT}
                THEN e.root_id
            WHEN {_PARENT} IS NULL THEN e.id
            ELSE (SELECT p.root_id FROM {{t}} p WHERE p.id = {_PARENT}) END,
        created_at = LEAST(e.created_at, EXCLUDED.created_at)"""  # noqa: S608  (as _FUNCTION)


def _upsert(*assignments: str) -> str:
    """The upsert of the change's row, updating an existing row with these SET items."""
    changes = ",\n".join(assignments)
    return f"""INSERT INTO {{t}} AS e (
            id, parent_id, root_id, data, state, error, created_at, updated_at, epoch, seq,
            data_epoch, data_seq, data_rank, data_at, data_tie,
            state_epoch, state_seq, state_rank, state_at, state_tie)
        VALUES (
            p_id, p_parent_id, new_root, p_data, p_state, p_error, p_created_at, p_at,
            p_epoch, p_seq, p_data_epoch, p_data_seq, p_data_rank, p_data_at, p_data_tie,
            p_state_epoch, p_state_seq, p_state_rank, p_state_at, p_state_tie)
        ON CONFLICT (id) DO UPDATE SET
        updated_at = GREATEST(e.updated_at, EXCLUDED.updated_at),
{_SET_VERSION},
{changes}
        RETURNING e.root_id INTO new_root;"""  # noqa: S608  (as _FUNCTION)


_SIGNATURE = ",\n    ".join(f"{name} {kind}" for name, kind in PARAMETERS)

# One upsert per kind of change: the SET list, compiled on every call, is only what the kind
# can change (an Updated's data, a StateChanged's state; a Created's everything).
_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {{fn}}(
    {_SIGNATURE}
) RETURNS void LANGUAGE plpgsql
-- Every statement below reads by key. Their plans are cached for the session, maybe from when
-- the table was tiny: rule out full scans and hash joins rather than trust those statistics.
-- The fix-up's estimates grow with the table; compiling it (JIT) would cost milliseconds a call.
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off
AS $upsert$
DECLARE
    old_root text;
    new_root text;
    adopted bigint := 0;
    notice text;
    full_notice text;
BEGIN
    IF p_created_at IS NULL AND p_state IS NULL THEN  -- an Updated
        {_upsert(_SET_DATA)}
    ELSIF p_created_at IS NULL AND p_data IS NULL THEN  -- a StateChanged
        {_upsert(_SET_STATE)}
    ELSE  -- a Created
        -- The tree lock first: every statement below then sees the Created changes committed
        -- before it, so a parent and its child written at once by two sessions always link.
        PERFORM pg_advisory_xact_lock({TREE_LOCK_CLASS}, hashtext({{table_name}}));
        SELECT o.root_id INTO old_root FROM {{t}} o WHERE o.id = p_id;
        IF p_parent_id IS NULL THEN
            new_root := p_id;
        ELSE
            SELECT p.root_id INTO new_root FROM {{t}} p WHERE p.id = p_parent_id;
        END IF;
        {_upsert(_SET_FIXED, _SET_DATA, _SET_STATE)}
        IF new_root IS DISTINCT FROM old_root
            AND EXISTS (SELECT FROM {{t}} c WHERE c.parent_id = p_id AND c.id <> p_id)
        THEN
            -- The row got (or changed) its root: hand it down to every stored descendant (only
            -- when it has children: the walk's set of visited rows is sized by the table's).
            WITH RECURSIVE below (id, root) AS (
                SELECT c.id, new_root FROM {{t}} c WHERE c.parent_id = p_id AND c.id <> p_id
                UNION
                SELECT c.id, below.root FROM below JOIN {{t}} c ON c.parent_id = below.id
                WHERE c.id <> p_id
            )
            UPDATE {{t}} d SET root_id = below.root FROM below
            WHERE d.id = below.id AND d.root_id IS DISTINCT FROM below.root;
            GET DIAGNOSTICS adopted = ROW_COUNT;
        END IF;
    END IF;
    notice := json_build_object('id', p_id, 'root', new_root, 'adopted', adopted)::text;
    full_notice := left(notice, -1) || ', "change" : ' || p_wire || '}}}}';
    IF octet_length(full_notice) <= {NOTIFY_LIMIT} THEN
        notice := full_notice;
    END IF;
    PERFORM pg_notify(p_channel, notice);
END
$upsert$
"""  # noqa: S608  (built from constants; the names go in as sql.Identifier and sql.Literal)


def function_name(table: str) -> sql.Identifier:
    """The upsert function of ``table`` (a name already checked by ``check_identifier``)."""
    return sql.Identifier(table + FUNCTION_SUFFIX)


def create_function(table: str) -> sql.Composed:
    """The statement that creates (or replaces) ``table``'s upsert function."""
    return sql.SQL(_FUNCTION).format(
        fn=function_name(table), t=sql.Identifier(table), table_name=sql.Literal(table)
    )


def call(table: str) -> sql.Composed:
    """``SELECT <fn>(%s, ...)``: one change's write, its values in ``PARAMETERS`` order."""
    casts = sql.SQL(", ").join(sql.SQL(f"%s::{kind}") for _, kind in PARAMETERS)
    return sql.SQL("SELECT {}({})").format(function_name(table), casts)
