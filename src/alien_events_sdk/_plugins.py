"""
Handler plugins: hook specifications, discovery through entry points, and building handlers.

A plugin is any object (usually a module) registered under the entry-point group
``alien_events`` that implements the hooks below with ``@alien_events_sdk.hookimpl``. pluggy
is used only here, at set-up; delivery stays a plain tuple of handlers.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from alien_events_sdk._errors import (
    PluginError,
    PluginLoadError,
    PluginNotFoundError,
    PluginOptionError,
)
from alien_events_sdk._options import Option, resolve_options

if typing.TYPE_CHECKING:
    from alien_events_api import Event

PROJECT = "alien_events"
ENTRY_POINT_GROUP = "alien_events"
NO_HANDLERS = "none"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's hook implementations (``@hookimpl def alien_events_handler_factories()``)."""


@typing.final
@attrs.frozen
class HandlerFactory:
    """
    How a plugin makes one kind of handler: its name, its options, and the function that builds it.

    ``create`` is called with every option as a keyword argument (defaults filled in) and
    returns the handler.
    """

    name: str
    create: Callable[..., Any]
    options: Mapping[str, Option] = attrs.field(factory=dict)
    description: str = ""


class HookSpecs:
    """The hooks an alien-events plugin may implement."""

    @hookspec
    def alien_events_handler_factories(self) -> Sequence[HandlerFactory]:  # type: ignore[empty-body]
        """Return the handler factories this plugin provides."""

    @hookspec
    def alien_events_event_types(self) -> Sequence[type[Event]]:  # type: ignore[empty-body]
        """Return event types this plugin defines (importing them registers their tags)."""


@typing.final
@attrs.frozen
class PluginInfo:
    """One installed plugin: entry point, distribution and version, and the handlers it gives."""

    entry_point: str
    distribution: str
    version: str
    handlers: tuple[str, ...]


@typing.final
@attrs.frozen
class Plugins:
    """
    What discovery found: the handler factories by name, the plugins, and those that failed.
    """

    factories: Mapping[str, HandlerFactory]
    plugins: tuple[PluginInfo, ...]
    failures: tuple[PluginLoadError, ...]

    def factory(self, name: str) -> HandlerFactory:
        """Return the factory called ``name``, or raise ``PluginNotFoundError`` listing the rest."""
        try:
            return self.factories[name]
        except KeyError:
            for failure in self.failures:
                if failure.entry_point == name:
                    raise failure from failure.__cause__
            raise PluginNotFoundError(name, sorted(self.factories)) from None

    def create(self, name: str, options: Mapping[str, Any], *, from_text: bool = False) -> Any:
        """Build the handler ``name`` with these options (checked against the factory's)."""
        factory = self.factory(name)
        values = resolve_options(name, factory.options, options, from_text=from_text)
        try:
            return factory.create(**values)
        except PluginError:
            raise
        except (OSError, ValueError, TypeError) as exc:
            raise PluginOptionError(name, "*", f"the handler could not be created: {exc}") from exc


def _distribution(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:
        return "<unknown distribution>", ""
    return dist.metadata["Name"] or dist.name, dist.version


def discover(
    *, strict: bool = False, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None
) -> Plugins:
    """
    Load every plugin of the ``alien_events`` entry-point group, one at a time.

    A plugin that fails to import or to answer its hooks is recorded in ``failures`` (with its
    entry point and distribution) while the others still load; ``strict=True`` raises its
    ``PluginLoadError`` instead.
    """
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(HookSpecs)
    found = (
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if entry_points is None
        else entry_points
    )
    factories: dict[str, HandlerFactory] = {}
    plugins: list[PluginInfo] = []
    failures: list[PluginLoadError] = []
    for entry_point in sorted(found, key=lambda ep: ep.name):
        distribution, version = _distribution(entry_point)
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=f"{entry_point.name} ({distribution})")
            given = _answers(manager, plugin, "alien_events_handler_factories")
            _answers(manager, plugin, "alien_events_event_types")
            made = _check_factories(given)
        except Exception as exc:
            failure = PluginLoadError(entry_point.name, _label(distribution, version), _reason(exc))
            failure.__cause__ = exc
            if strict:
                raise failure from exc
            failures.append(failure)
            continue
        for factory in made:
            factories.setdefault(factory.name, factory)
        plugins.append(
            PluginInfo(entry_point.name, distribution, version, tuple(f.name for f in made))
        )
    return Plugins(factories, tuple(plugins), tuple(failures))


def _label(distribution: str, version: str) -> str:
    return f"{distribution} {version}".strip()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _answers(manager: pluggy.PluginManager, plugin: object, hook_name: str) -> list[Any]:
    """Call one hook on one plugin only, flattening its answer."""
    caller = manager.subset_hook_caller(
        hook_name, remove_plugins=[p for p in manager.get_plugins() if p is not plugin]
    )
    answers: list[Any] = []
    for answer in caller():
        answers.extend(answer or ())
    return answers


def _check_factories(given: list[Any]) -> list[HandlerFactory]:
    for factory in given:
        if not isinstance(factory, HandlerFactory):
            msg = (
                "alien_events_handler_factories() must return HandlerFactory objects, "
                f"got {type(factory).__name__}"
            )
            raise TypeError(msg)
    return given


def plugin_names(text: str) -> list[str]:
    """Split ``ALIEN_EVENTS_HANDLERS`` (``jsonl,console``) into names; ``none`` gives none."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if NO_HANDLERS in names:
        if len(names) > 1:
            msg = f"ALIEN_EVENTS_HANDLERS={text!r}: 'none' cannot be combined with other handlers"
            raise PluginOptionError("handlers", "*", msg)
        return []
    return names


def options_from_env(
    name: str, spec: Mapping[str, Option], environ: Mapping[str, str]
) -> dict[str, str]:
    """Collect ``ALIEN_EVENTS_<PLUGIN>_<OPTION>`` variables for one plugin."""
    prefix = f"ALIEN_EVENTS_{name.upper().replace('-', '_')}_"
    given = {}
    for option in spec:
        key = prefix + option.upper()
        if key in environ:
            given[option] = environ[key]
    return given


def build_handlers(
    names: Sequence[str],
    options: Mapping[str, Mapping[str, Any]],
    *,
    strict: bool,
    environ: Mapping[str, str] | None = None,
) -> list[Any]:
    """
    Make the handlers ``names`` from the installed plugins, in order.

    ``options`` (by plugin name) come from code; with ``environ``, the
    ``ALIEN_EVENTS_<PLUGIN>_<OPTION>`` variables are read as text and code options win.
    """
    unknown_keys = sorted(set(options) - set(names))
    if unknown_keys:
        msg = (
            f"options given for {unknown_keys[0]!r}, which is not among the handlers {list(names)}"
        )
        raise PluginOptionError(unknown_keys[0], "*", msg)
    if not names:
        return []
    found = discover(strict=strict)
    handlers: list[Any] = []
    try:
        for name in names:
            factory = found.factory(name)
            values: dict[str, Any] = {}
            if environ is not None:
                for option, text in options_from_env(name, factory.options, environ).items():
                    values[option] = factory.options[option].from_text(name, option, text)
            values.update(options.get(name, {}))  # code wins over the environment
            handlers.append(found.create(name, values))
    except BaseException:
        _close_quietly(handlers)  # nobody else can: no bus is returned
        raise
    return handlers


def _close_quietly(handlers: Sequence[Any]) -> None:
    for handler in handlers:
        close = getattr(handler, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


def installed_plugins() -> Plugins:
    """
    Return what is installed: plugins, their distributions and versions, and load failures.
    """
    return discover()


def strict_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``ALIEN_EVENTS_PLUGINS_STRICT`` asks for plugin load failures to be fatal."""
    value = (os.environ if environ is None else environ).get("ALIEN_EVENTS_PLUGINS_STRICT", "")
    return value.strip().lower() in {"1", "true", "yes", "on"}
