"""
Handler plugins: discovery, options, selection, errors, installed_plugins, publish and close.

Plugins are found through the ``alien_events`` entry points; handlers are selected by name
(``EventBus.from_plugins``) or by environment (``EventBus.from_env``).

The real plugins (alien-events-jsonl and alien-events-structlog) are installed in the test
environment as they are for users. Third-party and broken plugins are real distributions
(a package and a ``.dist-info`` folder) written to a temporary folder put on ``sys.path``:
discovery finds them exactly as it finds code that is not ours.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import pathlib
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from alien_events_api import (
    AlienError,
    AlienEvent,
    AlienEventsError,
    EventHandlerError,
    EventState,
    PushProgress,
    StateChanged,
    UnknownEvent,
    event_types,
    lookup_event_type,
)
from alien_events_api import _event as api_event_module
from alien_events_jsonl import JsonLinesHandler, read_changes
from alien_events_sdk import (
    EventBus,
    EventTree,
    HandlerFactory,
    Option,
    PluginError,
    PluginInfo,
    PluginLoadError,
    PluginNotFoundError,
    PluginOptionError,
    Plugins,
    RecordingHandler,
    SdkError,
    discover,
    dumps,
    installed_plugins,
    loads,
)
from alien_events_sdk.testing import shape
from alien_events_structlog import StructlogHandler

REAL = ["console", "jsonl", "postgres", "structlog"]
CONSOLE_VERSION = importlib.metadata.version("alien-events-console")
JSONL_VERSION = importlib.metadata.version("alien-events-jsonl")
POSTGRES_VERSION = importlib.metadata.version("alien-events-postgres")
STRUCTLOG_VERSION = importlib.metadata.version("alien-events-structlog")
REAL_INFOS = [
    PluginInfo("console", "alien-events-console", CONSOLE_VERSION, ("console",)),
    PluginInfo("jsonl", "alien-events-jsonl", JSONL_VERSION, ("jsonl",)),
    PluginInfo("postgres", "alien-events-postgres", POSTGRES_VERSION, ("postgres",)),
    PluginInfo("structlog", "alien-events-structlog", STRUCTLOG_VERSION, ("structlog",)),
]

# -- fake distributions on sys.path -------------------------------------------------------------

ACME = """
    from alien_events_sdk import HandlerFactory, Option, hookimpl

    MADE = []


    class AcmeHandler:
        def __init__(self, **options):
            self.options = options
            self.changes = []
            self.closed = False
            MADE.append(self)

        def on_event_change(self, change):
            self.changes.append(change)

        def close(self):
            self.closed = True


    @hookimpl
    def alien_events_handler_factories():
        return [
            HandlerFactory(
                name="acme",
                create=AcmeHandler,
                options={
                    "prefix": Option(str, default="acme", help="a prefix"),
                    "limit": Option(int, default=10),
                    "ratio": Option(float, default=0.5),
                    "loud": Option(bool, default=False),
                    "where": Option(__import__("pathlib").Path, default=None),
                },
                description="keeps what it is given",
            )
        ]
"""

TOOLS = """
    from alien_events_sdk import HandlerFactory, Option, hookimpl


    class Tool:
        def __init__(self, **options):
            self.options = options

        def on_event_change(self, change):
            pass


    class Failing:
        def __init__(self):
            raise ValueError("the tool cannot start")

        def on_event_change(self, change):
            pass


    class Tools:
        # a plugin may be any object: here an instance whose method is the hook
        @hookimpl
        def alien_events_handler_factories(self):
            return [
                HandlerFactory("acme-tools", Tool, {"limit": Option(int, default=1)}),
                HandlerFactory("acme-failing", Failing),
            ]


    PLUGIN = Tools()
"""

CHECKING = """
    from alien_events_sdk import HandlerFactory, Option, PluginOptionError, hookimpl


    class Sampler:
        def __init__(self, rate):
            if not 0 < rate <= 1:
                raise PluginOptionError("acme-sampler", "rate", f"expected 0 < rate <= 1, got {rate}")
            self.rate = rate

        def on_event_change(self, change):
            pass


    @hookimpl
    def alien_events_handler_factories():
        return [HandlerFactory("acme-sampler", Sampler, {"rate": Option(float, default=1.0)})]
"""

BROKEN = """
    import acme_dependency_that_is_not_installed  # noqa
"""

NOT_A_FACTORY = """
    from alien_events_sdk import hookimpl


    @hookimpl
    def alien_events_handler_factories():
        return ["jsonl"]
"""

RAISING_HOOK = """
    from alien_events_sdk import hookimpl


    @hookimpl
    def alien_events_handler_factories():
        raise RuntimeError("no factories today")
"""

EVENT_TYPES = """
    from alien_events_api import Event, event_type
    from alien_events_sdk import hookimpl


    @event_type(tag="AcmeRocketLaunched")
    class RocketLaunched(Event):
        rocket: str


    @hookimpl
    def alien_events_event_types():
        return [RocketLaunched]
"""


class FakeDistributions:
    """Writes installed distributions (package + ``.dist-info``) into a folder on sys.path."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def add(self, name, version, entry_points, modules):
        """Install distribution ``name`` with ``modules`` ({module: source}) and entry points."""
        for module, source in modules.items():
            package = self.root / module
            package.mkdir()
            (package / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
            self.modules.append(module)
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[alien_events]\n{lines}", encoding="utf-8")
        importlib.invalidate_caches()

    def acme(self):
        """The third-party plugin ``acme`` from distribution acme-alien-plugin 1.2.3."""
        self.add(
            "acme-alien-plugin", "1.2.3", {"acme": "acme_alien_plugin"}, {"acme_alien_plugin": ACME}
        )

    def tools(self):
        """A plugin object (not a module) giving two handlers, one of which cannot be built."""
        self.add("acme-tools", "0.2.0", {"tools": "acme_tools:PLUGIN"}, {"acme_tools": TOOLS})

    def broken(self):
        """A plugin whose import fails (a dependency is missing)."""
        self.add(
            "acme-broken-plugin",
            "0.0.1",
            {"broken": "acme_broken_plugin"},
            {"acme_broken_plugin": BROKEN},
        )


@pytest.fixture(name="fake")
def _fake(tmp_path, monkeypatch):
    """A folder on sys.path to install fake distributions in; forgets their modules after."""
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    tags_before = set(event_types())
    dists = FakeDistributions(root)
    yield dists
    for name in list(sys.modules):
        if name.split(".")[0] in dists.modules:
            del sys.modules[name]
    for tag in set(event_types()) - tags_before:  # keep the process's registry as it was
        del api_event_module._registry[tag]
    importlib.invalidate_caches()


def acme_module():
    """The fake third-party plugin's module, as imported by discovery."""
    return sys.modules["acme_alien_plugin"]


def run_program():
    """Emit a small nested program on the current bus: scopes, an update, a failure."""
    with AlienEvent.BuildingStack(stack="demo").in_scope():
        with AlienEvent.BuildingImage(image="api").in_scope():
            handle = AlienEvent.PushingImage(image="api:latest").emit(EventState.STARTED)
            progress = PushProgress("Uploading", 1, 2, 10, 20)
            handle.update(AlienEvent.PushingImage(image="api:latest", progress=progress))
            handle.complete()
        try:
            with AlienEvent.BuildingImage(image="worker").in_scope():
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        AlienEvent.Finished().emit()


PROGRAM_SHAPE = [
    (
        "BuildingStack",
        "success",
        [
            ("BuildingImage", "success", [("PushingImage", "success", [])]),
            ("BuildingImage", "failed", []),
            ("Finished", "none", []),
        ],
    )
]


def handler_types(bus):
    return [type(handler) for handler in bus.handlers]


# -- discovery ----------------------------------------------------------------------------------


class TestDiscovery:
    def test_installed_plugins_lists_the_real_plugins_with_distributions_and_versions(self):
        """installed_plugins() lists jsonl and structlog with their distribution names and versions."""
        found = installed_plugins()
        assert REAL_INFOS == list(found.plugins)
        assert () == found.failures

    def test_installed_plugins_gives_the_plugins_factories_by_handler_name(self):
        """The factories found are the plugins' own, keyed by handler name, with their options."""
        factories = installed_plugins().factories
        assert REAL == sorted(factories)
        assert JsonLinesHandler is factories["jsonl"].create
        assert ["backups", "fsync", "max_bytes", "path"] == sorted(factories["jsonl"].options)
        assert StructlogHandler is factories["structlog"].create
        assert ["logger_name"] == list(factories["structlog"].options)

    def test_installed_plugins_is_exported_by_the_sdk(self):
        """installed_plugins and discover are public names of alien_events_sdk."""
        import alien_events_sdk

        assert alien_events_sdk.installed_plugins is installed_plugins
        assert "installed_plugins" in alien_events_sdk.__all__
        assert "discover" in alien_events_sdk.__all__

    def test_third_party_distribution_on_sys_path_is_discovered(self, fake):
        """A distribution that is not ours, found only through its entry point, is listed with its name and version."""
        fake.acme()
        found = installed_plugins()
        assert [
            PluginInfo("acme", "acme-alien-plugin", "1.2.3", ("acme",)),
            *REAL_INFOS,
        ] == list(found.plugins)
        assert ["acme", "console", "jsonl", "postgres", "structlog"] == sorted(found.factories)

    def test_third_party_handler_is_selected_by_name_and_receives_changes(self, fake):
        """from_plugins(["acme"]) builds the third-party handler, which then gets every change."""
        fake.acme()
        bus = EventBus.from_plugins(["acme"])
        with bus:
            AlienEvent.Finished().emit()
        (handler,) = bus.handlers
        assert "AcmeHandler" == type(handler).__name__
        assert [AlienEvent.Finished()] == [change.event for change in handler.changes]

    def test_plugin_object_may_offer_several_factories(self, fake):
        """A plugin that is an object (module:attribute) offering two factories lists both handlers."""
        fake.tools()
        found = installed_plugins()
        assert (
            PluginInfo("tools", "acme-tools", "0.2.0", ("acme-tools", "acme-failing"))
            in found.plugins
        )
        assert ["Tool"] == [
            type(h).__name__ for h in EventBus.from_plugins(["acme-tools"]).handlers
        ]

    def test_plugin_may_contribute_event_types(self, fake):
        """A plugin's alien_events_event_types hook makes its event types known, so the wire format reads them."""
        fake.add(
            "acme-events",
            "3.0",
            {"rockets": "acme_events_plugin"},
            {"acme_events_plugin": EVENT_TYPES},
        )
        found = installed_plugins()
        assert PluginInfo("rockets", "acme-events", "3.0", ()) in found.plugins
        rocket_type = lookup_event_type("AcmeRocketLaunched")
        assert "RocketLaunched" == rocket_type.__name__
        line = (
            '{"type":"created","id":"r1","parentId":null,"createdAt":"2026-01-01T00:00:00Z",'
            '"event":{"type":"AcmeRocketLaunched","rocket":"falcon"},"state":"none","seq":0}'
        )
        assert rocket_type(rocket="falcon") == loads(line).event

    def test_discover_takes_explicit_entry_points(self):
        """discover(entry_points=...) loads only the entry points given, even ones with no distribution."""
        entry_point = importlib.metadata.EntryPoint(
            name="structlog", value="alien_events_structlog._plugin", group="alien_events"
        )
        found = discover(entry_points=[entry_point])
        assert [PluginInfo("structlog", "<unknown distribution>", "", ("structlog",))] == list(
            found.plugins
        )
        assert ["structlog"] == list(found.factories)

    def test_dispatch_is_a_plain_tuple_of_the_handlers_the_factories_made(self, tmp_path):
        """After set-up the bus holds a plain tuple of the handlers themselves (pluggy is not in the delivery path)."""
        bus = EventBus.from_plugins(["jsonl", "structlog"], jsonl={"path": tmp_path / "e.jsonl"})
        try:
            assert tuple is type(bus.handlers)
            assert [JsonLinesHandler, StructlogHandler] == handler_types(bus)
        finally:
            bus.close()


# -- broken plugins ------------------------------------------------------------------------------


class TestBrokenPlugins:
    def test_import_failure_is_reported_with_entry_point_and_distribution_while_others_load(
        self, fake
    ):
        """A plugin whose import fails is listed as a failure naming entry point and distribution; the rest load."""
        fake.broken()
        fake.acme()
        found = installed_plugins()
        assert ["acme", "console", "jsonl", "postgres", "structlog"] == [
            info.entry_point for info in found.plugins
        ]
        (failure,) = found.failures
        assert ("broken", "acme-broken-plugin 0.0.1") == (failure.entry_point, failure.distribution)
        assert (
            "alien-events plugin 'broken' from distribution acme-broken-plugin 0.0.1 failed to load: "
            "ModuleNotFoundError: No module named 'acme_dependency_that_is_not_installed'"
        ) == str(failure)

    def test_recorded_import_failure_keeps_the_original_exception_as_cause(self, fake):
        """The recorded PluginLoadError has the import's exception as its __cause__, for the traceback."""
        fake.broken()
        (failure,) = installed_plugins().failures
        assert ModuleNotFoundError is type(failure.__cause__)

    def test_hook_returning_something_else_than_handler_factories_is_a_load_failure(self, fake):
        """A plugin whose hook returns a non-HandlerFactory fails to load with a reason saying so."""
        fake.add("acme-sloppy", "0.1", {"sloppy": "acme_sloppy"}, {"acme_sloppy": NOT_A_FACTORY})
        found = installed_plugins()
        (failure,) = found.failures
        assert (
            "TypeError: alien_events_handler_factories() must return HandlerFactory objects, got str"
        ) == failure.reason
        assert REAL_INFOS == list(found.plugins)

    def test_hook_that_raises_is_a_load_failure(self, fake):
        """A plugin whose hook raises fails to load, and the other plugins still load."""
        fake.add("acme-raising", "0.1", {"raising": "acme_raising"}, {"acme_raising": RAISING_HOOK})
        found = installed_plugins()
        assert [("raising", "acme-raising 0.1", "RuntimeError: no factories today")] == [
            (f.entry_point, f.distribution, f.reason) for f in found.failures
        ]
        assert REAL == sorted(found.factories)

    def test_unselected_broken_plugin_does_not_stop_the_others(self, fake, tmp_path):
        """Without strict, a broken plugin that is not selected does not stop the bus being built."""
        fake.broken()
        bus = EventBus.from_plugins(["jsonl"], jsonl={"path": tmp_path / "e.jsonl"})
        bus.close()
        assert [JsonLinesHandler] == handler_types(bus)

    def test_selecting_the_broken_plugin_raises_its_load_error(self, fake):
        """Selecting a plugin that failed to import raises its PluginLoadError, not 'not found'."""
        fake.broken()
        with pytest.raises(PluginLoadError) as caught:
            EventBus.from_plugins(["broken"])
        assert ("broken", "acme-broken-plugin 0.0.1") == (
            caught.value.entry_point,
            caught.value.distribution,
        )

    def test_selected_broken_plugin_error_keeps_the_import_exception_as_cause(self, fake):
        """The PluginLoadError raised for a selected broken plugin still has the import's exception as cause."""
        fake.broken()
        with pytest.raises(PluginLoadError) as caught:
            EventBus.from_plugins(["broken"])
        assert ModuleNotFoundError is type(caught.value.__cause__)

    def test_strict_flag_makes_any_load_failure_fatal(self, fake, tmp_path):
        """from_plugins(strict=True) raises the PluginLoadError even for a plugin that is not selected."""
        fake.broken()
        with pytest.raises(PluginLoadError) as caught:
            EventBus.from_plugins(["jsonl"], strict=True, jsonl={"path": tmp_path / "e.jsonl"})
        assert "broken" == caught.value.entry_point
        assert ModuleNotFoundError is type(caught.value.__cause__)

    def test_strict_discover_raises_on_the_first_failure(self, fake):
        """discover(strict=True) raises the failure instead of recording it."""
        fake.broken()
        with pytest.raises(PluginLoadError):
            discover(strict=True)

    @pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " on "])
    def test_plugins_strict_variable_makes_load_failures_fatal(self, fake, tmp_path, value):
        """ALIEN_EVENTS_PLUGINS_STRICT set to a true value makes from_env raise on any load failure."""
        fake.broken()
        env = {
            "ALIEN_EVENTS_HANDLERS": "jsonl",
            "ALIEN_EVENTS_JSONL_PATH": str(tmp_path / "e.jsonl"),
            "ALIEN_EVENTS_PLUGINS_STRICT": value,
        }
        with pytest.raises(PluginLoadError):
            EventBus.from_env(env)

    @pytest.mark.parametrize("value", ["", "0", "false", "no", "off"])
    def test_plugins_strict_variable_false_values_keep_failures_recorded(
        self, fake, tmp_path, value
    ):
        """ALIEN_EVENTS_PLUGINS_STRICT set to a false value lets from_env skip the broken plugin."""
        fake.broken()
        env = {
            "ALIEN_EVENTS_HANDLERS": "jsonl",
            "ALIEN_EVENTS_JSONL_PATH": str(tmp_path / "e.jsonl"),
            "ALIEN_EVENTS_PLUGINS_STRICT": value,
        }
        bus = EventBus.from_env(env)
        bus.close()
        assert [JsonLinesHandler] == handler_types(bus)

    def test_strict_argument_wins_over_the_variable(self, fake, tmp_path):
        """from_env(strict=False) ignores ALIEN_EVENTS_PLUGINS_STRICT=1."""
        fake.broken()
        env = {
            "ALIEN_EVENTS_HANDLERS": "jsonl",
            "ALIEN_EVENTS_JSONL_PATH": str(tmp_path / "e.jsonl"),
            "ALIEN_EVENTS_PLUGINS_STRICT": "1",
        }
        bus = EventBus.from_env(env, strict=False)
        bus.close()
        assert [JsonLinesHandler] == handler_types(bus)

    def test_none_loads_no_plugin_even_when_strict(self, fake):
        """ALIEN_EVENTS_HANDLERS=none loads no plugin at all, so a broken one cannot fail it."""
        fake.broken()
        env = {"ALIEN_EVENTS_HANDLERS": "none", "ALIEN_EVENTS_PLUGINS_STRICT": "1"}
        assert () == EventBus.from_env(env).handlers

    def test_load_error_is_an_import_error_and_a_plugin_error(self, fake):
        """PluginLoadError is caught by except ImportError, PluginError, SdkError and AlienEventsError."""
        fake.broken()
        (failure,) = installed_plugins().failures
        for base in (ImportError, PluginError, SdkError, AlienEventsError):
            assert isinstance(failure, base), base


# -- selection ----------------------------------------------------------------------------------


class TestSelection:
    def test_from_plugins_builds_the_named_handlers_in_order(self, tmp_path):
        """from_plugins builds the handlers in the order named, with the jsonl path given in code."""
        path = tmp_path / "e.jsonl"
        bus = EventBus.from_plugins(["structlog", "jsonl"], jsonl={"path": path})
        bus.close()
        assert [StructlogHandler, JsonLinesHandler] == handler_types(bus)
        assert path == bus.handlers[1].path

    def test_from_env_reads_handlers_and_options_from_variables(self, tmp_path):
        """from_env reads ALIEN_EVENTS_HANDLERS=jsonl,structlog and ALIEN_EVENTS_JSONL_PATH."""
        path = tmp_path / "e.jsonl"
        env = {"ALIEN_EVENTS_HANDLERS": "jsonl,structlog", "ALIEN_EVENTS_JSONL_PATH": str(path)}
        bus = EventBus.from_env(env)
        bus.close()
        assert [JsonLinesHandler, StructlogHandler] == handler_types(bus)
        assert path == bus.handlers[0].path

    def test_from_env_reads_the_process_environment_by_default(self, tmp_path, monkeypatch):
        """from_env() with no mapping reads os.environ."""
        path = tmp_path / "e.jsonl"
        monkeypatch.setenv("ALIEN_EVENTS_HANDLERS", "jsonl")
        monkeypatch.setenv("ALIEN_EVENTS_JSONL_PATH", str(path))
        monkeypatch.delenv("ALIEN_EVENTS_PLUGINS_STRICT", raising=False)
        bus = EventBus.from_env()
        bus.close()
        assert [path] == [handler.path for handler in bus.handlers]

    def test_from_env_ignores_spaces_and_empty_names(self):
        """ALIEN_EVENTS_HANDLERS tolerates spaces and stray commas."""
        bus = EventBus.from_env({"ALIEN_EVENTS_HANDLERS": " structlog , ,"})
        assert [StructlogHandler] == handler_types(bus)

    @pytest.mark.parametrize(
        "env",
        [
            {},
            {"ALIEN_EVENTS_HANDLERS": ""},
            {"ALIEN_EVENTS_HANDLERS": "none"},
            {"ALIEN_EVENTS_HANDLERS": " none "},
        ],
    )
    def test_from_env_unset_empty_or_none_gives_no_handlers(self, env):
        """ALIEN_EVENTS_HANDLERS unset, empty or none gives a bus with no handlers."""
        assert () == EventBus.from_env(env).handlers

    @pytest.mark.parametrize("names", [[], ["none"]])
    def test_from_plugins_none_or_nothing_gives_no_handlers(self, names):
        """from_plugins([]) and from_plugins(["none"]) give a bus with no handlers."""
        assert () == EventBus.from_plugins(names).handlers

    def test_from_plugins_refuses_none_with_other_handlers(self):
        """'none' combined with a handler name is a PluginOptionError."""
        with pytest.raises(PluginOptionError, match="'none' cannot be combined"):
            EventBus.from_plugins(["none", "structlog"])

    def test_from_env_refuses_none_with_other_handlers(self):
        """ALIEN_EVENTS_HANDLERS=none,jsonl is a PluginOptionError."""
        with pytest.raises(PluginOptionError, match="'none' cannot be combined"):
            EventBus.from_env({"ALIEN_EVENTS_HANDLERS": "none,jsonl"})

    def test_none_with_other_handlers_error_names_only_the_real_variable(self):
        """The error for ALIEN_EVENTS_HANDLERS=none,jsonl names no variable that does not exist."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_env({"ALIEN_EVENTS_HANDLERS": "none,jsonl"})
        assert "ALIEN_EVENTS_HANDLERS_NAMES" not in str(caught.value)

    def test_from_plugins_takes_any_iterable_of_names(self):
        """from_plugins accepts a one-shot iterable of names, as its Iterable[str] signature says."""
        bus = EventBus.from_plugins(name for name in ["structlog"])
        assert [StructlogHandler] == handler_types(bus)

    def test_handlers_built_from_plugins_receive_every_change(self, tmp_path):
        """The jsonl handler built by name writes the program's changes, in delivery order."""
        path = tmp_path / "e.jsonl"
        bus = EventBus.from_plugins(["jsonl"], jsonl={"path": path})
        recorder = RecordingHandler()
        bus.add_handler(recorder)
        with bus:
            run_program()
        bus.close()
        assert recorder.changes == list(read_changes(path))
        assert PROGRAM_SHAPE == shape(EventTree(recorder.changes))

    def test_from_plugins_passes_ids_and_clock_to_the_bus(self):
        """from_plugins(ids=..., clock=...) makes a bus that uses them."""
        at = datetime(2026, 1, 1, tzinfo=UTC)
        bus = EventBus.from_plugins(
            ["none"], ids=lambda parent, event: "fixed-id", clock=lambda: at
        )
        recorder = RecordingHandler()
        bus.add_handler(recorder)
        with bus:
            AlienEvent.Finished().emit()
        (change,) = recorder.changes
        assert ("fixed-id", at) == (change.id, change.created_at)

    def test_from_env_passes_ids_and_clock_to_the_bus(self):
        """from_env(ids=..., clock=...) makes a bus that uses them."""
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=1)
        bus = EventBus.from_env({}, ids=lambda parent, event: "env-id", clock=lambda: at)
        recorder = RecordingHandler()
        bus.add_handler(recorder)
        with bus:
            AlienEvent.Finished().emit()
        (change,) = recorder.changes
        assert ("env-id", at) == (change.id, change.created_at)


# -- options ------------------------------------------------------------------------------------


ACME_DEFAULTS = {"prefix": "acme", "limit": 10, "ratio": 0.5, "loud": False, "where": None}


class TestOptions:
    def test_defaults_fill_options_not_given(self, fake):
        """Options not given take the factory's defaults."""
        fake.acme()
        (handler,) = EventBus.from_plugins(["acme"]).handlers
        assert ACME_DEFAULTS == handler.options

    def test_code_options_are_checked_and_passed_to_the_factory(self, fake):
        """Options in code reach the factory; an int is fine for a float and a str for a path."""
        fake.acme()
        bus = EventBus.from_plugins(
            ["acme"], acme={"prefix": "p", "limit": 3, "ratio": 2, "loud": True, "where": "/srv/x"}
        )
        (handler,) = bus.handlers
        expected = {
            "prefix": "p",
            "limit": 3,
            "ratio": 2.0,
            "loud": True,
            "where": pathlib.Path("/srv/x"),
        }
        assert expected == handler.options
        assert float is type(handler.options["ratio"])

    def test_environment_options_are_parsed_from_text_by_kind(self, fake):
        """ALIEN_EVENTS_ACME_<OPTION> values are parsed as str, int, float, bool and path."""
        fake.acme()
        env = {
            "ALIEN_EVENTS_HANDLERS": "acme",
            "ALIEN_EVENTS_ACME_PREFIX": "from-env",
            "ALIEN_EVENTS_ACME_LIMIT": "7",
            "ALIEN_EVENTS_ACME_RATIO": "2.5",
            "ALIEN_EVENTS_ACME_LOUD": "yes",
            "ALIEN_EVENTS_ACME_WHERE": "/var/log/acme",
        }
        (handler,) = EventBus.from_env(env).handlers
        expected = {
            "prefix": "from-env",
            "limit": 7,
            "ratio": 2.5,
            "loud": True,
            "where": pathlib.Path("/var/log/acme"),
        }
        assert expected == handler.options

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1", True),
            ("true", True),
            ("YES", True),
            (" on ", True),
            ("0", False),
            ("false", False),
            ("No", False),
            ("off", False),
            ("", False),
        ],
    )
    def test_boolean_options_read_the_usual_words(self, fake, text, expected):
        """A bool option from the environment reads 1/0, true/false, yes/no, on/off in any case."""
        fake.acme()
        env = {"ALIEN_EVENTS_HANDLERS": "acme", "ALIEN_EVENTS_ACME_LOUD": text}
        (handler,) = EventBus.from_env(env).handlers
        assert expected == handler.options["loud"]

    def test_code_options_win_over_the_environment(self, tmp_path):
        """An option given in code wins over its ALIEN_EVENTS_<PLUGIN>_<OPTION> variable."""
        in_code = tmp_path / "code.jsonl"
        env = {
            "ALIEN_EVENTS_HANDLERS": "jsonl",
            "ALIEN_EVENTS_JSONL_PATH": str(tmp_path / "env.jsonl"),
        }
        bus = EventBus.from_env(env, jsonl={"path": in_code})
        bus.close()
        assert [in_code] == [handler.path for handler in bus.handlers]
        assert not (tmp_path / "env.jsonl").exists()

    def test_variables_of_a_hyphenated_handler_use_underscores(self, fake):
        """The options of handler acme-tools are read from ALIEN_EVENTS_ACME_TOOLS_<OPTION>."""
        fake.tools()
        env = {"ALIEN_EVENTS_HANDLERS": "acme-tools", "ALIEN_EVENTS_ACME_TOOLS_LIMIT": "4"}
        (handler,) = EventBus.from_env(env).handlers
        assert {"limit": 4} == handler.options

    def test_bad_code_option_names_plugin_option_variable_and_expectation(self):
        """A wrongly typed option in code says plugin, option, its variable and what it expects."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["jsonl"], jsonl={"path": 3})
        assert ("jsonl", "path") == (caught.value.plugin, caught.value.option)
        assert (
            "plugin 'jsonl', option 'path' (ALIEN_EVENTS_JSONL_PATH): expected a path, got 3"
        ) == str(caught.value)

    @pytest.mark.parametrize(
        ("options", "option", "reason"),
        [
            ({"limit": True}, "limit", "expected an integer, got True"),
            ({"limit": "3"}, "limit", "expected an integer, got '3'"),
            ({"ratio": "half"}, "ratio", "expected a number, got 'half'"),
            ({"loud": "yes"}, "loud", "expected true or false, got 'yes'"),
            ({"prefix": 1}, "prefix", "expected a string, got 1"),
            ({"where": 1.5}, "where", "expected a path, got 1.5"),
        ],
    )
    def test_code_options_of_the_wrong_kind_are_refused(self, fake, options, option, reason):
        """Code options must have the option's kind: no bool for an int, no text for a number or a bool."""
        fake.acme()
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["acme"], acme=options)
        assert ("acme", option, reason) == (
            caught.value.plugin,
            caught.value.option,
            caught.value.reason,
        )

    def test_bad_environment_option_names_the_variable_and_what_it_expects(self, fake):
        """A variable that does not parse says plugin, option, variable, what is expected and what it got."""
        fake.acme()
        env = {"ALIEN_EVENTS_HANDLERS": "acme", "ALIEN_EVENTS_ACME_LIMIT": "lots"}
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_env(env)
        assert ("acme", "limit") == (caught.value.plugin, caught.value.option)
        assert str(caught.value).startswith(
            "plugin 'acme', option 'limit' (ALIEN_EVENTS_ACME_LIMIT): expected an integer, got 'lots'"
        )

    def test_bad_boolean_variable_lists_the_accepted_words(self, tmp_path):
        """ALIEN_EVENTS_JSONL_FSYNC=maybe is refused with the accepted words."""
        env = {
            "ALIEN_EVENTS_HANDLERS": "jsonl",
            "ALIEN_EVENTS_JSONL_PATH": str(tmp_path / "e.jsonl"),
            "ALIEN_EVENTS_JSONL_FSYNC": "maybe",
        }
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_env(env)
        assert (
            "plugin 'jsonl', option 'fsync' (ALIEN_EVENTS_JSONL_FSYNC): expected true or false, "
            "got 'maybe' (expected one of 1/0, true/false, yes/no, on/off)"
        ) == str(caught.value)
        assert not (tmp_path / "e.jsonl").exists()

    def test_unknown_option_lists_the_plugins_options(self, tmp_path):
        """An option the plugin does not have is refused, listing the options it has."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["jsonl"], jsonl={"path": tmp_path / "e.jsonl", "paht": "x"})
        assert (
            "jsonl",
            "paht",
            "unknown option (the options are: backups, fsync, max_bytes, path)",
        ) == (
            caught.value.plugin,
            caught.value.option,
            caught.value.reason,
        )

    def test_missing_required_option_says_what_to_give(self):
        """A required option not given says which, its variable, and what to give."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["jsonl"])
        assert (
            "plugin 'jsonl', option 'path' (ALIEN_EVENTS_JSONL_PATH): required: give a path"
        ) == str(caught.value)

    def test_missing_required_option_from_the_environment(self):
        """ALIEN_EVENTS_HANDLERS=jsonl without ALIEN_EVENTS_JSONL_PATH says the path is required."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_env({"ALIEN_EVENTS_HANDLERS": "jsonl"})
        assert ("jsonl", "path") == (caught.value.plugin, caught.value.option)

    def test_options_for_a_plugin_that_is_not_selected_are_refused(self, tmp_path):
        """Options given for a plugin that is not among the handlers are a PluginOptionError."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["structlog"], jsonl={"path": tmp_path / "e.jsonl"})
        assert "jsonl" == caught.value.plugin
        assert "which is not among the handlers ['structlog']" in str(caught.value)

    def test_handler_that_cannot_be_created_is_an_option_error_with_the_cause(self, tmp_path):
        """A factory that fails (a path in a missing folder) is a PluginOptionError naming the plugin, with the cause."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["jsonl"], jsonl={"path": tmp_path / "missing" / "e.jsonl"})
        assert "jsonl" == caught.value.plugin
        assert str(caught.value).startswith("plugin 'jsonl': the handler could not be created: ")
        assert FileNotFoundError is type(caught.value.__cause__)

    def test_a_factory_raising_its_own_option_error_is_not_rewrapped(self, fake):
        """A factory that raises a PluginOptionError naming one of its options has it raised unchanged."""
        fake.add("acme-sampler", "0.1", {"sampler": "acme_sampler"}, {"acme_sampler": CHECKING})
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["acme-sampler"], **{"acme-sampler": {"rate": 1.5}})
        assert ("acme-sampler", "rate", "expected 0 < rate <= 1, got 1.5") == (
            caught.value.plugin,
            caught.value.option,
            caught.value.reason,
        )
        assert (
            "plugin 'acme-sampler', option 'rate' (ALIEN_EVENTS_ACME_SAMPLER_RATE): "
            "expected 0 < rate <= 1, got 1.5"
        ) == str(caught.value)
        assert caught.value.__cause__ is None
        assert (
            0.5
            == EventBus.from_plugins(["acme-sampler"], **{"acme-sampler": {"rate": 0.5}})
            .handlers[0]
            .rate
        )

    def test_factory_value_error_is_an_option_error(self, fake):
        """A factory raising ValueError gives a PluginOptionError with its message."""
        fake.tools()
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["acme-failing"])
        assert (
            "plugin 'acme-failing': the handler could not be created: the tool cannot start"
        ) == str(caught.value)

    def test_handlers_already_built_are_closed_when_a_later_one_fails(self, fake):
        """When a later handler cannot be built, the handlers already built are closed."""
        fake.acme()
        fake.tools()
        with pytest.raises(PluginOptionError):
            EventBus.from_plugins(["acme", "acme-failing"])
        assert [True] == [handler.closed for handler in acme_module().MADE]

    def test_option_error_is_a_value_error_and_a_plugin_error(self):
        """PluginOptionError is caught by except ValueError, PluginError, SdkError and AlienEventsError."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["jsonl"])
        for base in (ValueError, PluginError, SdkError, AlienEventsError):
            assert isinstance(caught.value, base), base

    def test_option_kind_must_be_a_supported_type(self):
        """Option only takes str, int, float, bool or pathlib.Path as its kind."""
        with pytest.raises(ValueError):
            Option(list)

    @pytest.mark.parametrize(
        ("kind", "expected"),
        [
            (str, "a string"),
            (int, "an integer"),
            (float, "a number"),
            (bool, "true or false"),
            (pathlib.Path, "a path"),
        ],
    )
    def test_option_says_what_it_expects(self, kind, expected):
        """Option.expected() words each kind for error messages."""
        assert expected == Option(kind).expected()


# -- unknown names ------------------------------------------------------------------------------


class TestUnknownNames:
    def test_unknown_name_lists_the_installed_handlers(self):
        """An unknown handler name raises PluginNotFoundError listing the installed handlers."""
        with pytest.raises(PluginNotFoundError) as caught:
            EventBus.from_plugins(["jsnol"])
        assert (
            "no alien-events handler plugin named 'jsnol'; installed: console, jsonl, postgres, structlog"
            == str(caught.value)
        )
        assert ("jsnol", REAL) == (caught.value.name, caught.value.installed)

    def test_unknown_name_from_the_environment_lists_the_installed_handlers(self, fake):
        """An unknown name in ALIEN_EVENTS_HANDLERS lists every installed handler, third-party ones too."""
        fake.acme()
        with pytest.raises(PluginNotFoundError) as caught:
            EventBus.from_env({"ALIEN_EVENTS_HANDLERS": "structlog,nope"})
        assert ["acme", "console", "jsonl", "postgres", "structlog"] == caught.value.installed

    def test_unknown_name_with_an_unrelated_broken_plugin_is_not_found(self, fake):
        """An unknown name is PluginNotFoundError even when another plugin failed to load, not that plugin's error."""
        fake.broken()
        with pytest.raises(PluginNotFoundError) as caught:
            EventBus.from_plugins(["jsnol"])
        assert ("jsnol", REAL) == (caught.value.name, caught.value.installed)

    def test_unknown_name_with_nothing_installed_says_what_to_install(self):
        """With no plugin installed the error suggests installing one."""
        with pytest.raises(PluginNotFoundError) as caught:
            Plugins({}, (), ()).factory("jsonl")
        assert (
            "no alien-events handler plugin named 'jsonl'; installed: none "
            "(install one, e.g. alien-events-jsonl)"
        ) == str(caught.value)

    def test_not_found_error_is_a_lookup_error_and_a_plugin_error(self):
        """PluginNotFoundError is caught by except LookupError, PluginError, SdkError and AlienEventsError."""
        with pytest.raises(PluginNotFoundError) as caught:
            EventBus.from_plugins(["nope"])
        for base in (LookupError, PluginError, SdkError, AlienEventsError):
            assert isinstance(caught.value, base), base

    def test_handler_factory_is_exported_and_frozen(self):
        """HandlerFactory is public and immutable, with empty options and description by default."""
        factory = HandlerFactory("x", RecordingHandler)
        assert ({}, "") == (dict(factory.options), factory.description)
        with pytest.raises(AttributeError):
            factory.name = "y"


# -- publish: replaying a recorded stream --------------------------------------------------------


class TestPublish:
    def test_publish_delivers_the_change_as_it_is(self):
        """publish() hands the very change to the handlers: same id, seq and times, nothing new."""
        source = RecordingHandler()
        with EventBus([source]):
            run_program()
        target = RecordingHandler()
        replay = EventBus([target])
        for change in source.changes:
            replay.publish(change)
        assert source.changes == target.changes
        assert all(a is b for a, b in zip(source.changes, target.changes, strict=True))

    def test_replayed_stream_folds_into_the_same_tree(self):
        """A stream replayed into a second bus folds into the same event tree."""
        source = RecordingHandler()
        with EventBus([source]):
            run_program()
        tree = EventTree()
        replay = EventBus([tree])
        for change in source.changes:
            replay.publish(change)
        assert EventTree(source.changes) == tree
        assert PROGRAM_SHAPE == shape(tree)

    def test_recorded_jsonl_stream_replays_into_a_second_store_identically(self, tmp_path):
        """Changes read back from a jsonl file and published into a second jsonl bus give the same changes and bytes."""
        first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
        recorder = RecordingHandler()
        bus = EventBus.from_plugins(["jsonl"], jsonl={"path": first})
        bus.add_handler(recorder)
        with bus:
            run_program()
        bus.close()
        replay = EventBus.from_plugins(["jsonl"], jsonl={"path": second})
        for change in read_changes(first):
            replay.publish(change)
        replay.close()
        assert recorder.changes == list(read_changes(second))
        assert first.read_bytes() == second.read_bytes()

    def test_publish_does_not_need_the_bus_to_be_current(self):
        """publish() delivers without the bus being current, and emits nothing to another bus."""
        change = StateChanged.unchecked("e1", 1_767_225_600_000_000, EventState.SUCCESS, None, 3)
        target, other = RecordingHandler(), RecordingHandler()
        with EventBus([other]):
            EventBus([target]).publish(change)
        assert ([change], []) == (target.changes, other.changes)

    def test_publish_keeps_failed_changes_and_their_errors(self):
        """A failed change is published with its error unchanged."""
        error = AlienError(code="BOOM", message="it broke")
        change = StateChanged.unchecked("e1", 1_767_225_600_000_000, EventState.FAILED, error, 1)
        target = RecordingHandler()
        EventBus([target]).publish(change)
        assert [dumps(change)] == [dumps(c) for c in target.changes]

    def test_publish_refuses_what_is_not_a_change(self):
        """publish() of something that is not a change raises TypeError and delivers nothing."""
        target = RecordingHandler()
        with pytest.raises(TypeError) as caught:
            EventBus([target]).publish({"type": "created"})
        assert "publish() takes Created, Updated or StateChanged, got dict" == str(caught.value)
        assert [] == target.changes

    def test_publish_keeps_unknown_events(self):
        """A change of an event type this process does not know is replayed as it was read."""
        line = (
            '{"type":"created","id":"x1","parentId":null,"createdAt":"2026-01-01T00:00:00Z",'
            '"event":{"type":"SomeoneElsesEvent","answer":42},"state":"none","seq":0}'
        )
        change = loads(line)
        target = RecordingHandler()
        EventBus([target]).publish(change)
        (delivered,) = target.changes
        assert UnknownEvent is type(delivered.event)
        assert dumps(change) == dumps(delivered)

    def test_apublish_delivers_the_change_as_it_is(self):
        """apublish(), the async twin, delivers the very changes too."""
        source = RecordingHandler()
        with EventBus([source]):
            run_program()
        target = RecordingHandler()
        replay = EventBus([target])

        async def main():
            for change in source.changes:
                await replay.apublish(change)

        asyncio.run(main())
        assert source.changes == target.changes

    def test_apublish_refuses_what_is_not_a_change(self):
        """apublish() of something that is not a change raises TypeError."""
        with pytest.raises(TypeError):
            asyncio.run(EventBus().apublish("created"))


# -- close --------------------------------------------------------------------------------------


class Closer:
    """A handler whose close() is recorded, and may fail."""

    def __init__(self, name, log, error=None):
        self.name, self.log, self.error = name, log, error

    def on_event_change(self, change):
        pass

    def close(self):
        self.log.append(self.name)
        if self.error is not None:
            raise self.error


class TestClose:
    def test_close_closes_every_handler_that_can_be_closed_in_order(self):
        """bus.close() calls close() on each handler that has one, in handler order."""
        log = []
        bus = EventBus([Closer("a", log), RecordingHandler(), Closer("b", log)])
        bus.close()
        assert ["a", "b"] == log

    def test_close_reports_failures_after_closing_all(self):
        """A failing close() does not stop the others; then EventHandlerError reports every failure."""
        log = []
        disk, busy = OSError("disk full"), ValueError("busy")
        bus = EventBus([Closer("a", log, disk), Closer("b", log), Closer("c", log, busy)])
        with pytest.raises(EventHandlerError) as caught:
            bus.close()
        assert ["a", "b", "c"] == log
        assert (disk, busy) == caught.value.errors
        assert "closing handlers failed: disk full" == str(caught.value)
        assert disk is caught.value.__cause__

    def test_close_keeps_the_handlers(self):
        """After close() the bus still lists its handlers."""
        handlers = (Closer("a", []), RecordingHandler())
        bus = EventBus(handlers)
        bus.close()
        assert handlers == bus.handlers

    def test_close_closes_plugin_handlers(self, fake, tmp_path):
        """close() of a bus made from plugins closes their handlers: the third-party one and the jsonl file."""
        fake.acme()
        bus = EventBus.from_plugins(["acme", "jsonl"], jsonl={"path": tmp_path / "e.jsonl"})
        bus.close()
        assert [True] == [handler.closed for handler in acme_module().MADE]
        with pytest.raises(EventHandlerError) as caught, bus:
            AlienEvent.Finished().emit()
        assert [RuntimeError] == [type(error) for error in caught.value.errors]
