"""
Human text for events: ``describe(event)`` and ``progress_of(event)``, and the hooks for user types.

An event type says how it wants to be shown by defining ``__alien_text__(self) -> str``, and
exposes numeric progress with ``__alien_progress__(self) -> tuple[float, float] | None``
(``(current, total)``; a total of 0 means "unknown"). Without them, Alien's 31 types have
readable defaults, an event with a ``progress`` field holding a ``PushProgress`` shows it, and
any other type reads ``TypeName field=value ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from alien_events_api import AlienEvent, PushProgress, UnknownEvent

_MAX_VALUE = 40
_MAX_NAMES = 3
_CONTROL = dict.fromkeys((9, 10, 11, 12, 13), " ") | {
    code: "\ufffd"
    for code in (*range(32), 127, *range(128, 160))
    if code not in {9, 10, 11, 12, 13}
}


@runtime_checkable
class DescribesItself(Protocol):
    """
    An event type that says how it is shown: ``__alien_text__`` returns one line of text.
    """

    def __alien_text__(self) -> str:
        """Return the text a person sees for this event ("Migrating table users")."""


@runtime_checkable
class ReportsProgress(Protocol):
    """
    An event type with numeric progress: ``(current, total)``, or ``None`` when there is none.
    """

    def __alien_progress__(self) -> tuple[float, float] | None:
        """Return ``(current, total)`` (a total of 0 means unknown), or ``None``."""


def clean(text: str) -> str:
    """
    Return ``text`` on one line with control characters replaced, so it is safe on a terminal.

    Newlines and tabs become spaces; other control characters (escape sequences included)
    become U+FFFD, so an event field can never move the cursor or change colours.
    """
    return text.translate(_CONTROL)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    more = len(names) - _MAX_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _building_resource(e: AlienEvent.BuildingResource) -> str:
    if len(e.related_resources) > 1:
        return f"Building {e.resource_type} {', '.join(e.related_resources)} (shared)"
    return f"Building {e.resource_type} {e.resource_name}"


def _pushing_stack(e: AlienEvent.PushingStack) -> str:
    text = f"Pushing {e.platform} images of {e.stack}"
    return text if e.destination is None else f"{text} to {e.destination}"


def _compiling(e: AlienEvent.CompilingCode) -> str:
    return f"Compiling {e.language}" if not e.progress else f"Compiling {e.language}: {e.progress}"


def _stack_step(e: AlienEvent.StackStep) -> str:
    state = e.next_state
    platform = state.get("platform") if isinstance(state, Mapping) else None
    resources = state.get("resources") if isinstance(state, Mapping) else None
    parts = []
    if isinstance(platform, str) and platform:
        parts.append(platform)
    if isinstance(resources, Mapping):
        parts.append(f"{len(resources)} resource{'' if len(resources) == 1 else 's'}")
    text = "Applying stack step" + (f" ({', '.join(parts)})" if parts else "")
    if e.suggested_delay_ms is not None:
        text += f", next in {e.suggested_delay_ms / 1000:g}s"
    return text


def _emptying_buckets(e: AlienEvent.EmptyingBuckets) -> str:
    names = list(e.bucket_names)
    if not names:
        return "Emptying buckets (none)"
    return f"Emptying bucket{'' if len(names) == 1 else 's'} {_names(names)}"


_ALIEN_TEXT: dict[type[Any], Callable[[Any], str]] = {
    AlienEvent.LoadingConfiguration: lambda _: "Loading configuration",
    AlienEvent.Finished: lambda _: "Finished",
    AlienEvent.BuildingStack: lambda e: f"Building stack {e.stack}",
    AlienEvent.RunningPreflights: lambda e: f"Running preflights for {e.stack} ({e.platform})",
    AlienEvent.DownloadingAlienRuntime: lambda e: (
        f"Downloading Alien runtime for {e.target_triple} from {e.url}"
    ),
    AlienEvent.BuildingResource: _building_resource,
    AlienEvent.BuildingImage: lambda e: f"Building image {e.image}",
    AlienEvent.PushingImage: lambda e: f"Pushing image {e.image}",
    AlienEvent.PushingStack: _pushing_stack,
    AlienEvent.PushingResource: lambda e: f"Pushing {e.resource_type} {e.resource_name}",
    AlienEvent.CreatingRelease: lambda e: f"Creating release for {e.project}",
    AlienEvent.CompilingCode: _compiling,
    AlienEvent.StackStep: _stack_step,
    AlienEvent.GeneratingCloudFormationTemplate: lambda _: "Generating CloudFormation template",
    AlienEvent.GeneratingTemplate: lambda e: f"Generating {e.platform} template",
    AlienEvent.ProvisioningAgent: lambda e: (
        f"Provisioning agent {e.agent_id} (release {e.release_id})"
    ),
    AlienEvent.UpdatingAgent: lambda e: f"Updating agent {e.agent_id} to release {e.release_id}",
    AlienEvent.DeletingAgent: lambda e: f"Deleting agent {e.agent_id} (release {e.release_id})",
    AlienEvent.DebuggingAgent: lambda e: (
        f"Debugging agent {e.agent_id} (session {e.debug_session_id})"
    ),
    AlienEvent.PreparingEnvironment: lambda e: f"Preparing environment ({e.strategy_name})",
    AlienEvent.DeployingStack: lambda e: f"Deploying stack {e.stack_name}",
    AlienEvent.RunningTestWorker: lambda e: f"Running test worker for {e.stack_name}",
    AlienEvent.CleaningUpStack: lambda e: f"Cleaning up stack {e.stack_name} ({e.strategy_name})",
    AlienEvent.CleaningUpEnvironment: lambda e: (
        f"Cleaning up environment of {e.stack_name} ({e.strategy_name})"
    ),
    AlienEvent.SettingUpPlatformContext: lambda e: f"Setting up {e.platform_name} platform context",
    AlienEvent.EnsuringDockerRepository: lambda e: (
        f"Ensuring Docker repository {e.repository_name}"
    ),
    AlienEvent.DeployingCloudFormationStack: lambda e: (
        f"Deploying CloudFormation stack {e.cfn_stack_name}: {e.current_status}"
    ),
    AlienEvent.AssumingRole: lambda e: f"Assuming role {e.role_arn}",
    AlienEvent.ImportingStackStateFromCloudFormation: lambda e: (
        f"Importing stack state from CloudFormation stack {e.cfn_stack_name}"
    ),
    AlienEvent.DeletingCloudFormationStack: lambda e: (
        f"Deleting CloudFormation stack {e.cfn_stack_name}: {e.current_status}"
    ),
    AlienEvent.EmptyingBuckets: _emptying_buckets,
}


def _value(value: object) -> str:
    if isinstance(value, str):
        text = (
            value if value and not any(c.isspace() or c in "='\"" for c in value) else repr(value)
        )
    elif isinstance(value, PushProgress):
        text = f"{value.layers_uploaded}/{value.total_layers}"
    else:
        text = repr(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _fields(event: object) -> list[tuple[str, object]]:
    if isinstance(event, UnknownEvent):
        return [(str(key), value) for key, value in event.data.items()]
    cls = type(event)
    if attrs.has(cls):
        return [(field.name, getattr(event, field.name)) for field in attrs.fields(cls)]
    return [(key, value) for key, value in vars(event).items() if not key.startswith("_")]


def generic_text(event: object) -> str:
    """
    Return the fallback text of an event: ``TypeName field=value ...`` (``None`` fields left out).
    """
    name = event.tag if isinstance(event, UnknownEvent) else type(event).__name__
    try:
        fields = _fields(event)
    except TypeError:  # an object without __dict__ or attrs fields: the name says enough
        fields = []
    parts = [name, *(f"{key}={_value(value)}" for key, value in fields if value is not None)]
    return clean(" ".join(parts))


def describe(event: object) -> str:
    """
    Return the one-line text a person sees for ``event`` ("Building stack my-stack").

    A type's own ``__alien_text__()`` comes first (``DescribesItself``); then the defaults
    for Alien's 31 types; then ``TypeName field=value ...``. The text is cleaned of control
    characters. A ``__alien_text__`` that raises, or returns something other than a ``str``,
    makes ``describe`` raise (``TypeError`` for a wrong type): renderers catch that, report it
    and fall back to ``generic_text``.
    """
    own = getattr(type(event), "__alien_text__", None)
    if own is not None:
        text = own(event)
        if not isinstance(text, str):
            msg = f"{type(event).__name__}.__alien_text__() returned {type(text).__name__}, not str"
            raise TypeError(msg)
        return clean(text)
    known = _ALIEN_TEXT.get(type(event))
    if known is not None:
        return clean(known(event))
    return generic_text(event)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # noqa: PLR0124  (NaN check)


def progress_of(event: object) -> tuple[float, float] | None:
    """
    Return ``(current, total)`` for an event that carries progress, else ``None``.

    A type's own ``__alien_progress__()`` comes first (``ReportsProgress``); else a
    ``progress`` field holding a ``PushProgress`` gives bytes (or layers when the byte total
    is unknown). A total of 0 means the total is unknown. Bad values from a hook raise
    ``TypeError`` (renderers report it once and show no progress).
    """
    own = getattr(type(event), "__alien_progress__", None)
    if own is not None:
        given = own(event)
        if given is None:
            return None
        if (
            not isinstance(given, tuple)
            or len(given) != 2  # noqa: PLR2004  (a pair)
            or not all(_number(v) for v in given)
        ):
            msg = (
                f"{type(event).__name__}.__alien_progress__() must return (current, total) "
                f"numbers or None, got {given!r:.60}"
            )
            raise TypeError(msg)
        return (float(given[0]), float(given[1]))
    progress = getattr(event, "progress", None)
    if isinstance(progress, PushProgress):
        if progress.total_bytes > 0:
            return (float(progress.bytes_uploaded), float(progress.total_bytes))
        if progress.total_layers > 0:
            return (float(progress.layers_uploaded), float(progress.total_layers))
        return None
    return None


def push_progress_of(event: object) -> PushProgress | None:
    """Return the ``PushProgress`` an event carries in its ``progress`` field, if any."""
    progress = getattr(event, "progress", None)
    return progress if isinstance(progress, PushProgress) else None


ErrorCallback = Callable[[Exception], None]


def text_or_fallback(event: object, on_error: ErrorCallback | None) -> str:
    """Return ``describe(event)``; if a user hook fails, tell ``on_error`` and use the fallback."""
    try:
        return describe(event)
    except Exception as exc:  # noqa: BLE001  (a user type's hook must not break a display)
        if on_error is not None:
            on_error(exc)
        try:
            return generic_text(event)
        except Exception:  # noqa: BLE001  (a field whose repr fails: the type name will do)
            return clean(type(event).__name__)


def progress_or_none(event: object, on_error: ErrorCallback | None) -> tuple[float, float] | None:
    """Return ``progress_of(event)``; if a user hook fails, tell ``on_error`` and show none."""
    try:
        return progress_of(event)
    except Exception as exc:  # noqa: BLE001  (same)
        if on_error is not None:
            on_error(exc)
        return None
