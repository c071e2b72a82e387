"""
The ``alien-events`` command line: demo, view, schema, plugins, help, errors and exit codes.

Every test runs the real command in a child process: ``python -m alien_events_console._cli``
and the ``alien-events`` script installed next to the interpreter. The demo runs with
``--pause 0`` (or a small pause) so it takes a fraction of a second. Third-party and broken
plugins are real distributions (a package and a ``.dist-info`` folder) in a temporary folder
on the child's ``PYTHONPATH``. ``view --follow`` is fed by a thread that appends to the file
and waits, through ``/proc/PID/fdinfo``, until the viewer has read what is there, so the
viewer really follows. The live renderer is checked in a real pseudo-terminal (``os.openpty``
with a window size), reading what the program drew.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pathlib
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time

import jsonschema
import pytest

from alien_events_api import Created, StateChanged, Updated
from alien_events_jsonl import BadLineError, read_changes
from alien_events_sdk import EventTree, installed_plugins

MODULE = [sys.executable, "-m", "alien_events_console._cli"]
SCRIPT = pathlib.Path(sys.executable).parent / "alien-events"
WAYS = {"module": MODULE, "script": [str(SCRIPT)]}
TIMEOUT = 120.0  # the bound on any child process (never reached when all is well)
FOLLOW_TIMEOUT = 30.0  # the bound on any wait for the follower to catch up
NOTE = (
    "Every change was recorded to alien-events-demo.jsonl\n"
    "Replay it with: alien-events view alien-events-demo.jsonl\n"
)

# The recorded demo, as an outline: (type, name, state, children), children sorted by type
# and name (the parallel resources are created in any order); retries keep their order.
DEMO_OUTLINE = [
    ("LoadingConfiguration", "", "success", []),
    (
        "BuildingStack",
        "shop",
        "success",
        [
            *(
                (
                    "BuildingResource",
                    name,
                    "success",
                    [
                        ("BuildingImage", f"shop-{name}:1.4.0", "success", []),
                        ("CompilingCode", language, "success", []),
                    ],
                )
                for name, language in [
                    ("api", "rust"),
                    ("web", "typescript"),
                    ("worker", "typescript"),
                ]
            ),
            ("RunningPreflights", "shop", "success", []),
        ],
    ),
    (
        "PushingStack",
        "shop",
        "success",
        [
            ("EnsuringDockerRepository", "shop", "success", []),
            (
                "PushingResource",
                "api",
                "success",
                [("PushingImage", "shop-api:1.4.0", "success", [])],
            ),
            (
                "PushingResource",
                "web",
                "success",
                [("PushingImage", "shop-web:1.4.0", "success", [])],
            ),
            (
                "PushingResource",
                "worker",
                "success",
                [
                    ("PushingImage", "shop-worker:1.4.0", "failed", []),
                    ("PushingImage", "shop-worker:1.4.0", "success", []),
                ],
            ),
        ],
    ),
    ("CreatingRelease", "acme/shop", "success", []),
    (
        "DeployingStack",
        "shop",
        "success",
        [
            ("AssumingRole", "arn:aws:iam::123456789012:role/alien-deployer", "success", []),
            ("DeployingCloudFormationStack", "shop-prod", "success", []),
            ("RunningTestWorker", "shop", "success", []),
        ],
    ),
    ("Finished", "", "success", []),
]

NAME_FIELDS = (
    "stack",
    "stack_name",
    "resource_name",
    "image",
    "language",
    "project",
    "repository_name",
    "role_arn",
    "cfn_stack_name",
)


def name_of(event):
    """The field that names an event in the outline ('' for events without one)."""
    for field in NAME_FIELDS:
        if hasattr(event, field):
            return getattr(event, field)
    return ""


def outline(nodes, *, roots=True):
    """The tree as (type, name, state, children); children sorted by type and name (stably)."""
    rows = [
        (
            type(node.event).__name__,
            name_of(node.event),
            node.state.value,
            outline(node.children, roots=False),
        )
        for node in nodes
    ]
    return rows if roots else sorted(rows, key=lambda row: (row[0], row[1]))


def clean_env(**extra):
    """The environment without alien-events, CI and terminal settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ALIEN_EVENTS_")
        and key not in {"CI", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM", "PYTHONPATH"}
    }
    env.update(extra)
    return env


def run(way, *args, cwd, env=None, timeout=TIMEOUT):
    """Run ``alien-events ARGS`` one way (module or script) in ``cwd``; return the result."""
    return subprocess.run(
        [*WAYS[way], *map(str, args)],
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tree_of(path):
    """The tree folded from a JSON-lines file."""
    return EventTree(read_changes(path))


@pytest.fixture(name="way", params=sorted(WAYS))
def _way(request):
    """How the command is run: ``python -m alien_events_console._cli`` or the installed script."""
    return request.param


@pytest.fixture(name="recording", scope="module")
def _recording(tmp_path_factory):
    """A demo run recorded once (no pause, rendered by no handler): its JSON-lines file."""
    folder = tmp_path_factory.mktemp("demo")
    done = run("script", "demo", "--handlers", "none", "--pause", "0", cwd=folder)
    assert 0 == done.returncode, done.stderr
    return folder / "alien-events-demo.jsonl"


# -- fake distributions ------------------------------------------------------------------------

ROCKET = """
    from alien_events_api import Event, event_type
    from alien_events_sdk import hookimpl


    @event_type
    class RocketLaunched(Event):
        \"\"\"A rocket left the pad.\"\"\"

        rocket: str


    @hookimpl
    def alien_events_event_types():
        return [RocketLaunched]
"""


def install_fake(root, name, version, entry_points, modules):
    """Write distribution ``name`` (a package per module, and a ``.dist-info``) into ``root``."""
    for module, source in modules.items():
        package = root / module
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[alien_events]\n{lines}", encoding="utf-8")


@pytest.fixture(name="fake_site")
def _fake_site(tmp_path):
    """A folder of fake distributions: a broken plugin and one that defines an event type."""
    root = tmp_path / "site-packages"
    install_fake(
        root, "acme-broken-plugin", "0.0.1", {"broken": "acme_broken_plugin"},
        {"acme_broken_plugin": "import acme_dependency_that_is_missing\n"},
    )  # fmt: skip
    install_fake(root, "acme-rocket", "2.0.0", {"rocket": "acme_rocket"}, {"acme_rocket": ROCKET})
    return root


# -- help, version, usage ----------------------------------------------------------------------


class TestHelp:
    def test_top_level_help_lists_every_command_and_the_exit_codes(self, way, tmp_path):
        """``alien-events --help`` exits 0 and names the four commands and the exit codes."""
        done = run(way, "--help", cwd=tmp_path)
        assert (0, "") == (done.returncode, done.stderr)
        assert done.stdout.startswith("usage: alien-events [-h] [--version] COMMAND ...\n")
        for command in ("demo", "view", "schema", "plugins"):
            assert re.search(rf"^    {command} +\S", done.stdout, re.MULTILINE), command
        assert "exit codes:\n  0    success\n" in done.stdout

    @pytest.mark.parametrize("command", ["demo", "view", "schema", "plugins"])
    def test_every_command_has_help(self, way, command, tmp_path):
        """``alien-events COMMAND --help`` exits 0 with the command's usage and the exit codes."""
        done = run(way, command, "--help", cwd=tmp_path)
        assert (0, "") == (done.returncode, done.stderr)
        assert done.stdout.startswith(f"usage: alien-events {command} [-h]")
        assert "exit codes:" in done.stdout

    def test_no_command_prints_the_help_and_exits_2(self, way, tmp_path):
        """``alien-events`` alone prints the help on stderr and exits 2."""
        done = run(way, cwd=tmp_path)
        assert (2, "") == (done.returncode, done.stdout)
        assert done.stderr.startswith("usage: alien-events")

    def test_version_is_the_distributions(self, way, tmp_path):
        """``alien-events --version`` prints the alien-events-console version."""
        import importlib.metadata

        done = run(way, "--version", cwd=tmp_path)
        version = importlib.metadata.version("alien-events-console")
        assert (0, f"alien-events {version}\n") == (done.returncode, done.stdout)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["launch"], "argument COMMAND: invalid choice: 'launch'"),
            (["demo", "--mode", "fancy"], "argument --mode: invalid choice: 'fancy'"),
            (["demo", "--speed", "0"], "argument --speed: must be greater than 0, got '0'"),
            (["demo", "--pause", "soon"], "argument --pause: expected seconds, got 'soon'"),
            (
                ["demo", "--jsonl", "a.jsonl", "--no-jsonl"],
                "argument --no-jsonl: not allowed with argument --jsonl",
            ),
            (
                ["demo", "--speed", "2", "--pause", "0"],
                "argument --pause: not allowed with argument --speed",
            ),
            (["view"], "give a JSON-lines FILE or --postgres DSN (one of the two)"),
            (
                ["view", "x.jsonl", "--json", "--mode", "plain"],
                "argument --mode: not allowed with argument --json",
            ),
            (["schema", "--indent", "-1"], "argument --indent: must be 0 or more, got '-1'"),
            (["plugins", "--verbose"], "unrecognized arguments: --verbose"),
        ],
    )
    def test_bad_arguments_are_usage_errors(self, way, args, message, tmp_path):
        """A bad argument exits 2 with argparse's message naming it, and no traceback."""
        done = run(way, *args, cwd=tmp_path)
        assert (2, "") == (done.returncode, done.stdout)
        assert message in done.stderr
        assert "Traceback" not in done.stderr


# -- demo --------------------------------------------------------------------------------------


class TestDemo:
    def test_demo_records_the_whole_build_and_deploy(self, way, tmp_path):
        """The demo exits 0 and records stacks, resources, pushes (one retried) and a deploy."""
        done = run(way, "demo", "--mode", "plain", "--pause", "0", cwd=tmp_path)
        assert 0 == done.returncode, done.stderr
        tree = tree_of(tmp_path / "alien-events-demo.jsonl")
        assert DEMO_OUTLINE == outline(tree.roots)
        assert [] == tree.orphans

    def test_demo_pushes_images_layer_by_layer(self, recording):
        """Each image push is one event updated with PushProgress, layer by layer, to the total."""
        changes = list(read_changes(recording))
        pushes = [
            c
            for c in changes
            if isinstance(c, Created) and type(c.event).__name__ == "PushingImage"
        ]
        api = next(c for c in pushes if c.event.image == "shop-api:1.4.0")
        progress = [api.event.progress] + [
            c.event.progress for c in changes if isinstance(c, Updated) and c.id == api.id
        ]
        assert [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5] == [p.layers_uploaded for p in progress]
        assert {5} == {p.total_layers for p in progress}
        sent = [p.bytes_uploaded for p in progress]
        assert sorted(sent) == sent
        assert (progress[-1].total_bytes, "Pushed") == (sent[-1], progress[-1].operation)
        assert ["Uploading"] * 11 == [p.operation for p in progress[:-1]]

    def test_the_flaky_push_fails_once_then_succeeds_on_retry(self, recording):
        """The worker's first push fails (a 503 under a layer upload error), the retry succeeds."""
        tree = tree_of(recording)
        worker = next(
            node
            for node in tree
            if type(node.event).__name__ == "PushingResource"
            and node.event.resource_name == "worker"
        )
        first, retry = worker.children
        assert ("failed", "success") == (first.state.value, retry.state.value)
        chain, error = [], first.error
        while error is not None:
            chain.append(error.code)
            error = error.source
        assert ["LAYER_UPLOAD_FAILED", "HTTP_503", "CONNECTION_RESET"] == chain
        assert (
            "uploading layer 3 of 4 of shop-worker:1.4.0 failed (attempt 1)" == first.error.message
        )
        assert first.error.retryable
        assert first.error.hint
        assert [0, 0, 1, 1, 2, 2] == [
            c.event.progress.layers_uploaded
            for c in read_changes(recording)
            if isinstance(c, Created | Updated) and c.id == first.id
        ]

    def test_resources_are_built_in_parallel_under_the_stack(self, way, tmp_path):
        """The three resources start before any of them ends, each a child of the stack's event."""
        done = run(way, "demo", "--handlers", "none", "--pause", "0.02", cwd=tmp_path)
        assert 0 == done.returncode, done.stderr
        changes = list(read_changes(tmp_path / "alien-events-demo.jsonl"))
        stack = next(
            c
            for c in changes
            if isinstance(c, Created) and type(c.event).__name__ == "BuildingStack"
        )
        builds = {
            c.id: c
            for c in changes
            if isinstance(c, Created) and type(c.event).__name__ == "BuildingResource"
        }
        assert {stack.id} == {c.parent_id for c in builds.values()}
        order = [
            "start" if isinstance(c, Created) else "end"
            for c in changes
            if c.id in builds and isinstance(c, Created | StateChanged)
        ]
        assert ["start"] * 3 + ["end"] * 3 == order

    def test_the_recording_matches_the_schema_command(self, way, recording, tmp_path):
        """Every recorded line is valid against the JSON Schema that ``alien-events schema`` prints."""
        schema = json.loads(run(way, "schema", cwd=tmp_path).stdout)
        validator = jsonschema.Draft202012Validator(schema)
        lines = recording.read_text(encoding="utf-8").splitlines()
        assert 100 == len(lines)
        assert [] == [
            (number, error.message)
            for number, line in enumerate(lines, 1)
            for error in validator.iter_errors(json.loads(line))
        ]

    def test_demo_says_where_it_recorded_and_replaces_its_old_recording(self, way, tmp_path):
        """The demo names its file and how to view it; a second run replaces the first's file."""
        path = tmp_path / "runs" / "demo.jsonl"
        path.parent.mkdir()
        for _ in range(2):
            done = run(
                way, "demo", "--mode", "plain", "--pause", "0", "--jsonl", path, cwd=tmp_path
            )
            assert 0 == done.returncode, done.stderr
        expected = (
            f"Every change was recorded to {path}\nReplay it with: alien-events view {path}\n"
        )
        assert done.stderr.endswith(expected)
        assert 6 == len(tree_of(path).roots)  # one run: the first one's file was replaced

    def test_demo_plain_mode_prints_the_run_then_a_summary(self, way, tmp_path):
        """In plain mode the console prints the run as lines on stderr, then failures and a summary."""
        done = run(way, "demo", "--mode", "plain", "--pause", "0", cwd=tmp_path)
        assert (0, "") == (done.returncode, done.stdout)
        lines = done.stderr.splitlines()
        assert "[2] ▶ Building stack shop" in lines
        assert (
            "[3.3.1]   hint: The registry was briefly unavailable; pushes are retried once."
            in lines
        )
        assert "Failed (1):" in lines
        assert re.fullmatch(r". 1 failed, 26 succeeded · total \d+\.\ds", lines[-3]), lines[-3]
        assert "\x1b[" not in done.stderr  # no cursor movement, no colour: it is not a terminal

    def test_alien_events_handlers_none_renders_nothing_but_still_records(self, way, tmp_path):
        """With ALIEN_EVENTS_HANDLERS=none nothing is rendered, and the JSON-lines file is written."""
        env = clean_env(ALIEN_EVENTS_HANDLERS="none")
        done = run(way, "demo", "--pause", "0", cwd=tmp_path, env=env)
        assert (0, "", NOTE) == (done.returncode, done.stdout, done.stderr)
        assert DEMO_OUTLINE == outline(tree_of(tmp_path / "alien-events-demo.jsonl").roots)

    def test_alien_events_handlers_picks_the_handlers(self, way, tmp_path):
        """ALIEN_EVENTS_HANDLERS=structlog logs every change as a structlog entry, plus the file."""
        env = clean_env(ALIEN_EVENTS_HANDLERS="structlog")
        done = run(way, "demo", "--pause", "0", cwd=tmp_path, env=env)
        assert 0 == done.returncode, done.stderr
        changes = list(read_changes(tmp_path / "alien-events-demo.jsonl"))
        assert len(changes) == len(done.stdout.splitlines())
        assert "BuildingStack" in done.stdout

    def test_the_environments_jsonl_path_is_appended_to(self, way, tmp_path):
        """With ALIEN_EVENTS_HANDLERS=jsonl and its path set, two runs append to that one file."""
        path = tmp_path / "shared.jsonl"
        env = clean_env(ALIEN_EVENTS_HANDLERS="jsonl", ALIEN_EVENTS_JSONL_PATH=str(path))
        for _ in range(2):
            done = run(way, "demo", "--pause", "0", cwd=tmp_path, env=env)
            assert (0, "") == (done.returncode, done.stdout)
        assert 12 == len(tree_of(path).roots)
        assert not (tmp_path / "alien-events-demo.jsonl").exists()

    def test_handlers_option_wins_over_the_environment(self, way, tmp_path):
        """``--handlers none --no-jsonl`` runs with no handler at all, whatever the environment says."""
        env = clean_env(ALIEN_EVENTS_HANDLERS="nonexistent")
        done = run(
            way, "demo", "--pause", "0", "--handlers", "none", "--no-jsonl", cwd=tmp_path, env=env
        )
        assert (0, "", "") == (done.returncode, done.stdout, done.stderr)
        assert [] == list(tmp_path.iterdir())

    def test_a_failed_run_exits_1_with_the_reason(self, way, tmp_path):
        """``--fail`` makes the retry fail too: exit 1, the reason on stderr, the failure recorded."""
        done = run(way, "demo", "--mode", "plain", "--pause", "0", "--fail", cwd=tmp_path)
        assert (1, "") == (done.returncode, done.stdout)
        error = (
            "alien-events demo: error: the simulated run failed: "
            "uploading layer 3 of 4 of shop-worker:1.4.0 failed (attempt 2)"
        )
        assert [error, *NOTE.splitlines()] == done.stderr.splitlines()[-3:]
        assert "Failed (4):" in done.stderr.splitlines()  # both pushes, the resource, the stack
        assert re.fullmatch(
            r". 4 failed, 17 succeeded · total \d+\.\ds", done.stderr.splitlines()[-4]
        )
        assert "Traceback" not in done.stderr
        roots = tree_of(tmp_path / "alien-events-demo.jsonl").roots
        assert [
            ("LoadingConfiguration", "success"),
            ("BuildingStack", "success"),
            ("PushingStack", "failed"),
        ] == [(type(root.event).__name__, root.state.value) for root in roots]

    def test_ctrl_c_ends_every_started_event_as_cancelled_and_exits_130(self, way, tmp_path):
        """SIGINT while three threads build stops them too: exit 130, every started event CANCELLED."""
        path = tmp_path / "alien-events-demo.jsonl"
        demo = subprocess.Popen(
            [*WAYS[way], "demo", "--mode", "plain", "--pause", "0.2"],
            cwd=tmp_path,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + TIMEOUT
        while not (path.exists() and 3 == path.read_bytes().count(b'"BuildingResource"')):
            assert demo.poll() is None, demo.communicate()
            assert time.monotonic() < deadline, "the demo never started its three builds"
            time.sleep(0.01)
        demo.send_signal(signal.SIGINT)
        _, err = demo.communicate(timeout=TIMEOUT)
        assert 130 == demo.returncode, err
        assert ["alien-events demo: error: interrupted", *NOTE.splitlines()] == err.splitlines()[
            -3:
        ]
        tree = tree_of(path)
        assert [] == [node for node in tree if node.state.value == "started"]
        builds = [node for node in tree if type(node.event).__name__ == "BuildingResource"]
        assert [("failed", "CANCELLED")] * 3 == [(n.state.value, n.error.code) for n in builds]
        assert ["LoadingConfiguration", "BuildingStack"] == [
            type(root.event).__name__ for root in tree.roots
        ]
        assert "CANCELLED" == tree.roots[1].error.code

    def test_an_unknown_plugin_exits_2_listing_the_installed_ones(self, way, tmp_path):
        """``--handlers nope`` exits 2 with the PluginNotFoundError message, and keeps old files."""
        (tmp_path / "alien-events-demo.jsonl").write_text("kept\n", encoding="utf-8")
        done = run(way, "demo", "--handlers", "nope", cwd=tmp_path)
        installed = ", ".join(sorted(installed_plugins().factories))
        expected = f"alien-events demo: error: no alien-events handler plugin named 'nope'; installed: {installed}\n"
        assert (2, "", expected) == (done.returncode, done.stdout, done.stderr)
        assert "kept\n" == (tmp_path / "alien-events-demo.jsonl").read_text(encoding="utf-8")

    def test_an_unknown_plugin_in_the_environment_exits_2(self, way, tmp_path):
        """ALIEN_EVENTS_HANDLERS naming an unknown plugin exits 2 with the same message."""
        done = run(way, "demo", cwd=tmp_path, env=clean_env(ALIEN_EVENTS_HANDLERS="console,nope"))
        assert 2 == done.returncode
        assert "error: no alien-events handler plugin named 'nope'; installed: " in done.stderr
        assert "Traceback" not in done.stderr

    @pytest.mark.parametrize(
        ("args", "env", "message"),
        [
            (
                ["--handlers", "none,console"],
                {},
                "alien-events demo: error: --handlers='none,console': 'none' cannot be combined with other handlers\n",
            ),
            (
                ["--handlers", "none", "--mode", "live"],
                {},
                (
                    "alien-events demo: error: --mode sets the console handler's mode, but the "
                    "handlers are ['jsonl'] (add 'console' to --handlers or ALIEN_EVENTS_HANDLERS)\n"
                ),
            ),
            (
                ["--handlers", "none"],
                {"ALIEN_EVENTS_JSONL_FSYNC": "maybe"},
                (
                    "alien-events demo: error: plugin 'jsonl', option 'fsync' "
                    "(ALIEN_EVENTS_JSONL_FSYNC): expected true or false, got 'maybe' "
                    "(expected one of 1/0, true/false, yes/no, on/off)\n"
                ),
            ),
        ],
    )
    def test_bad_handler_choices_exit_2(self, way, args, env, message, tmp_path):
        """Handlers that cannot work together, or a bad plugin option, exit 2 with the reason."""
        done = run(way, "demo", "--pause", "0", *args, cwd=tmp_path, env=clean_env(**env))
        assert (2, "", message) == (done.returncode, done.stdout, done.stderr)

    def test_a_recording_in_a_missing_folder_exits_2_naming_it(self, way, tmp_path):
        """``--jsonl`` in a folder that does not exist exits 2 with a message naming the path."""
        path = tmp_path / "missing" / "demo.jsonl"
        done = run(way, "demo", "--handlers", "none", "--jsonl", path, cwd=tmp_path)
        assert (2, "") == (done.returncode, done.stdout)
        assert done.stderr.startswith(
            "alien-events demo: error: plugin 'jsonl': the handler could not be created: "
        )
        assert str(path) in done.stderr
        assert "Traceback" not in done.stderr


# -- view --------------------------------------------------------------------------------------


def view_json(way, path, *args, cwd):
    """Run ``view --json`` on ``path``; return the result and the parsed tree."""
    done = run(way, "view", "--json", *args, path, cwd=cwd)
    return done, json.loads(done.stdout) if done.stdout else None


def torn_copy(recording, tmp_path):
    """A copy of the recording cut in the middle of its last line, as a crash leaves it."""
    data = recording.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    torn = tmp_path / "crashed.jsonl"
    torn.write_bytes(data[: last + (len(data) - last) // 2])
    return torn, data[:last]


class TestView:
    def test_view_json_prints_the_folded_tree(self, way, recording, tmp_path):
        """``view --json`` prints the tree folded from the file (EventTree.to_dict), nothing else."""
        done, tree = view_json(way, recording, cwd=tmp_path)
        assert (0, "") == (done.returncode, done.stderr)
        assert tree_of(recording).to_dict() == tree
        assert done.stdout.startswith('{\n  "roots": [\n')

    def test_view_json_indent_0_prints_one_line(self, way, recording, tmp_path):
        """``view --json --indent 0`` prints the tree on one line."""
        done, tree = view_json(way, recording, "--indent", "0", cwd=tmp_path)
        assert 1 == len(done.stdout.splitlines())
        assert tree_of(recording).to_dict() == tree

    def test_view_renders_the_tree_with_the_console(self, way, recording, tmp_path):
        """``view --mode plain`` renders the recorded run through the console handler, no escapes."""
        done = run(way, "view", "--mode", "plain", recording, cwd=tmp_path)
        assert (0, "") == (done.returncode, done.stderr)
        for name in ("shop", "shop-api:1.4.0", "shop-worker:1.4.0", "LAYER_UPLOAD_FAILED"):
            assert name in done.stdout, name
        assert "\x1b[" not in done.stdout

    def test_a_torn_last_line_is_left_out_and_reported(self, way, recording, tmp_path):
        """A file cut mid-line (a crash) is viewed whole but its last line, which a note reports."""
        torn, complete = torn_copy(recording, tmp_path)
        number = complete.count(b"\n") + 1
        done, tree = view_json(way, torn, cwd=tmp_path)
        whole = tmp_path / "whole.jsonl"
        whole.write_bytes(complete)
        assert 0 == done.returncode
        assert tree_of(whole).to_dict() == tree
        assert (
            f"note: {torn}:{number}: torn last line: no newline: the writer did not finish it "
            "(left out: the run that wrote it stopped mid-line)\n"
        ) == done.stderr

    def test_a_crashed_run_renders_with_the_console(self, way, recording, tmp_path):
        """The console renders a file cut short (still-running events) and the notes follow."""
        data = recording.read_bytes().splitlines(keepends=True)
        crashed = tmp_path / "crashed.jsonl"
        crashed.write_bytes(b"".join(data[:40]) + data[40][:25])
        done = run(way, "view", "--mode", "plain", crashed, cwd=tmp_path)
        assert 0 == done.returncode
        assert "shop" in done.stdout
        notes = done.stderr.splitlines()
        assert (
            f"note: {crashed}:41: torn last line: no newline: the writer did not finish it (left out: the run that wrote it stopped mid-line)"
            == notes[0]
        )
        assert re.fullmatch(
            rf"note: \d+ events were still running when {re.escape(str(crashed))} ended .*",
            notes[1],
        )

    def test_a_bad_line_is_skipped_with_a_warning(self, way, recording, tmp_path):
        """Without --strict, a corrupt line is skipped with a warning naming its line number."""
        lines = recording.read_bytes().splitlines(keepends=True)
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(b"".join([*lines[:2], b'{"type":"created"}\n', *lines[2:]]))
        done, tree = view_json(way, bad, cwd=tmp_path)
        assert 0 == done.returncode
        assert tree_of(recording).to_dict() == tree
        assert [
            f"warning: {bad}:3: bad line: id: required field is missing (skipped; --strict stops at it)"
        ] == done.stderr.splitlines()

    @pytest.mark.parametrize("output", [["--json"], ["--mode", "plain"]])
    def test_strict_stops_at_a_bad_line_with_exit_1(self, way, output, recording, tmp_path):
        """``view --strict`` stops at a corrupt line: exit 1 and a message with the line number."""
        lines = recording.read_bytes().splitlines(keepends=True)
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(b"".join([*lines[:2], b"not json\n", *lines[2:]]))
        with pytest.raises(BadLineError) as caught:
            list(read_changes(bad, strict=True))
        done = run(way, "view", "--strict", *output, bad, cwd=tmp_path)
        assert 1 == done.returncode
        assert f"alien-events view: error: {caught.value}\n" == done.stderr
        assert f"{bad}:3: bad line: " in done.stderr
        assert "Traceback" not in done.stderr

    def test_strict_stops_at_a_torn_line_with_exit_1(self, way, recording, tmp_path):
        """``view --strict`` treats a torn last line as an error: exit 1 with its line number."""
        torn, complete = torn_copy(recording, tmp_path)
        number = complete.count(b"\n") + 1
        done, _ = view_json(way, torn, "--strict", cwd=tmp_path)
        expected = f"alien-events view: error: {torn}:{number}: torn last line: no newline: the writer did not finish it\n"
        assert (1, expected) == (done.returncode, done.stderr)

    def test_a_missing_file_exits_2_naming_it(self, way, tmp_path):
        """Viewing a file that does not exist exits 2 with a message naming it."""
        path = tmp_path / "nowhere.jsonl"
        done = run(way, "view", path, cwd=tmp_path)
        assert (2, "", f"alien-events view: error: {path}: no such file\n") == (
            done.returncode,
            done.stdout,
            done.stderr,
        )

    def test_a_folder_exits_2_naming_it(self, way, tmp_path):
        """Viewing a folder exits 2 saying it is a folder."""
        done = run(way, "view", "--follow", tmp_path, cwd=tmp_path)
        expected = f"alien-events view: error: {tmp_path}: is a directory, not a JSON-lines file\n"
        assert (2, expected) == (done.returncode, done.stderr)

    def test_an_empty_file_is_an_empty_tree(self, way, tmp_path):
        """An empty file views as an empty tree, with a note saying it holds no events."""
        path = tmp_path / "empty.jsonl"
        path.touch()
        done, tree = view_json(way, path, cwd=tmp_path)
        assert (0, {"roots": [], "orphans": []}) == (done.returncode, tree)
        assert f"note: {path} holds no events yet\n" == done.stderr

    def test_idle_timeout_needs_follow(self, way, recording, tmp_path):
        """``--idle-timeout`` without ``--follow`` is a usage error (exit 2)."""
        done = run(way, "view", "--idle-timeout", "1", recording, cwd=tmp_path)
        expected = "alien-events view: error: --idle-timeout applies only with --follow\n"
        assert (2, expected) == (done.returncode, done.stderr)


# -- view --follow -----------------------------------------------------------------------------

needs_proc = pytest.mark.skipif(
    not pathlib.Path("/proc/self/fdinfo").is_dir(),
    reason="needs /proc to see the follower's offset",
)


def read_offset(pid, path):
    """How far process ``pid`` has read ``path`` (its file offset), or -1 if it has not opened it."""
    offsets = [-1]
    fds = pathlib.Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            if fd.readlink() != path:
                continue
            info = pathlib.Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text(encoding="ascii")
        except OSError:  # closed meanwhile
            continue
        offsets.append(int(re.search(r"^pos:\s+(\d+)", info, re.MULTILINE).group(1)))
    return max(offsets)


def wait_until_read(process, path):
    """Wait until the follower has read all of ``path`` that there is now (bounded)."""
    size = path.stat().st_size
    deadline = time.monotonic() + FOLLOW_TIMEOUT
    while read_offset(process.pid, path) < size:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the follower did not catch up"
        time.sleep(0.01)


def wait_until_sleeping(process):
    """Wait until the follower's main thread sleeps (state S: polling the file, all read)."""
    deadline = time.monotonic() + FOLLOW_TIMEOUT
    stat = pathlib.Path(f"/proc/{process.pid}/task/{process.pid}/stat")
    while stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()[0] != "S":
        assert time.monotonic() < deadline, "the follower never went idle"
        time.sleep(0.01)


def append_in_steps(process, path, lines):
    """Append ``lines`` in three parts (the last line torn in two), each once the follower read the last."""
    third = len(lines) // 3
    parts = [b"".join(lines[:third]), b"".join(lines[third:-1]), lines[-1][:20], lines[-1][20:]]
    with path.open("ab") as file:
        for part in parts:
            file.write(part)
            file.flush()
            wait_until_read(process, path)


@contextlib.contextmanager
def start_follower(way, path, *args, cwd):
    """Run ``alien-events view --follow ARGS PATH`` in the background; kill it if a test fails."""
    follower = subprocess.Popen(
        [*WAYS[way], "view", "--follow", *args, str(path)],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield follower
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()


@needs_proc
class TestFollow:
    def test_follow_reads_what_another_thread_appends(self, way, recording, tmp_path):
        """``view --follow`` reads lines appended (one of them torn for a while) until the idle timeout."""
        lines = recording.read_bytes().splitlines(keepends=True)
        path = tmp_path / "growing.jsonl"
        path.touch()
        with start_follower(way, path, "--json", "--idle-timeout", "10", cwd=tmp_path) as follower:
            wait_until_read(follower, path)
            writer = threading.Thread(target=append_in_steps, args=(follower, path, lines))
            writer.start()
            writer.join()
            out, err = follower.communicate(timeout=TIMEOUT)
        assert (0, "") == (follower.returncode, err)
        assert tree_of(recording).to_dict() == json.loads(out)

    def test_ctrl_c_stops_following_with_exit_0(self, way, recording, tmp_path):
        """Ctrl-C (SIGINT) stops ``view --follow``: exit 0, and the tree read so far is printed."""
        path = tmp_path / "growing.jsonl"
        path.write_bytes(recording.read_bytes())
        with start_follower(way, path, "--json", cwd=tmp_path) as follower:
            wait_until_read(follower, path)
            wait_until_sleeping(follower)
            follower.send_signal(signal.SIGINT)
            out, err = follower.communicate(timeout=TIMEOUT)
        assert (0, "") == (follower.returncode, err)
        assert tree_of(recording).to_dict() == json.loads(out)

    def test_follow_renders_with_the_console_until_ctrl_c(self, way, recording, tmp_path):
        """``view --follow --mode plain`` renders appended changes, and Ctrl-C ends it with exit 0."""
        lines = recording.read_bytes().splitlines(keepends=True)
        path = tmp_path / "growing.jsonl"
        path.write_bytes(b"".join(lines[:10]))
        with start_follower(way, path, "--mode", "plain", cwd=tmp_path) as follower:
            wait_until_read(follower, path)
            writer = threading.Thread(target=append_in_steps, args=(follower, path, lines[10:]))
            writer.start()
            writer.join()
            wait_until_sleeping(follower)
            follower.send_signal(signal.SIGINT)
            out, err = follower.communicate(timeout=TIMEOUT)
        assert (0, "") == (follower.returncode, err)
        assert "shop-worker:1.4.0" in out


# -- schema and plugins ------------------------------------------------------------------------


def event_tags(schema):
    """The event type tags a JSON Schema from ``json_schema()`` describes."""
    return {
        variant["properties"]["type"]["enum"][0]
        for variant in schema["$defs"]["AlienEvent"]["oneOf"]
    }


class TestSchema:
    def test_schema_prints_the_json_schema_of_every_event_type(self, way, tmp_path):
        """``alien-events schema`` prints a 2020-12 JSON Schema naming Alien's 31 event types."""
        from alien_events_api import ALIEN_EVENT_TYPES

        done = run(way, "schema", cwd=tmp_path)
        assert (0, "") == (done.returncode, done.stderr)
        schema = json.loads(done.stdout)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert {cls.__name__ for cls in ALIEN_EVENT_TYPES} == event_tags(schema)
        assert json.dumps(schema, indent=2, ensure_ascii=False) + "\n" == done.stdout

    def test_schema_indent_0_prints_one_line(self, way, tmp_path):
        """``schema --indent 0`` prints the schema on one line."""
        done = run(way, "schema", "--indent", "0", cwd=tmp_path)
        assert (0, 1) == (done.returncode, len(done.stdout.splitlines()))

    def test_schema_includes_event_types_of_installed_plugins(self, way, fake_site, tmp_path):
        """An event type that a plugin registers (RocketLaunched) is in the printed schema."""
        env = clean_env(PYTHONPATH=str(fake_site))
        done = run(way, "schema", cwd=tmp_path, env=env)
        assert 0 == done.returncode
        assert "RocketLaunched" in event_tags(json.loads(done.stdout))


class TestPlugins:
    def test_plugins_lists_each_plugin_with_its_distribution_and_version(self, way, tmp_path):
        """``alien-events plugins`` prints one row per installed plugin: distribution, version, handlers."""
        done = run(way, "plugins", cwd=tmp_path)
        assert (0, "") == (done.returncode, done.stderr)
        rows = [line.split() for line in done.stdout.splitlines()]
        assert ["PLUGIN", "DISTRIBUTION", "VERSION", "HANDLERS"] in rows
        for info in installed_plugins().plugins:
            assert [info.entry_point, info.distribution, info.version, *info.handlers] in rows
        for name in ("jsonl", "structlog"):
            assert f"Handler {name!r}: " in done.stdout
        assert re.search(
            r"^  path +a path +required +ALIEN_EVENTS_JSONL_PATH +the file to append to$",
            done.stdout,
            re.MULTILINE,
        )

    def test_plugins_json_lists_plugins_handlers_and_options(self, way, tmp_path):
        """``plugins --json`` gives the plugins, each handler's options with their variables, and failures."""
        done = run(way, "plugins", "--json", cwd=tmp_path)
        listing = json.loads(done.stdout)
        found = installed_plugins()
        assert [
            {
                "entryPoint": i.entry_point,
                "distribution": i.distribution,
                "version": i.version,
                "handlers": list(i.handlers),
            }
            for i in found.plugins
        ] == listing["plugins"]
        assert sorted(found.factories) == [h["name"] for h in listing["handlers"]]
        jsonl = next(h for h in listing["handlers"] if h["name"] == "jsonl")
        assert {
            "name": "fsync",
            "type": "bool",
            "required": False,
            "default": False,
            "env": "ALIEN_EVENTS_JSONL_FSYNC",
            "help": "force each line to disk",
        } == next(o for o in jsonl["options"] if o["name"] == "fsync")

    def test_plugins_reports_load_failures_and_still_lists_the_rest(self, way, fake_site, tmp_path):
        """A plugin that fails to import is listed with its distribution and reason; the others still are."""
        env = clean_env(PYTHONPATH=str(fake_site))
        done = run(way, "plugins", cwd=tmp_path, env=env)
        assert (0, "") == (done.returncode, done.stderr)
        assert "\nFailed to load:\n" in done.stdout
        assert (
            "  broken (acme-broken-plugin 0.0.1): "
            "ModuleNotFoundError: No module named 'acme_dependency_that_is_missing'\n"
        ) in done.stdout
        assert ["rocket", "acme-rocket", "2.0.0", "-"] in [
            line.split() for line in done.stdout.splitlines()
        ]
        listing = json.loads(run(way, "plugins", "--json", cwd=tmp_path, env=env).stdout)
        assert {
            "entryPoint": "broken",
            "distribution": "acme-broken-plugin 0.0.1",
            "reason": "ModuleNotFoundError: No module named 'acme_dependency_that_is_missing'",
        } in listing["failures"]

    def test_a_broken_plugin_named_by_the_demo_exits_2_with_the_reason(
        self, way, fake_site, tmp_path
    ):
        """Naming a plugin that fails to import exits 2 with its distribution and the import error."""
        env = clean_env(PYTHONPATH=str(fake_site))
        done = run(way, "demo", "--handlers", "broken", cwd=tmp_path, env=env)
        expected = (
            "alien-events demo: error: alien-events plugin 'broken' from distribution "
            "acme-broken-plugin 0.0.1 failed to load: "
            "ModuleNotFoundError: No module named 'acme_dependency_that_is_missing'\n"
        )
        assert (2, expected) == (done.returncode, done.stderr)


# -- the demo in a real terminal ---------------------------------------------------------------

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
# A redraw: the cursor goes back up over the last frame (erasing lines and returning on the way).
REDRAW = re.compile(r"(?:\r|\x1b\[\d*K)*(?:\x1b\[\d*A(?:\r|\x1b\[\d*K)*)+")
SPINNERS = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏⣾⣽⣻⢿⡿⣟⣯⣷")
BAR = "━"
SHOW_CURSOR = "\x1b[?25h"


def run_in_terminal(args, *, cwd, rows=30, columns=100):
    """Run ``args`` with a pseudo-terminal of ``rows`` x ``columns`` as stdin, stdout and stderr."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = clean_env(TERM="xterm-256color")
    process = subprocess.Popen(
        args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], TIMEOUT)
            assert ready, "the program printed nothing for too long"
            try:
                data = os.read(master, 65536)
            except OSError as exc:  # EIO: every writer of the terminal is gone
                if exc.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        code = process.wait(timeout=TIMEOUT)
    return code, b"".join(chunks).decode("utf-8", "replace")


def frames(screen):
    """Split what was drawn at each redraw (the cursor moving up over the last frame); strip escapes."""
    return [ESCAPE.sub("", part).replace("\r\n", "\n") for part in REDRAW.split(screen)]


class TestTerminal:
    def test_demo_in_a_terminal_draws_a_live_tree_that_updates_and_ends_with_a_summary(
        self, tmp_path
    ):
        """In a real terminal the demo draws the live tree, redraws it many times, and ends with the summary."""
        code, screen = run_in_terminal([str(SCRIPT), "demo"], cwd=tmp_path, rows=30, columns=100)
        assert 0 == code, screen
        drawn = frames(screen)
        assert len(set(drawn)) >= 5, screen  # redrawn again and again, and the picture changed
        live, final = drawn[:-1], drawn[-1]
        assert any("Building stack shop" in frame and SPINNERS & set(frame) for frame in live), (
            "the stack line with a spinner while it runs"
        )
        assert any(
            re.search(rf"Pushing image shop-\w+:1\.4\.0 {BAR}+.* \d+% \d/\d layers", frame)
            for frame in live
        ), "an image push with its progress bar and layers"
        assert re.search(r"^. 1 failed, 26 succeeded +\d+\.\ds$", final, re.MULTILINE), final
        assert final.endswith(NOTE)
        assert SHOW_CURSOR in screen.rsplit(REDRAW.findall(screen)[-1], 1)[1]  # the cursor is back
        for line in ESCAPE.sub("", screen).splitlines():
            assert len(line) <= 100, line  # drawn for the terminal's 100 columns
        assert DEMO_OUTLINE == outline(tree_of(tmp_path / "alien-events-demo.jsonl").roots)
