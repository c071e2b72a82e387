"""
The public surface: ``__all__`` is sorted, complete, and every name presents itself as public.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["alien_events_api", "alien_events_sdk"]


def isort_order(name: str) -> tuple[int, str]:
    """Ruff's ``__all__`` order (RUF022): CONSTANTS, then Classes, then the rest, each sorted."""
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted(name):
    """``__all__`` is sorted as ruff sorts it, so additions are easy to review."""
    module = importlib.import_module(name)
    assert sorted(module.__all__, key=isort_order) == module.__all__


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_every_public_name(name):
    """Every public name the package defines is in ``__all__``, and every listed name exists."""
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and not inspect.ismodule(value) and attr != "annotations"
    }
    assert public | {"__version__"} == set(module.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_public_objects_present_as_public_module(name):
    """Classes and functions in ``__all__`` say they live in the public package, not ``_module``."""
    module = importlib.import_module(name)
    for attr in module.__all__:
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == name, attr


def test_sdk_reexports_nothing_of_the_api_by_accident():
    """The SDK's surface is its own (the API is imported from ``alien_events_api``)."""
    import alien_events_api
    import alien_events_sdk

    shared = set(alien_events_api.__all__) & set(alien_events_sdk.__all__)
    assert {"__version__"} == shared
