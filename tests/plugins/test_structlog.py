"""
The structlog plugin: ``StructlogHandler``, the plugin selected by name, and end-to-end runs.

The handler logs each change to ``structlog.get_logger("alien_events")`` and never configures
structlog: the tests check entries with ``structlog.testing.capture_logs``, through processor
chains an application would set up, and through structlog's default (it prints to stdout).
The end-to-end tests run a real program in a subprocess with
``ALIEN_EVENTS_HANDLERS=jsonl,structlog``: once with the plugins installed here, and once
(slow) from wheels installed in a fresh virtual environment, as users install them.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tracemalloc
import venv

import pytest
import structlog
from structlog.testing import capture_logs

from alien_events_api import (
    AlienError,
    AlienEvent,
    Created,
    Event,
    EventState,
    PushProgress,
    StateChanged,
    Updated,
    event_type,
)
from alien_events_jsonl import read_changes
from alien_events_sdk import (
    EventBus,
    EventTree,
    PluginInfo,
    PluginOptionError,
    installed_plugins,
)
from alien_events_sdk.testing import shape
from alien_events_structlog import ERROR_KEY, EVENT_KEY, StructlogHandler
from alien_events_structlog._handler import MAX_REMEMBERED

ROOT = pathlib.Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@event_type(tag="StructlogTestAudit")
class Audit(Event):
    """An event whose fields are named like structlog's own keys."""

    event: str
    level: str


@pytest.fixture(autouse=True)
def _structlog_defaults():
    """Every test starts and ends with structlog's default configuration and no bound context."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def sequential_ids():
    """An ids factory giving id-1, id-2, ... so entries can be compared whole."""
    counter = itertools.count(1)
    return lambda parent_id, event: f"id-{next(counter)}"


def logging_bus(handler=None):
    """A bus with one structlog handler and predictable ids."""
    return EventBus([handler or StructlogHandler()], ids=sequential_ids())


class ListLogger:
    """A logger an application might plug in: keeps (logger name, method, rendered line)."""

    def __init__(self, name, lines):
        self.name, self.lines = name, lines

    def _log(self, method, message):
        self.lines.append((self.name, method, message))

    def msg(self, message):
        self._log("msg", message)

    def info(self, message):
        self._log("info", message)

    def error(self, message):
        self._log("error", message)


class ListLoggerFactory:
    """structlog logger factory making ``ListLogger``s; records the name given to get_logger."""

    def __init__(self):
        self.lines = []

    def __call__(self, *args):
        return ListLogger(args[0] if args else None, self.lines)


def configure_json(*, contextvars=False):
    """Configure structlog as an application might: level, JSON renderer, its own logger."""
    factory = ListLoggerFactory()
    processors = [structlog.contextvars.merge_contextvars] if contextvars else []
    processors += [structlog.processors.add_log_level, structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors, logger_factory=factory, cache_logger_on_first_use=False
    )
    return factory


def emit_build():
    """A started stack with an image push (created, updated, completed) inside it."""
    with AlienEvent.BuildingStack(stack="s").in_scope():
        handle = AlienEvent.PushingImage(image="i").emit(EventState.STARTED)
        handle.update(AlienEvent.PushingImage(image="i", progress=PushProgress("Up", 1, 2, 3, 4)))
        handle.complete()


BUILD_ENTRIES = [
    {
        "event": "BuildingStack started",
        "log_level": "info",
        "event_id": "id-1",
        "seq": 0,
        "parent_id": None,
        EVENT_KEY: {"type": "BuildingStack", "stack": "s"},
        "state": "started",
    },
    {
        "event": "PushingImage started",
        "log_level": "info",
        "event_id": "id-2",
        "seq": 0,
        "parent_id": "id-1",
        EVENT_KEY: {"type": "PushingImage", "image": "i", "progress": None},
        "state": "started",
    },
    {
        "event": "PushingImage updated",
        "log_level": "info",
        "event_id": "id-2",
        "seq": 1,
        EVENT_KEY: {
            "type": "PushingImage",
            "image": "i",
            "progress": {
                "operation": "Up",
                "layersUploaded": 1,
                "totalLayers": 2,
                "bytesUploaded": 3,
                "totalBytes": 4,
            },
        },
    },
    {
        "event": "PushingImage succeeded",
        "log_level": "info",
        "event_id": "id-2",
        "seq": 2,
        "state": "success",
    },
    {
        "event": "BuildingStack succeeded",
        "log_level": "info",
        "event_id": "id-1",
        "seq": 1,
        "state": "success",
    },
]

BOOM_ERROR = {
    "code": "RUNTIME_ERROR",
    "message": "boom",
    "retryable": False,
    "internal": False,
    "httpStatusCode": 500,
}


# -- the handler --------------------------------------------------------------------------------


class TestStructlogHandler:
    def test_started_updated_and_succeeded_events_are_info_entries(self):
        """Each change is one info entry: a short message, the event under alien_event, ids, seq and state."""
        bus = logging_bus()
        with capture_logs() as logs, bus:
            emit_build()
        assert BUILD_ENTRIES == logs

    def test_failure_is_an_error_entry_with_the_error(self):
        """A failed event is logged at error level as "<Type> failed: <message>", with alien_error."""
        bus = logging_bus()
        with (
            capture_logs() as logs,
            bus,
            pytest.raises(RuntimeError),
            AlienEvent.BuildingStack(stack="s").in_scope(),
        ):
            raise RuntimeError("boom")
        assert {
            "event": "BuildingStack failed: boom",
            "log_level": "error",
            "event_id": "id-1",
            "seq": 1,
            "state": "failed",
            ERROR_KEY: BOOM_ERROR,
        } == logs[-1]

    def test_event_created_failed_is_an_error_entry(self):
        """An event emitted already failed is one error entry carrying its error."""
        bus = logging_bus()
        with capture_logs() as logs, bus:
            AlienEvent.BuildingStack(stack="s").emit(
                EventState.FAILED, error=AlienError(code="NOPE", message="no stack")
            )
        assert [
            {
                "event": "BuildingStack failed: no stack",
                "log_level": "error",
                "event_id": "id-1",
                "seq": 0,
                "parent_id": None,
                EVENT_KEY: {"type": "BuildingStack", "stack": "s"},
                "state": "failed",
                ERROR_KEY: {
                    "code": "NOPE",
                    "message": "no stack",
                    "retryable": False,
                    "internal": False,
                },
            }
        ] == logs

    def test_plain_event_is_logged_as_emitted(self):
        """An event without a lifecycle reads "<Type> emitted", state none."""
        bus = logging_bus()
        with capture_logs() as logs, bus:
            AlienEvent.Finished().emit()
        assert [("Finished emitted", "info", "none")] == [
            (e["event"], e["log_level"], e["state"]) for e in logs
        ]

    def test_event_fields_never_collide_with_structlogs_keys(self):
        """Event fields named event and level stay under alien_event; structlog's event is the message."""
        bus = logging_bus()
        with capture_logs() as logs, bus:
            Audit(event="login", level="admin").emit()
        (entry,) = logs
        assert ("StructlogTestAudit emitted", "info") == (entry["event"], entry["log_level"])
        assert {"type": "StructlogTestAudit", "event": "login", "level": "admin"} == entry[
            EVENT_KEY
        ]

    def test_state_change_of_an_unseen_event_names_its_id(self):
        """A state change for an event whose creation it never saw reads "event <first 8 of id> ..."."""
        handler = StructlogHandler()
        change = StateChanged.unchecked("0123456789abcdef", T0, EventState.SUCCESS, None, 4)
        with capture_logs() as logs:
            handler.on_event_change(change)
        assert [
            {
                "event": "event 01234567 succeeded",
                "log_level": "info",
                "event_id": "0123456789abcdef",
                "seq": 4,
                "state": "success",
            }
        ] == logs

    def test_update_seen_first_names_later_state_changes(self):
        """A stream joined mid-way: the type learnt from an update names the later state change."""
        handler = StructlogHandler()
        with capture_logs() as logs:
            handler.on_event_change(
                Updated.unchecked("e1", T0, AlienEvent.BuildingImage(image="i"), 1)
            )
            handler.on_event_change(
                StateChanged.unchecked("e1", T0 + 1, EventState.SUCCESS, None, 2)
            )
        assert ["BuildingImage updated", "BuildingImage succeeded"] == [e["event"] for e in logs]

    def test_finished_event_is_forgotten(self):
        """Once an event has ended, a stray later state change no longer knows its type."""
        handler = StructlogHandler()
        with capture_logs() as logs:
            bus = EventBus([handler], ids=sequential_ids())
            handle = bus.run(lambda: AlienEvent.BuildingImage(image="i").emit(EventState.STARTED))
            handle.complete()
            handler.on_event_change(StateChanged.unchecked("id-1", T0, EventState.SUCCESS, None, 2))
        assert ["BuildingImage started", "BuildingImage succeeded", "event id-1 succeeded"] == [
            e["event"] for e in logs
        ]

    @pytest.mark.parametrize(
        "state",
        [
            EventState.STARTED,
            EventState.NONE,
        ],
    )
    def test_memory_stays_flat_however_many_events_pass(self, state):
        """5,000 events (plain, or started then completed) grow the handler's memory by less than 128 KiB."""

        def drop(logger, method_name, event_dict):
            raise structlog.DropEvent

        structlog.configure(processors=[drop], cache_logger_on_first_use=False)
        bus = EventBus([StructlogHandler()])

        def emit(count):
            with bus:
                for _ in range(count):
                    handle = AlienEvent.Finished().emit(state)
                    if state is EventState.STARTED:
                        handle.complete()

        emit(1000)  # warm up caches
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            emit(5_000)
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert growth < 128 * 1024, growth

    def test_something_that_is_not_a_change_is_refused(self):
        """on_event_change of something that is not a change raises TypeError."""
        with pytest.raises(TypeError) as caught:
            StructlogHandler().on_event_change({"type": "created"})
        assert "expected a change, got dict" == str(caught.value)

    def test_logger_is_alien_events_by_default_and_can_be_named(self):
        """Entries go to get_logger("alien_events"), or to the logger name given."""
        factory = configure_json()
        with EventBus([StructlogHandler(), StructlogHandler("deploys")]):
            AlienEvent.Finished().emit()
        assert ["alien_events", "deploys"] == [name for name, _, _ in factory.lines]

    def test_never_configures_structlog(self, capsys):
        """With structlog unconfigured, logging leaves it unconfigured and uses its default (stdout)."""
        bus = logging_bus()
        with bus:
            AlienEvent.Finished().emit()
        assert not structlog.is_configured()
        out = ANSI.sub("", capsys.readouterr().out)
        assert re.search(r"\[info\s*\] Finished emitted\s+alien_event=", out), out

    def test_keeps_the_applications_configuration(self):
        """Logging through the handler leaves the application's structlog configuration as it was."""
        configure_json()
        before = structlog.get_config()
        with logging_bus():
            emit_build()
        assert before == structlog.get_config()

    def test_entries_go_through_the_applications_processor_chain(self):
        """With an application's JSON renderer and context, entries are its JSON lines, level and context included."""
        factory = configure_json(contextvars=True)
        with logging_bus(), structlog.contextvars.bound_contextvars(request_id="r-7"):
            Audit(event="login", level="admin").emit()
            with pytest.raises(RuntimeError), AlienEvent.BuildingStack(stack="s").in_scope():
                raise RuntimeError("boom")
        assert ["info", "info", "error"] == [method for _, method, _ in factory.lines]
        assert [
            {
                "event": "StructlogTestAudit emitted",
                "level": "info",
                "request_id": "r-7",
                "event_id": "id-1",
                "seq": 0,
                "parent_id": None,
                EVENT_KEY: {"type": "StructlogTestAudit", "event": "login", "level": "admin"},
                "state": "none",
            },
            {
                "event": "BuildingStack started",
                "level": "info",
                "request_id": "r-7",
                "event_id": "id-2",
                "seq": 0,
                "parent_id": None,
                EVENT_KEY: {"type": "BuildingStack", "stack": "s"},
                "state": "started",
            },
            {
                "event": "BuildingStack failed: boom",
                "level": "error",
                "request_id": "r-7",
                "event_id": "id-2",
                "seq": 1,
                "state": "failed",
                ERROR_KEY: BOOM_ERROR,
            },
        ] == [json.loads(line) for _, _, line in factory.lines]

    def test_handler_made_before_configuration_follows_it(self):
        """A handler built before the application configures structlog uses the configuration in force when it logs."""
        handler = StructlogHandler()
        factory = configure_json()
        with logging_bus(handler):
            AlienEvent.Finished().emit()
        assert ["Finished emitted"] == [json.loads(line)["event"] for _, _, line in factory.lines]

    def test_works_with_structlog_on_top_of_standard_logging(self, caplog):
        """With structlog's stdlib integration, entries are records of the "alien_events" logging logger."""
        structlog.configure(
            processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
        caplog.set_level(logging.INFO, logger="alien_events")
        with (
            logging_bus(),
            pytest.raises(RuntimeError),
            AlienEvent.BuildingStack(stack="s").in_scope(),
        ):
            raise RuntimeError("boom")
        assert [
            ("alien_events", "INFO", "BuildingStack started"),
            ("alien_events", "ERROR", "BuildingStack failed: boom"),
        ] == [(r.name, r.levelname, json.loads(r.getMessage())["event"]) for r in caplog.records]


class TestRememberedTypes:
    def test_past_the_limit_the_oldest_open_event_is_forgotten_first(self):
        """With one event more than ``MAX_REMEMBERED`` open, only the oldest one's type is forgotten."""
        handler = StructlogHandler()
        with capture_logs() as logs:
            for n in range(MAX_REMEMBERED + 1):
                handler.on_event_change(
                    Created.unchecked(
                        f"e{n}",
                        None,
                        T0 + n,
                        AlienEvent.BuildingImage(image=f"i{n}"),
                        EventState.STARTED,
                        None,
                    )
                )
            for n in (0, 1, MAX_REMEMBERED):
                handler.on_event_change(
                    StateChanged.unchecked(f"e{n}", T0 + 20_000, EventState.SUCCESS, None, 1)
                )
        assert [
            "event e0 succeeded",
            "BuildingImage succeeded",
            "BuildingImage succeeded",
        ] == [entry["event"] for entry in logs[-3:]]


# -- the plugin ---------------------------------------------------------------------------------


class TestStructlogPlugin:
    def test_plugin_is_installed_with_its_distribution(self):
        """installed_plugins() lists the structlog plugin from alien-events-structlog."""
        import importlib.metadata

        version = importlib.metadata.version("alien-events-structlog")
        assert PluginInfo("structlog", "alien-events-structlog", version, ("structlog",)) in (
            installed_plugins().plugins
        )

    def test_from_plugins_selects_the_handler_by_name(self):
        """from_plugins(["structlog"]) makes a bus whose one handler logs every change."""
        bus = EventBus.from_plugins(["structlog"], ids=sequential_ids())
        assert [StructlogHandler] == [type(h) for h in bus.handlers]
        with capture_logs() as logs, bus:
            emit_build()
        assert BUILD_ENTRIES == logs

    def test_from_plugins_passes_the_logger_name(self):
        """from_plugins(structlog={"logger_name": ...}) logs to that logger."""
        factory = configure_json()
        with EventBus.from_plugins(["structlog"], structlog={"logger_name": "deploys"}):
            AlienEvent.Finished().emit()
        assert ["deploys"] == [name for name, _, _ in factory.lines]

    def test_from_env_selects_the_handler_and_reads_the_logger_name(self):
        """ALIEN_EVENTS_HANDLERS=structlog with ALIEN_EVENTS_STRUCTLOG_LOGGER_NAME picks handler and logger."""
        factory = configure_json()
        env = {
            "ALIEN_EVENTS_HANDLERS": "structlog",
            "ALIEN_EVENTS_STRUCTLOG_LOGGER_NAME": "from-env",
        }
        with EventBus.from_env(env):
            AlienEvent.Finished().emit()
        assert [("from-env", "info")] == [(name, method) for name, method, _ in factory.lines]

    def test_default_logger_name_through_the_plugin(self):
        """The plugin's handler logs to "alien_events" unless told otherwise."""
        factory = configure_json()
        with EventBus.from_env({"ALIEN_EVENTS_HANDLERS": "structlog"}):
            AlienEvent.Finished().emit()
        assert ["alien_events"] == [name for name, _, _ in factory.lines]

    def test_bad_logger_name_names_plugin_option_and_expectation(self):
        """A logger_name that is not a string is refused, naming plugin, option and what it expects."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["structlog"], structlog={"logger_name": 3})
        assert (
            "plugin 'structlog', option 'logger_name' (ALIEN_EVENTS_STRUCTLOG_LOGGER_NAME): "
            "expected a string, got 3"
        ) == str(caught.value)

    def test_plugin_does_not_configure_structlog(self):
        """Building the handler through the plugin leaves structlog unconfigured."""
        EventBus.from_env({"ALIEN_EVENTS_HANDLERS": "structlog"})
        assert not structlog.is_configured()


# -- end to end ---------------------------------------------------------------------------------

PROGRAM = """\
from alien_events_api import AlienEvent, EventState, PushProgress
from alien_events_sdk import EventBus

bus = EventBus.from_env()
with bus:
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
bus.close()
"""

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

PROGRAM_LOG = [
    ("info", "BuildingStack started"),
    ("info", "BuildingImage started"),
    ("info", "PushingImage started"),
    ("info", "PushingImage updated"),
    ("info", "PushingImage succeeded"),
    ("info", "BuildingImage succeeded"),
    ("info", "BuildingImage started"),
    ("error", "BuildingImage failed: boom"),
    ("info", "Finished emitted"),
    ("info", "BuildingStack succeeded"),
]

PROBE = """\
import json
import alien_events_jsonl, alien_events_sdk, alien_events_structlog
modules = (alien_events_sdk, alien_events_jsonl, alien_events_structlog)
print(json.dumps({
    "files": [module.__file__ for module in modules],
    "plugins": [
        [p.entry_point, p.distribution, list(p.handlers)]
        for p in alien_events_sdk.installed_plugins().plugins
    ],
}))
"""

# structlog's default dev renderer: "<time> [<level>   ] <message>   <key>=<value> ..."
LOG_LINE = re.compile(
    r"\[(\w+)\s*\] (.+?)\s+(?=(?:alien_error|alien_event|event_id)=).*?\bevent_id=(\S+)"
)


def run_program(python, workdir):
    """Run PROGRAM with ``python`` (isolated mode) with the jsonl and structlog handlers selected."""
    script = workdir / "program.py"
    script.write_text(PROGRAM, encoding="utf-8")
    jsonl = workdir / "events.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIEN_EVENTS_")}
    env.pop("FORCE_COLOR", None)
    env.update(
        NO_COLOR="1",
        ALIEN_EVENTS_HANDLERS="jsonl,structlog",
        ALIEN_EVENTS_JSONL_PATH=str(jsonl),
    )
    done = subprocess.run(
        [str(python), "-I", str(script)],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        check=False,
    )
    assert (0, "") == (done.returncode, done.stderr), done.stdout + done.stderr
    return done.stdout, jsonl


def check_program_output(stdout, jsonl):
    """The jsonl file holds the program's tree; stdout holds one structlog line per change."""
    changes = list(read_changes(jsonl))
    tree = EventTree(changes)
    assert PROGRAM_SHAPE == shape(tree)
    (stack,) = tree.roots
    failed = stack.children[1]
    assert ("RUNTIME_ERROR", "boom") == (failed.error.code, failed.error.message)
    push = stack.children[0].children[0]
    assert PushProgress("Uploading", 1, 2, 10, 20) == push.latest_progress()
    lines = ANSI.sub("", stdout).splitlines()
    parsed = [LOG_LINE.search(line) for line in lines]
    assert all(parsed), stdout
    assert PROGRAM_LOG == [(m[1], m[2]) for m in parsed]
    assert [change.id for change in changes] == [m[3] for m in parsed]


class TestEndToEnd:
    def test_program_with_both_plugins_selected_by_environment(self, tmp_path):
        """A real program using EventBus.from_env() with jsonl,structlog writes the tree to the file and logs each change to stdout."""
        stdout, jsonl = run_program(sys.executable, tmp_path)
        check_program_output(stdout, jsonl)

    @pytest.mark.slow
    def test_wheels_installed_in_a_fresh_venv_run_the_program(self, tmp_path):
        """Wheels of api, sdk, jsonl and structlog installed (not editable) in a fresh venv run the same program."""
        checkout = tmp_path / "checkout"  # a copy, so building leaves the repository untouched
        ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        for part in ("src", "dists", "plugins"):
            shutil.copytree(ROOT / part, checkout / part, ignore=ignore)
        wheels = tmp_path / "wheels"
        projects = [
            checkout / "dists" / "api",
            checkout / "dists" / "sdk",
            checkout / "plugins" / "jsonl",
            checkout / "plugins" / "structlog",
        ]
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels)]
            + [str(p) for p in projects],
            capture_output=True,
            text=True,
            check=False,
        )
        assert 0 == built.returncode, built.stdout + built.stderr
        found = sorted(w.name.split("-")[0] for w in wheels.glob("*.whl"))
        assert [
            "alien_events_api",
            "alien_events_jsonl",
            "alien_events_sdk",
            "alien_events_structlog",
        ] == found

        env_dir = tmp_path / "venv"
        venv.create(env_dir, with_pip=True, clear=True)
        python = env_dir / "bin" / "python"
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *map(str, sorted(wheels.glob("*.whl")))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert 0 == installed.returncode, installed.stdout + installed.stderr

        probe = subprocess.run(
            [
                str(python),
                "-I",
                "-c",
                PROBE,
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
        )
        assert 0 == probe.returncode, probe.stdout + probe.stderr
        report = json.loads(probe.stdout)
        site = (env_dir / "lib").resolve()
        assert [True, True, True] == [
            pathlib.Path(f).resolve().is_relative_to(site) for f in report["files"]
        ]
        assert [
            ["jsonl", "alien-events-jsonl", ["jsonl"]],
            ["structlog", "alien-events-structlog", ["structlog"]],
        ] == report["plugins"]

        workdir = tmp_path / "run"
        workdir.mkdir()
        stdout, jsonl = run_program(python, workdir)
        check_program_output(stdout, jsonl)
