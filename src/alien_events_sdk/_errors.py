"""
Exceptions of ``alien_events_sdk``.

The tree (the root derives from the API's, so one ``except AlienEventsError`` catches all)::

    AlienEventsError                      (alien_events_api)
    └── SdkError
        ├── WireFormatError               malformed wire input (also ValueError)
        └── PluginError                   choosing or loading handler plugins
            ├── PluginNotFoundError       no plugin of that name (also LookupError)
            ├── PluginOptionError         a bad option for a plugin (also ValueError)
            └── PluginLoadError           a plugin failed to import or set up (also ImportError)
"""

from __future__ import annotations

from alien_events_api import AlienEventsError


class SdkError(AlienEventsError):
    """
    Root of the exceptions that ``alien_events_sdk`` raises.
    """


class WireFormatError(SdkError, ValueError):
    """
    Wire input could not be read: not JSON, a missing or wrongly typed field, a bad timestamp.

    ``path`` says where (``event.progress.totalLayers``, ``createdAt``, ``<document>``) and
    ``reason`` what was wrong. Nothing half-parsed is ever returned.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class PluginError(SdkError):
    """
    Root of the errors about handler plugins.
    """


class PluginNotFoundError(PluginError, LookupError):
    """
    No installed plugin gives a handler of that name; ``installed`` lists the names there are.
    """

    def __init__(self, name: str, installed: list[str]) -> None:
        self.name = name
        self.installed = installed
        listing = (
            ", ".join(installed) if installed else "none (install one, e.g. alien-events-jsonl)"
        )
        super().__init__(f"no alien-events handler plugin named {name!r}; installed: {listing}")


class PluginOptionError(PluginError, ValueError):
    """
    An option for a plugin is unknown, missing or of the wrong type.
    """

    def __init__(self, plugin: str, option: str, reason: str) -> None:
        self.plugin = plugin
        self.option = option
        self.reason = reason
        if option == "*":
            super().__init__(f"plugin {plugin!r}: {reason}")
            return
        env = f"ALIEN_EVENTS_{plugin.upper().replace('-', '_')}_{option.upper()}"
        super().__init__(f"plugin {plugin!r}, option {option!r} ({env}): {reason}")


class PluginLoadError(PluginError, ImportError):
    """
    A plugin's entry point failed to load; names the entry point and its distribution.
    """

    def __init__(self, entry_point: str, distribution: str, reason: str) -> None:
        self.entry_point = entry_point
        self.distribution = distribution
        self.reason = reason
        super().__init__(
            f"alien-events plugin {entry_point!r} from distribution {distribution} "
            f"failed to load: {reason}"
        )
