"""
Print the two commands of the README's quick start, one per line (``.ci/run`` runs them).
"""

from __future__ import annotations

import pathlib
import re
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def quickstart_commands(text: str) -> list[str]:
    """Return the commands of the first ```sh block under the "Quick start" heading."""
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    if section is None:
        msg = "README.md has no '## Quick start' section"
        raise SystemExit(msg)
    block = re.search(r"```sh\n(.*?)```", section.group(1), re.DOTALL)
    if block is None:
        msg = "the quick start has no ```sh block"
        raise SystemExit(msg)
    return [line for line in block.group(1).splitlines() if line.strip()]


def main() -> int:
    """Print the commands, failing unless there are exactly two."""
    commands = quickstart_commands(README.read_text(encoding="utf-8"))
    if len(commands) != 2:  # noqa: PLR2004  (the project's promise: exactly two)
        print(
            f"the quick start must have exactly two commands, found {len(commands)}",
            file=sys.stderr,
        )
        return 1
    print("\n".join(commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
