"""
Database work written as a generator of steps, run on a real server's sync or async connection.

An error raised by the generator itself, with transactions open, rolls every one of them back
and leaves the connection idle. (A failing statement's rollback is pinned through the schema,
in ``test_schema.py``; the schema never nests its transactions, so nesting is pinned here.)
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import sql

from alien_events_postgres._steps import BEGIN, COMMIT, Query, arun_steps, run_steps

INSERT = sql.SQL("INSERT INTO notes VALUES (%s)")


class Refused(Exception):
    """The generator's own error."""


def nested_steps():
    """Write two rows in a transaction and a nested one, then fail before either commits."""
    yield BEGIN
    yield Query(INSERT, ("outer",))
    yield BEGIN
    yield Query(INSERT, ("inner",))
    assert [("inner",), ("outer",)] == (yield Query(sql.SQL("SELECT note FROM notes ORDER BY 1")))
    raise Refused
    yield COMMIT  # never reached


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_error_from_the_steps_rolls_back_every_open_transaction(postgres_dsn, kind):
    """The generator's own error, two transactions deep, rolls both back and is raised as it is."""

    async def run_async():
        async with await psycopg.AsyncConnection.connect(postgres_dsn) as connection:
            with pytest.raises(Refused):
                await arun_steps(connection, nested_steps())
            return connection.info.transaction_status

    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE notes (note text)")
        if kind == "async":
            status = asyncio.run(run_async())
        else:
            with pytest.raises(Refused):
                run_steps(connection, nested_steps())
            status = connection.info.transaction_status
        assert psycopg.pq.TransactionStatus.IDLE == status
        assert [] == connection.execute("SELECT note FROM notes").fetchall()


def test_the_transaction_markers_read_as_their_sql():
    """BEGIN and COMMIT steps show as BEGIN and COMMIT (in failure messages and debuggers)."""
    assert ["BEGIN", "COMMIT"] == [repr(BEGIN), repr(COMMIT)]
