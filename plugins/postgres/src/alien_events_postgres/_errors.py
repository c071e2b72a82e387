"""
Exceptions of ``alien_events_postgres``.

The tree::

    AlienEventsError                 (alien_events_api)
    └── PostgresEventsError
        ├── PostgresWriteError       a change could not be stored (the database's message in it)
        ├── SchemaVersionError       the table's schema is newer than this package knows
        └── BadIdentifierError       a table or channel name that is not a plain identifier
                                     (also ValueError)
"""

from __future__ import annotations

from alien_events_api import AlienEventsError


class PostgresEventsError(AlienEventsError):
    """
    Root of the exceptions that ``alien_events_postgres`` raises.
    """


class PostgresWriteError(PostgresEventsError):
    """
    A change could not be stored; the message carries the database's own message.

    ``change_id`` is the event's id, ``attempts`` how many times the write was tried.
    """

    def __init__(self, change_id: str, attempts: int, reason: str) -> None:
        self.change_id = change_id
        self.attempts = attempts
        self.reason = reason
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        super().__init__(f"could not store the change to event {change_id} ({tries}): {reason}")


class SchemaVersionError(PostgresEventsError):
    """
    The table was migrated by a newer alien-events-postgres than this one: upgrade the package.
    """

    def __init__(self, table: str, found: int, known: int) -> None:
        self.table = table
        self.found = found
        self.known = known
        super().__init__(
            f"table {table!r} has schema version {found}, but this alien-events-postgres knows "
            f"versions up to {known}: upgrade alien-events-postgres to use it"
        )


class BadIdentifierError(PostgresEventsError, ValueError):
    """
    A table or channel name is not a plain SQL identifier (letters, digits, ``_``).
    """

    def __init__(self, what: str, name: object, limit: int) -> None:
        self.what = what
        self.name = name
        super().__init__(
            f"{what} must be a plain identifier (a letter or _, then letters, digits or _; "
            f"at most {limit} characters), got {name!r}"
        )
