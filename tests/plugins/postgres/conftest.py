"""
Fixtures for the PostgreSQL plugin's tests: one real throw-away server, a fresh database per test.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, NoReturn

import pytest
from pg_server import (
    PostgresServer,
    PostgresStartError,
    postgres_required,
    server_unavailable_reason,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


def unavailable(reason: str) -> NoReturn:
    """Skip the test for want of a server, or fail it when ALIEN_EVENTS_REQUIRE_POSTGRES=1."""
    if postgres_required():
        pytest.fail(f"PostgreSQL is required but unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's server: started here, or the one ALIEN_EVENTS_TEST_POSTGRES_DSN names."""
    reason = server_unavailable_reason()
    if reason is not None:
        unavailable(reason)
    server = PostgresServer.from_environment()
    try:
        server.start()
    except PostgresStartError as error:
        unavailable(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_postgres() -> None:
    """Skip (or fail) the test unless a server can be started here, whatever the DSN says."""
    reason = server_unavailable_reason(local=True)
    if reason is not None:
        unavailable(reason)


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a database of the test's own, dropped after it."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    dsn = postgres_server.new_database(name)
    try:
        yield dsn
    finally:
        postgres_server.drop_database(name)
