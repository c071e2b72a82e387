"""
Carrying the current parent across processes: ``inject`` into a carrier, ``extract`` from one.

A carrier is any string mapping that travels with the work: HTTP or Temporal headers, a
queue message's attributes, a workflow's input. The token is printable and versioned, like
W3C ``traceparent``: ``1-<parent id>``, the id percent-encoded so that any id fits a header.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from alien_events_api._context import current_parent_var
from alien_events_api._errors import PropagationTokenError
from alien_events_api._handle import NOOP_HANDLE, EventHandle

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

    from alien_events_api._scope import ParentScope

TOKEN_KEY = "alien-events-parent"  # noqa: S105  (a header name, not a secret)
"""The carrier key ``inject`` writes and ``extract`` reads, unless told another."""

TOKEN_VERSION = "1"  # noqa: S105  (a format version, not a secret)
_TOKEN = re.compile(r"(?P<version>[0-9a-z]+)-(?P<parent>[!-~]+)")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MAX_TOKEN = 4096


def format_token(parent_id: str) -> str:
    """
    Return the token for a parent id: ``1-`` and the id, percent-encoded (printable ASCII).
    """
    if not isinstance(parent_id, str) or not parent_id:
        msg = f"parent_id must be a non-empty str, got {parent_id!r}"
        raise TypeError(msg)
    token = f"{TOKEN_VERSION}-{quote(parent_id, safe='')}"
    if len(token) > _MAX_TOKEN:
        msg = (
            f"parent id of {len(parent_id)} characters makes a token of {len(token)}, over the "
            f"{_MAX_TOKEN} that readers accept; use shorter ids for events that cross processes"
        )
        raise ValueError(msg)
    return token


def parse_token(token: str) -> str:
    """
    Return the parent id a token carries; raise ``PropagationTokenError`` saying what is wrong.
    """
    if not isinstance(token, str):
        raise PropagationTokenError(token, f"expected a str, got {type(token).__name__}")
    if len(token) > _MAX_TOKEN:
        raise PropagationTokenError(token, f"longer than {_MAX_TOKEN} characters")
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise PropagationTokenError(
            token, "expected '<version>-<percent-encoded parent id>', e.g. '1-3f2a...'"
        )
    if match["version"] != TOKEN_VERSION:
        raise PropagationTokenError(
            token,
            f"version {match['version']!r} is not supported (this library reads "
            f"{TOKEN_VERSION!r}; upgrade alien-events-api)",
        )
    if _BAD_ESCAPE.search(match["parent"]):
        raise PropagationTokenError(token, "a '%' not followed by two hex digits")
    try:
        parent_id = unquote(match["parent"], errors="strict")
    except UnicodeDecodeError as exc:
        raise PropagationTokenError(token, f"the parent id is not UTF-8: {exc}") from None
    return parent_id


def inject(carrier: MutableMapping[str, str], *, key: str = TOKEN_KEY) -> None:
    """
    Write a token for the current parent into ``carrier[key]``; outside any scope, write nothing.

    Side-effect free: it reads the context and nothing else, so calling it or not (say, only
    when not replaying) changes no id, ``seq`` or counter.
    """
    ambient = current_parent_var.get()
    parent_id = None if ambient is None else ambient.children_parent_id
    if parent_id is not None:
        carrier[key] = format_token(parent_id)


def extract(carrier: Mapping[str, str], *, key: str = TOKEN_KEY) -> ParentScope:
    """
    Return a scope (``with``/``async with``) that makes the carrier's parent the current one.

    Events emitted inside become children of the event the token names, in this process,
    without re-creating it; the scope's handle is that event attached (``EventHandle.attach``).
    A carrier without the key gives a scope that keeps the current parent. A malformed token
    raises ``PropagationTokenError`` at once; otherwise nothing happens until the scope is
    entered.
    """
    token = carrier.get(key)
    if token is None:
        return NOOP_HANDLE.as_parent()
    return EventHandle.attach(parse_token(token)).as_parent()
