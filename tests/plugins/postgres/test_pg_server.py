"""
The throw-away PostgreSQL server the plugin's tests run against is real, isolated and goes away.
"""

from __future__ import annotations

import socket

import psycopg
import pytest
from pg_server import PostgresServer


def test_server_answers_select_1(postgres_server):
    """The session's server answers a query over psycopg."""
    with psycopg.connect(postgres_server.dsn) as connection:
        assert (1,) == connection.execute("SELECT 1").fetchone()


def test_each_test_gets_its_own_empty_database(postgres_dsn):
    """postgres_dsn connects to a database of the test's own, with no table in it yet."""
    with psycopg.connect(postgres_dsn) as connection:
        name = connection.execute("SELECT current_database()").fetchone()
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert name is not None
    assert name[0].startswith("test_")
    assert (0,) == tables


def test_new_databases_are_isolated(postgres_server):
    """A table created in one database from new_database() is not seen in another."""
    first = postgres_server.new_database("isolation_first")
    second = postgres_server.new_database("isolation_second")
    try:
        with psycopg.connect(first) as connection:
            connection.execute("CREATE TABLE only_here (x int)")
            connection.execute("INSERT INTO only_here VALUES (1)")
        with psycopg.connect(second) as connection:
            found = connection.execute("SELECT to_regclass('only_here')").fetchone()
        with psycopg.connect(first) as connection:
            rows = connection.execute("SELECT x FROM only_here").fetchall()
    finally:
        postgres_server.drop_database("isolation_first")
        postgres_server.drop_database("isolation_second")
    assert (None,) == found
    assert [(1,)] == rows


def test_stop_ends_the_server_and_removes_its_directory(local_postgres):
    """After stop() the port refuses connections and the server's temporary directory is gone."""
    with PostgresServer() as server:
        with psycopg.connect(server.dsn) as connection:
            assert (1,) == connection.execute("SELECT 1").fetchone()
        port, temp_dir = server.port, server.temp_dir
    assert temp_dir is not None
    assert not temp_dir.exists()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.dsn, connect_timeout=5)
