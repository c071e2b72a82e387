"""
Sessions in fresh virtual environments: the tests, lint, typing, the api-alone check, coverage.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing", "api_alone"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite against editable installs of every distribution."""
    session.install("-r", "requirements-dev.txt")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check formatting and lint with ruff."""
    session.install("ruff")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    """Type-check the api and sdk packages with mypy in strict mode."""
    session.install("-r", "requirements-dev.txt")
    session.run("mypy")


@nox.session
def coverage(session: nox.Session) -> None:
    """Measure branch coverage of the api and sdk packages under their tests (at least 99 %)."""
    session.install("-r", "requirements-dev.txt", "coverage")
    session.run("coverage", "run", "-m", "pytest", "tests/api", "tests/sdk", "-m", "not slow")
    session.run("coverage", "report")


@nox.session
def api_alone(session: nox.Session) -> None:
    """Build the api wheel, install it alone in a fresh venv, prove the SDK is absent."""
    session.run("python", "scripts/check_api_alone.py")
