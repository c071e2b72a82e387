"""
Event ids: random UUID v4 strings, made in batches because one ``str(uuid.uuid4())`` costs µs.
"""

from __future__ import annotations

import os

_BATCH = 512
_ID_WIDTH = 37  # 36 characters and a space to split on


def _masks() -> tuple[int, int]:
    """Per character of a batch: which bits of a random byte to keep, and which to set."""
    keep, put = bytearray(), bytearray()
    for position in range(_ID_WIDTH):
        if position in {8, 13, 18, 23}:  # the dashes
            mask, value = 0, 16
        elif position == 14:  # noqa: PLR2004  (the version nibble: 4)
            mask, value = 0, 4
        elif position == 19:  # noqa: PLR2004  (the variant nibble: 8, 9, a or b)
            mask, value = 3, 8
        elif position == _ID_WIDTH - 1:
            mask, value = 0, 17
        else:
            mask, value = 15, 0
        keep.append(mask)
        put.append(value)
    return int.from_bytes(bytes(keep) * _BATCH, "big"), int.from_bytes(bytes(put) * _BATCH, "big")


_KEEP, _PUT = _masks()
_ALPHABET = bytes.maketrans(bytes(range(18)), b"0123456789abcdef- ")
_pool: list[str] = []


def _refill() -> None:
    # One random byte per character, masked to a nibble (or a fixed character) with two
    # big-integer operations, then turned into text by one translate: all in C.
    size = _ID_WIDTH * _BATCH
    nibbles = (int.from_bytes(os.urandom(size), "big") & _KEEP) | _PUT
    _pool.extend(nibbles.to_bytes(size, "big").translate(_ALPHABET).decode("ascii").split())


def new_id() -> str:
    """
    Return a fresh lowercase, hyphenated UUID v4 string (from the OS's random source).
    """
    try:
        return _pool.pop()
    except IndexError:
        _refill()
        return _pool.pop()


# A forked child must not hand out the ids its parent still holds.
os.register_at_fork(after_in_child=_pool.clear)
