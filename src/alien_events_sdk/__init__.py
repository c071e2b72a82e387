"""
alien-events SDK: the real event bus, for applications that pick where events go.

Library code emits through ``alien_events_api``; the application makes an ``EventBus`` with
handlers current (``bus.run``, ``with bus:``, or ``set_default_bus``) and every change reaches
those handlers before the emitting call returns.
"""

from __future__ import annotations

from alien_events_api import __version__
from alien_events_api._exports import present_as_public as _present_as_public
from alien_events_sdk._bus import Clock, EventBus, IdFactory, set_default_bus
from alien_events_sdk._durable import ID_SCHEME_VERSION, DerivedIds, ReplayPolicy
from alien_events_sdk._errors import (
    PluginError,
    PluginLoadError,
    PluginNotFoundError,
    PluginOptionError,
    SdkError,
    WireFormatError,
)
from alien_events_sdk._handlers import NoOpEventHandler, RecordingHandler
from alien_events_sdk._options import Option
from alien_events_sdk._plugins import (
    HandlerFactory,
    PluginInfo,
    Plugins,
    discover,
    hookimpl,
    installed_plugins,
)
from alien_events_sdk._schema import change_schema, event_schema, json_schema
from alien_events_sdk._tree import EventNode, EventTree
from alien_events_sdk._wire import converter, dump_change_line, dumps, from_dict, loads, to_dict

__all__ = [
    "ID_SCHEME_VERSION",
    "Clock",
    "DerivedIds",
    "EventBus",
    "EventNode",
    "EventTree",
    "HandlerFactory",
    "IdFactory",
    "NoOpEventHandler",
    "Option",
    "PluginError",
    "PluginInfo",
    "PluginLoadError",
    "PluginNotFoundError",
    "PluginOptionError",
    "Plugins",
    "RecordingHandler",
    "ReplayPolicy",
    "SdkError",
    "WireFormatError",
    "__version__",
    "change_schema",
    "converter",
    "discover",
    "dump_change_line",
    "dumps",
    "event_schema",
    "from_dict",
    "hookimpl",
    "installed_plugins",
    "json_schema",
    "loads",
    "set_default_bus",
    "to_dict",
]

_present_as_public(globals(), __name__, __all__)
