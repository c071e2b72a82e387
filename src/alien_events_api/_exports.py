"""
Public names present themselves as living in their public package (``alien_events_api.Event``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


def present_as_public(namespace: Mapping[str, Any], package: str, names: Iterable[str]) -> None:
    """
    Set ``__module__`` to ``package`` on the listed objects defined in its private modules.

    So reprs, docs and pickles name ``alien_events_sdk.EventBus``, not ``alien_events_sdk._bus``.
    """
    for name in names:
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith(f"{package}._"):
            with contextlib.suppress(AttributeError, TypeError):  # aliases refuse
                obj.__module__ = package
