"""
The ``console`` handler plugin: live frames, plain log lines, quiet mode, and how they are chosen.

Change streams are made by a real ``EventBus`` with deterministic ids and a fake clock that
moves only when a story says so; the same clock drives the handler, so every elapsed time,
spinner frame and heartbeat is fixed. Live frames are checked through the pure
``render_frame``; plain and quiet output through the lines written to a ``StringIO``. Both are
compared with checked-in text under ``golden/console/`` at 40, 80 and 120 columns; run with
``ALIEN_EVENTS_UPDATE_GOLDEN=1`` to rewrite them (then read the diff). Terminals are real
pseudo-terminals (``os.openpty``), never stand-ins.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import inspect
import io
import itertools
import os
import pathlib
import re
import struct
import subprocess
import sys
import termios
import threading
import time
import warnings
from datetime import UTC, datetime

import pytest
from rich.cells import cell_len
from rich.console import Console

from alien_events_api import (
    ALIEN_EVENT_TYPES,
    AlienError,
    AlienEvent,
    Created,
    Event,
    EventState,
    PushProgress,
    StateChanged,
    UnknownEvent,
    Updated,
    event_type,
)
from alien_events_console import (
    ConsoleHandler,
    ConsoleWarning,
    DescribesItself,
    Frame,
    ReportsProgress,
    choose_color,
    choose_mode,
    describe,
    progress_of,
    render_frame,
)
from alien_events_sdk import (
    EventBus,
    EventTree,
    PluginOptionError,
    RecordingHandler,
    installed_plugins,
)

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "console"
UPDATE_GOLDEN = os.environ.get("ALIEN_EVENTS_UPDATE_GOLDEN") == "1"
WIDTHS = [40, 80, 120]
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CURSOR_MOVES = ("\x1b[1A", "\x1b[2K", "\x1b[?25l")


# -- user-defined event types ---------------------------------------------------------------


@event_type(tag="ConsoleTestMigratingTable")
class MigratingTable(Event):
    """A user type that says how it is shown and exposes its progress."""

    table: str
    rows_done: int = 0
    rows_total: int = 0

    def __alien_text__(self) -> str:
        return f"Migrating table {self.table}"

    def __alien_progress__(self) -> tuple[float, float] | None:
        return (self.rows_done, self.rows_total) if self.rows_total else None


@event_type(tag="ConsoleTestWarmingCache")
class WarmingCache(Event):
    """A user type with no hooks: shown as its name and fields."""

    region: str
    keys: int
    note: str | None = None


@event_type(tag="ConsoleTestBrokenText")
class BrokenText(Event):
    """A user type whose text hook raises."""

    name: str

    def __alien_text__(self) -> str:
        raise RuntimeError("no text today")


@event_type(tag="ConsoleTestBadProgress")
class BadProgress(Event):
    """A user type whose progress hook returns nonsense."""

    name: str

    def __alien_progress__(self) -> object:
        return "half"


@event_type(tag="ConsoleTestWrongTextType")
class WrongTextType(Event):
    """A user type whose text hook returns a number."""

    def __alien_text__(self) -> object:
        return 42


class CompileFailed(Exception):
    """A build tool's failure that carries its own AlienError (code, hint, sources)."""

    def __init__(self) -> None:
        super().__init__("cargo build failed")
        self.alien_error = COMPILE_ERROR


COMPILE_ERROR = AlienError(
    code="COMPILE_FAILED",
    message="cargo build exited with status 101",
    hint="run `cargo build` in services/api to see every error",
    source=AlienError(
        code="RUSTC_ERROR",
        message="error[E0308]: mismatched types\n --> src/orders.rs:42:18",
        source=AlienError(code="TYPE_MISMATCH", message="expected `u64`, found `i32`"),
    ),
)
TIMEOUT_ERROR = AlienError(
    code="TIMEOUT_ERROR",
    message="load balancer my-stack-lb not healthy after 60s",
    hint="check the target group's health check path (/healthz)",
    source=AlienError(code="HTTP_ERROR", message="GET /healthz returned 503 Service Unavailable"),
    retryable=True,
)


# -- a clock and ids that only move when told -------------------------------------------------


class FakeClock:
    """Seconds since the epoch, moved by hand: the bus reads ``datetime()``, the handler calls it."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def at(self, seconds: float) -> None:
        """Move to ``seconds`` after T0."""
        self.now = T0 + seconds

    def tick(self, seconds: float) -> None:
        self.now += seconds


def make_bus(clock: FakeClock, *handlers) -> EventBus:
    counter = itertools.count(1)
    return EventBus(
        list(handlers), ids=lambda parent, event: f"ev-{next(counter):03d}", clock=clock.datetime
    )


def push(layers: int, total_layers: int, done_mb: float, total_mb: float) -> PushProgress:
    return PushProgress("Uploading", layers, total_layers, int(done_mb * 1e6), int(total_mb * 1e6))


# -- stories: change streams with fixed times -------------------------------------------------

DEPLOY_MID = 8.0


def deploy_story(clock: FakeClock) -> None:
    """A build and deploy: parallel resources, push progress (both styles), one retried failure."""
    clock.at(0.0)
    root = AlienEvent.BuildingStack(stack="my-stack").emit(EventState.STARTED)
    clock.at(0.1)
    AlienEvent.LoadingConfiguration().emit(parent=root)
    clock.at(0.2)
    pre = AlienEvent.RunningPreflights(stack="my-stack", platform="aws").emit(
        EventState.STARTED, parent=root
    )
    clock.at(0.6)
    pre.complete()
    clock.at(0.7)
    api = AlienEvent.BuildingResource(resource_name="api", resource_type="container").emit(
        EventState.STARTED, parent=root
    )
    worker = AlienEvent.BuildingResource(resource_name="worker", resource_type="worker").emit(
        EventState.STARTED, parent=root
    )
    clock.at(0.8)
    compile_api = AlienEvent.CompilingCode(language="rust").emit(EventState.STARTED, parent=api)
    compile_worker = AlienEvent.CompilingCode(language="typescript").emit(
        EventState.STARTED, parent=worker
    )
    clock.at(1.5)
    compile_api.update(
        AlienEvent.CompilingCode(language="rust", progress="Compiling api v0.1.0 (/src/api)")
    )
    clock.at(2.0)
    compile_api.complete()
    push_api = AlienEvent.PushingImage(image="api:latest").emit(EventState.STARTED, parent=api)
    push_worker = None
    for step in range(1, 9):
        clock.at(2.0 + 0.3 * step)
        push_api.update(
            AlienEvent.PushingImage(
                image="api:latest", progress=push(step * 5 // 8, 5, step * 6, 48)
            )
        )
        if step == 3:
            compile_worker.complete()
            push_worker = AlienEvent.PushingResource(
                resource_name="worker", resource_type="worker"
            ).emit(EventState.STARTED, parent=worker)
        if push_worker is not None and step > 3:
            AlienEvent.PushingImage(
                image="worker:latest", progress=push(step - 3, 8, (step - 3) * 2.5, 20)
            ).emit(parent=push_worker)
    assert push_worker is not None
    clock.at(4.5)
    push_api.complete()
    api.complete()
    clock.at(5.0)
    first = AlienEvent.DeployingStack(stack_name="my-stack").emit(EventState.STARTED, parent=root)
    clock.at(5.1)
    AlienEvent.AssumingRole(role_arn="arn:aws:iam::123456789012:role/deployer").emit(parent=first)
    clock.at(6.0)
    first.fail(TIMEOUT_ERROR)
    clock.at(6.2)
    second = AlienEvent.DeployingStack(stack_name="my-stack").emit(EventState.STARTED, parent=root)
    clock.at(6.3)
    cfn = AlienEvent.DeployingCloudFormationStack(
        cfn_stack_name="my-stack-cfn", current_status="CREATE_IN_PROGRESS"
    ).emit(EventState.STARTED, parent=second)
    clock.at(7.0)
    AlienEvent.PushingImage(image="worker:latest", progress=push(6, 8, 15, 20)).emit(
        parent=push_worker
    )
    clock.at(7.5)
    cfn.update(
        AlienEvent.DeployingCloudFormationStack(
            cfn_stack_name="my-stack-cfn", current_status="UPDATE_IN_PROGRESS"
        )
    )
    clock.at(8.5)
    AlienEvent.PushingImage(image="worker:latest", progress=push(8, 8, 20, 20)).emit(
        parent=push_worker
    )
    clock.at(9.0)
    push_worker.complete()
    worker.complete()
    clock.at(10.0)
    cfn.update(
        AlienEvent.DeployingCloudFormationStack(
            cfn_stack_name="my-stack-cfn", current_status="CREATE_COMPLETE"
        )
    )
    cfn.complete()
    clock.at(10.2)
    second.complete()
    clock.at(10.3)
    root.complete()
    AlienEvent.Finished().emit(EventState.SUCCESS)


def crash_story(clock: FakeClock) -> None:
    """A build that fails deep down: one error shared by three scopes; user types; a heartbeat."""
    clock.at(0.0)
    with AlienEvent.BuildingStack(stack="shop").in_scope():
        clock.at(0.1)
        AlienEvent.LoadingConfiguration().emit()
        clock.at(0.2)
        with MigratingTable(table="orders").in_scope() as migration:
            for done in (1000, 2500, 4000):
                clock.tick(1.0)
                migration.update(MigratingTable(table="orders", rows_done=done, rows_total=10_000))
            clock.tick(40.0)  # a long quiet spell: the same progress again, nothing new to print
            migration.update(MigratingTable(table="orders", rows_done=4000, rows_total=10_000))
            clock.tick(3.0)
            migration.update(MigratingTable(table="orders", rows_done=10_000, rows_total=10_000))
        clock.tick(0.1)
        WarmingCache(region="eu-west-1", keys=1200).emit()
        with AlienEvent.BuildingResource(resource_name="api", resource_type="container").in_scope():
            clock.tick(0.1)
            with AlienEvent.CompilingCode(language="rust").in_scope() as compiling:
                clock.tick(2.0)
                compiling.update(
                    AlienEvent.CompilingCode(language="rust", progress="Compiling orders v0.3.1")
                )
                clock.tick(1.5)
                raise CompileFailed


def tall_story(clock: FakeClock) -> None:
    """Forty agents provisioned: most done, two still running, one failed."""
    clock.at(0.0)
    root = AlienEvent.DeployingStack(stack_name="fleet").emit(EventState.STARTED)
    for number in range(1, 41):
        clock.at(number * 0.5)
        agent = AlienEvent.ProvisioningAgent(
            agent_id=f"agent-{number:02d}", release_id="rel-7"
        ).emit(EventState.STARTED, parent=root)
        clock.tick(0.2)
        if number == 7:
            agent.fail(
                AlienError(
                    code="QUOTA_EXCEEDED",
                    message="vCPU quota reached in us-east-1",
                    hint="ask for a higher quota",
                )
            )
        elif number not in {38, 40}:
            agent.complete()
    clock.at(21.0)


def record(story) -> tuple[list, float]:
    """Run a story on a recording bus; return its changes and the time it ended."""
    clock = FakeClock()
    recorder = RecordingHandler()
    with contextlib.suppress(CompileFailed), make_bus(clock, recorder):
        story(clock)
    return recorder.changes, clock.now


def tree_at(changes, seconds: float) -> EventTree:
    """The tree of the changes made up to ``seconds`` after T0."""
    limit = round((T0 + seconds) * 1_000_000)
    return EventTree(change for change in changes if change.timestamp_micros <= limit)


def plain_output(story, width: int | None, mode: str = "plain", **options) -> str:
    """Run a story through a plain (or quiet) handler writing to a StringIO; close it; return the text."""
    clock = FakeClock()
    out = io.StringIO()
    handler = ConsoleHandler(
        mode, file=out, color=False, environ={}, clock=clock, width=width, **options
    )
    with contextlib.suppress(CompileFailed), make_bus(clock, handler):
        story(clock)
    handler.close()
    return out.getvalue()


def check_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with the golden file ``name`` (rewrite it when asked)."""
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    if not path.exists():
        pytest.fail(f"no golden file {path}; run with ALIEN_EVENTS_UPDATE_GOLDEN=1 and review it")
    assert path.read_text(encoding="utf-8") == actual


def frame_text(frame: Frame) -> str:
    return frame.plain + "\n"


@contextlib.contextmanager
def pseudo_terminal(columns: int = 80, rows: int = 24):
    """
    A real pseudo-terminal, drained by a thread.

    Yields the text file on its terminal side, and a function that returns everything
    written, once that file is closed.
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal side is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    file = os.fdopen(slave, "w", encoding="utf-8")

    def written() -> str:
        reader.join(timeout=30)
        return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")

    try:
        yield file, written
    finally:
        with contextlib.suppress(OSError):
            file.close()
        reader.join(timeout=30)
        os.close(master)


# -- golden output ----------------------------------------------------------------------------


class TestGoldenLive:
    @pytest.mark.parametrize("width", WIDTHS)
    def test_deploy_mid_run(self, width):
        """Mid-deploy: running work with spinners and bars, the retried failure expanded, done work collapsed."""
        changes, _ = record(deploy_story)
        frame = render_frame(tree_at(changes, DEPLOY_MID), T0 + DEPLOY_MID, width, 24)
        check_golden(f"deploy-live-mid-{width}.txt", frame_text(frame))

    @pytest.mark.parametrize("width", WIDTHS)
    def test_deploy_final(self, width):
        """The final deploy frame: everything collapsed but the handled failure, and the summary."""
        changes, end = record(deploy_story)
        frame = render_frame(EventTree(changes), end, width)
        check_golden(f"deploy-live-final-{width}.txt", frame_text(frame))

    @pytest.mark.parametrize("width", WIDTHS)
    def test_crash_final(self, width):
        """A deep failure: shown once with hint and sources; user types by their own text and fields."""
        changes, end = record(crash_story)
        frame = render_frame(EventTree(changes), end, width)
        check_golden(f"crash-live-{width}.txt", frame_text(frame))

    @pytest.mark.parametrize("width", WIDTHS)
    def test_tall_tree_on_a_short_screen(self, width):
        """Forty agents on 14 lines: the running and failed ones stay, the finished are summarised."""
        changes, end = record(tall_story)
        frame = render_frame(EventTree(changes), end, width, 14)
        check_golden(f"tall-live-{width}.txt", frame_text(frame))


class TestGoldenPlain:
    @pytest.mark.parametrize("width", WIDTHS)
    def test_deploy(self, width):
        """The deploy as log lines: labels, throttled progress, failure details, the end block."""
        check_golden(f"deploy-plain-{width}.txt", plain_output(deploy_story, width))

    @pytest.mark.parametrize("width", WIDTHS)
    def test_crash(self, width):
        """The crash as log lines: a heartbeat in the quiet spell, the error once, then repeated."""
        check_golden(f"crash-plain-{width}.txt", plain_output(crash_story, width))

    @pytest.mark.parametrize("width", WIDTHS)
    def test_tall(self, width):
        """Forty agents as log lines, and the end block with the one failure."""
        check_golden(f"tall-plain-{width}.txt", plain_output(tall_story, width))

    @pytest.mark.parametrize("width", WIDTHS)
    def test_crash_quiet(self, width):
        """Quiet mode prints only the failures and the summary, at the end."""
        check_golden(f"crash-quiet-{width}.txt", plain_output(crash_story, width, "quiet"))


# -- describe ---------------------------------------------------------------------------------

STACK_STATE = {"platform": "aws", "resources": {"api": {}, "queue": {}}, "resourcePrefix": "my"}
ALIEN_TEXTS = [
    (AlienEvent.LoadingConfiguration(), "Loading configuration"),
    (AlienEvent.Finished(), "Finished"),
    (AlienEvent.BuildingStack(stack="my-stack"), "Building stack my-stack"),
    (
        AlienEvent.RunningPreflights(stack="my-stack", platform="aws"),
        "Running preflights for my-stack (aws)",
    ),
    (
        AlienEvent.DownloadingAlienRuntime(
            target_triple="x86_64-unknown-linux-gnu", url="https://get.alien.dev/rt"
        ),
        "Downloading Alien runtime for x86_64-unknown-linux-gnu from https://get.alien.dev/rt",
    ),
    (
        AlienEvent.BuildingResource(resource_name="api", resource_type="container"),
        "Building container api",
    ),
    (AlienEvent.BuildingImage(image="api:latest"), "Building image api:latest"),
    (AlienEvent.PushingImage(image="api:latest"), "Pushing image api:latest"),
    (
        AlienEvent.PushingStack(stack="my-stack", platform="aws", destination="ecr.example"),
        "Pushing aws images of my-stack to ecr.example",
    ),
    (
        AlienEvent.PushingResource(resource_name="api", resource_type="container"),
        "Pushing container api",
    ),
    (AlienEvent.CreatingRelease(project="shop"), "Creating release for shop"),
    (AlienEvent.CompilingCode(language="rust"), "Compiling rust"),
    (
        AlienEvent.StackStep(next_state=STACK_STATE, suggested_delay_ms=1500),
        "Applying stack step (aws, 2 resources), next in 1.5s",
    ),
    (AlienEvent.GeneratingCloudFormationTemplate(), "Generating CloudFormation template"),
    (AlienEvent.GeneratingTemplate(platform="gcp"), "Generating gcp template"),
    (
        AlienEvent.ProvisioningAgent(agent_id="agent-1", release_id="rel-7"),
        "Provisioning agent agent-1 (release rel-7)",
    ),
    (
        AlienEvent.UpdatingAgent(agent_id="agent-1", release_id="rel-8"),
        "Updating agent agent-1 to release rel-8",
    ),
    (
        AlienEvent.DeletingAgent(agent_id="agent-1", release_id="rel-7"),
        "Deleting agent agent-1 (release rel-7)",
    ),
    (
        AlienEvent.DebuggingAgent(agent_id="agent-1", debug_session_id="dbg-3"),
        "Debugging agent agent-1 (session dbg-3)",
    ),
    (
        AlienEvent.PreparingEnvironment(strategy_name="ephemeral"),
        "Preparing environment (ephemeral)",
    ),
    (AlienEvent.DeployingStack(stack_name="my-stack"), "Deploying stack my-stack"),
    (AlienEvent.RunningTestWorker(stack_name="my-stack"), "Running test worker for my-stack"),
    (
        AlienEvent.CleaningUpStack(stack_name="my-stack", strategy_name="ephemeral"),
        "Cleaning up stack my-stack (ephemeral)",
    ),
    (
        AlienEvent.CleaningUpEnvironment(stack_name="my-stack", strategy_name="ephemeral"),
        "Cleaning up environment of my-stack (ephemeral)",
    ),
    (
        AlienEvent.SettingUpPlatformContext(platform_name="aws"),
        "Setting up aws platform context",
    ),
    (
        AlienEvent.EnsuringDockerRepository(repository_name="shop/api"),
        "Ensuring Docker repository shop/api",
    ),
    (
        AlienEvent.DeployingCloudFormationStack(
            cfn_stack_name="my-stack-cfn", current_status="CREATE_IN_PROGRESS"
        ),
        "Deploying CloudFormation stack my-stack-cfn: CREATE_IN_PROGRESS",
    ),
    (
        AlienEvent.AssumingRole(role_arn="arn:aws:iam::1:role/deployer"),
        "Assuming role arn:aws:iam::1:role/deployer",
    ),
    (
        AlienEvent.ImportingStackStateFromCloudFormation(cfn_stack_name="my-stack-cfn"),
        "Importing stack state from CloudFormation stack my-stack-cfn",
    ),
    (
        AlienEvent.DeletingCloudFormationStack(
            cfn_stack_name="my-stack-cfn", current_status="DELETE_IN_PROGRESS"
        ),
        "Deleting CloudFormation stack my-stack-cfn: DELETE_IN_PROGRESS",
    ),
    (AlienEvent.EmptyingBuckets(bucket_names=["logs", "assets"]), "Emptying buckets logs, assets"),
]


class TestDescribe:
    def test_every_alien_type_has_a_sample(self):
        """The samples below cover all 31 Alien types, once each."""
        assert list(ALIEN_EVENT_TYPES) == [type(event) for event, _ in ALIEN_TEXTS]

    @pytest.mark.parametrize(
        ("event", "text"), ALIEN_TEXTS, ids=[type(event).__name__ for event, _ in ALIEN_TEXTS]
    )
    def test_alien_type_text(self, event, text):
        """Each Alien type reads as a short sentence, not as its field list."""
        assert text == describe(event)

    @pytest.mark.parametrize(
        ("event", "text"),
        [
            (
                AlienEvent.CompilingCode(language="rust", progress="Compiling api v0.1.0"),
                "Compiling rust: Compiling api v0.1.0",
            ),
            (
                AlienEvent.BuildingResource(
                    resource_name="api",
                    resource_type="worker",
                    related_resources=["api", "jobs"],
                ),
                "Building worker api, jobs (shared)",
            ),
            (AlienEvent.PushingStack(stack="s", platform="aws"), "Pushing aws images of s"),
            (AlienEvent.StackStep(next_state={}), "Applying stack step"),
            (
                AlienEvent.StackStep(next_state={"platform": "local", "resources": {"a": {}}}),
                "Applying stack step (local, 1 resource)",
            ),
            (AlienEvent.EmptyingBuckets(bucket_names=[]), "Emptying buckets (none)"),
            (AlienEvent.EmptyingBuckets(bucket_names=["logs"]), "Emptying bucket logs"),
            (
                AlienEvent.EmptyingBuckets(bucket_names=["a", "b", "c", "d", "e"]),
                "Emptying buckets a, b, c and 2 more",
            ),
        ],
    )
    def test_alien_variants_of_one_type(self, event, text):
        """Optional fields change the text: compiler output, shared builds, destinations, counts."""
        assert text == describe(event)

    def test_user_type_says_how_it_is_shown(self):
        """A type with ``__alien_text__`` is shown by it."""
        assert "Migrating table orders" == describe(MigratingTable(table="orders"))
        assert isinstance(MigratingTable(table="orders"), DescribesItself)

    def test_user_type_without_hook_shows_name_and_fields(self):
        """Without a hook: the type name and ``field=value``, None fields left out, odd strings quoted."""
        assert "WarmingCache region=eu-west-1 keys=1200" == describe(
            WarmingCache(region="eu-west-1", keys=1200)
        )
        assert "WarmingCache region='eu west' keys=3 note='a=b'" == describe(
            WarmingCache(region="eu west", keys=3, note="a=b")
        )

    def test_long_field_values_are_cut(self):
        """A long field value is cut to 40 characters with an ellipsis."""
        text = describe(WarmingCache(region="r" * 100, keys=1))
        assert f"WarmingCache region={'r' * 39}… keys=1" == text

    def test_unknown_event_shows_its_tag_and_data(self):
        """An event of a type this process does not know shows its wire tag and data."""
        assert "FutureThing size=3 name=x" == describe(
            UnknownEvent(tag="FutureThing", data={"size": 3, "name": "x"})
        )

    def test_control_characters_never_reach_the_terminal(self):
        """Newlines, tabs and escape sequences in fields are neutralised."""
        text = describe(AlienEvent.BuildingStack(stack="a\nb\tc\x1b[2Jd"))
        assert "Building stack a b c\ufffd[2Jd" == text

    def test_text_hook_of_the_wrong_type_raises(self):
        """A hook that returns something other than ``str`` is a ``TypeError`` from describe()."""
        with pytest.raises(TypeError, match="returned int, not str"):
            describe(WrongTextType())


class TestProgressOf:
    def test_push_progress_counts_bytes(self):
        """PushProgress gives bytes done out of bytes in total."""
        event = AlienEvent.PushingImage(image="a", progress=push(2, 5, 12, 40))
        assert (12e6, 40e6) == progress_of(event)

    def test_push_progress_without_bytes_counts_layers(self):
        """With no byte total, layers are counted."""
        event = AlienEvent.PushingImage(image="a", progress=PushProgress("Pushing", 2, 5, 0, 0))
        assert (2.0, 5.0) == progress_of(event)

    def test_push_progress_without_totals_is_none(self):
        """With no totals at all there is no progress to show."""
        event = AlienEvent.PushingImage(image="a", progress=PushProgress("Waiting", 0, 0, 0, 0))
        assert None is progress_of(event)

    def test_events_without_progress_have_none(self):
        """An event with no progress field and no hook has no progress."""
        assert None is progress_of(AlienEvent.BuildingStack(stack="s"))
        assert None is progress_of(AlienEvent.CompilingCode(language="rust", progress="linking"))

    def test_user_type_reports_progress(self):
        """A type with ``__alien_progress__`` gives (current, total), or None when it says so."""
        event = MigratingTable(table="t", rows_done=3, rows_total=12)
        assert (3.0, 12.0) == progress_of(event)
        assert None is progress_of(MigratingTable(table="t"))
        assert isinstance(event, ReportsProgress)

    def test_bad_progress_hook_raises(self):
        """A hook that returns something other than a pair of numbers is a ``TypeError``."""
        with pytest.raises(TypeError, match="must return"):
            progress_of(BadProgress(name="x"))


# -- mode and colour --------------------------------------------------------------------------


@pytest.fixture(name="terminal")
def _terminal():
    """The terminal side of a real pseudo-terminal, as a text file (nothing reads it)."""
    master, slave = os.openpty()
    file = os.fdopen(slave, "w", encoding="utf-8")
    yield file
    file.close()
    os.close(master)


def output(kind, terminal):
    return terminal if kind == "tty" else io.StringIO()


class TestChooseMode:
    @pytest.mark.parametrize(
        ("requested", "environ", "kind", "expected"),
        [
            ("auto", {}, "tty", "live"),
            ("auto", {}, "pipe", "plain"),
            ("auto", {"CI": "true"}, "tty", "plain"),
            ("auto", {"CI": "1"}, "tty", "plain"),
            ("auto", {"CI": "false"}, "tty", "live"),
            ("auto", {"CI": "0"}, "tty", "live"),
            ("auto", {"CI": ""}, "tty", "live"),
            ("auto", {"TERM": "dumb"}, "tty", "plain"),
            ("auto", {"TERM": "xterm-256color"}, "tty", "live"),
            ("auto", {"ALIEN_EVENTS_CONSOLE_MODE": "plain"}, "tty", "plain"),
            ("auto", {"ALIEN_EVENTS_CONSOLE_MODE": "live"}, "pipe", "live"),
            ("auto", {"ALIEN_EVENTS_CONSOLE_MODE": "live", "CI": "true"}, "pipe", "live"),
            ("auto", {"ALIEN_EVENTS_CONSOLE_MODE": "QUIET"}, "tty", "quiet"),
            ("auto", {"ALIEN_EVENTS_CONSOLE_MODE": "auto"}, "tty", "live"),
            ("auto", {"ALIEN_EVENTS_CONSOLE_MODE": ""}, "pipe", "plain"),
            ("plain", {"ALIEN_EVENTS_CONSOLE_MODE": "live"}, "tty", "plain"),
            ("live", {"CI": "true", "TERM": "dumb"}, "pipe", "live"),
            ("quiet", {}, "tty", "quiet"),
            ("auto", {"FORCE_COLOR": "1"}, "pipe", "plain"),
            ("auto", {"FORCE_COLOR": "1", "CI": "true"}, "tty", "plain"),
            ("auto", {"NO_COLOR": "1"}, "tty", "live"),
        ],
    )
    def test_mode_matrix(self, requested, environ, kind, expected, terminal):
        """The option wins, then ALIEN_EVENTS_CONSOLE_MODE, then TERM=dumb and CI, then the terminal; colour never counts."""
        assert expected == choose_mode(requested, file=output(kind, terminal), environ=environ)

    def test_unknown_mode_option_raises(self):
        """An unknown mode given in code is a ``ValueError`` naming the choices."""
        with pytest.raises(ValueError, match="auto, live, plain, quiet"):
            choose_mode("fancy", file=None, environ={})

    def test_unknown_mode_variable_warns_and_counts_as_auto(self):
        """An unknown ALIEN_EVENTS_CONSOLE_MODE warns and falls back to detection."""
        with pytest.warns(ConsoleWarning, match="ALIEN_EVENTS_CONSOLE_MODE='fancy'"):
            mode = choose_mode(
                "auto", file=io.StringIO(), environ={"ALIEN_EVENTS_CONSOLE_MODE": "fancy"}
            )
        assert "plain" == mode

    def test_closed_file_is_no_terminal(self):
        """A closed stream counts as no terminal rather than raising."""
        closed = io.StringIO()
        closed.close()
        assert "plain" == choose_mode(file=closed, environ={})
        assert False is choose_color(file=closed, environ={})


class TestChooseColor:
    @pytest.mark.parametrize(
        ("requested", "environ", "kind", "expected"),
        [
            (None, {}, "tty", True),
            (None, {}, "pipe", False),
            ("auto", {"NO_COLOR": "1"}, "tty", False),
            (None, {"NO_COLOR": ""}, "tty", True),
            (None, {"FORCE_COLOR": "1"}, "pipe", True),
            (None, {"FORCE_COLOR": "0"}, "pipe", True),
            (None, {"FORCE_COLOR": ""}, "pipe", False),
            (None, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, "pipe", False),
            (None, {"TERM": "dumb"}, "tty", False),
            (None, {"CI": "true"}, "tty", True),
            (None, {"ALIEN_EVENTS_CONSOLE_COLOR": "always"}, "pipe", True),
            (None, {"ALIEN_EVENTS_CONSOLE_COLOR": "never", "FORCE_COLOR": "1"}, "tty", False),
            ("always", {"NO_COLOR": "1"}, "pipe", True),
            ("never", {"FORCE_COLOR": "1"}, "tty", False),
            (True, {"NO_COLOR": "1"}, "pipe", True),
            (False, {}, "tty", False),
        ],
    )
    def test_color_matrix(self, requested, environ, kind, expected, terminal):
        """The option wins, then ALIEN_EVENTS_CONSOLE_COLOR, NO_COLOR, FORCE_COLOR, TERM=dumb, the terminal."""
        assert expected == choose_color(requested, file=output(kind, terminal), environ=environ)

    def test_unknown_color_option_raises(self):
        """An unknown colour option is a ``ValueError`` naming the choices."""
        with pytest.raises(ValueError, match="auto, always, never"):
            choose_color("sometimes", file=None, environ={})

    def test_unknown_color_variable_warns(self):
        """An unknown ALIEN_EVENTS_CONSOLE_COLOR warns and falls back to detection."""
        with pytest.warns(ConsoleWarning, match="ALIEN_EVENTS_CONSOLE_COLOR"):
            color = choose_color(file=io.StringIO(), environ={"ALIEN_EVENTS_CONSOLE_COLOR": "x"})
        assert False is color

    def test_forced_colour_in_ci_colours_lines_but_never_animates(self):
        """With CI and FORCE_COLOR the handler writes coloured plain lines and no cursor movement."""
        clock = FakeClock()
        out = io.StringIO()
        handler = ConsoleHandler(file=out, environ={"CI": "true", "FORCE_COLOR": "1"}, clock=clock)
        with make_bus(clock, handler), AlienEvent.BuildingStack(stack="s").in_scope():
            clock.tick(1)
        handler.close()
        written = out.getvalue()
        assert ("plain", True) == (handler.mode, handler.color)
        assert "\x1b[36m▶\x1b[0m Building stack s" in written
        assert [] == [code for code in CURSOR_MOVES if code in written]
        assert [
            "[1] ▶ Building stack s",
            "[1] ✓ Building stack s in 1.0s",
            "✓ 1 succeeded · total 1.0s",
        ] == ANSI.sub("", written).splitlines()

    def test_without_colour_no_escape_codes_are_written(self):
        """Plain output without colour has no escape sequences at all."""
        written = plain_output(deploy_story, 80)
        assert [] == ANSI.findall(written)


# -- plain mode ---------------------------------------------------------------------------------


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    return FakeClock()


def plain_handler(clock, mode="plain", **options):
    out = io.StringIO()
    options.setdefault("heartbeat", 30.0)
    handler = ConsoleHandler(mode, file=out, color=False, environ={}, clock=clock, **options)
    return handler, out


class TestPlain:
    def test_every_line_is_labelled_by_its_path(self):
        """Every event line starts with the event's path label, so concurrent work can be told apart."""
        lines = plain_output(deploy_story, 80).splitlines()
        events = lines[: lines.index("Failed (1):")]
        unlabelled = [line for line in events if not re.match(r"\[\d+(\.\d+)*\] ", line)]
        assert [] == unlabelled

    def test_fast_progress_prints_first_and_last(self, clock):
        """A thousand updates in half a second print the first and the 100 % line only."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            handle = MigratingTable(table="t").emit(EventState.STARTED)
            for done in range(1, 1001):
                clock.tick(0.0005)
                handle.update(MigratingTable(table="t", rows_done=done, rows_total=1000))
            handle.complete()
        assert [
            "[1] ▶ Migrating table t",
            "[1]   Migrating table t: 0% (1/1000)",
            "[1]   Migrating table t: 100% (1000/1000)",
            "[1] ✓ Migrating table t in 0.5s",
        ] == out.getvalue().splitlines()

    def test_progress_is_throttled_by_step_and_by_time(self, clock):
        """A line for a crossed 10 % step at least 1 s after the last, or for any move after 5 s."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            handle = MigratingTable(table="t").emit(EventState.STARTED)
            for at, done in [
                (0, 5),
                (0.5, 15),
                (1.6, 16),
                (2.0, 17),
                (7.0, 18),
                (13.0, 18),
                (13.5, 19),
            ]:
                clock.at(at)
                handle.update(MigratingTable(table="t", rows_done=done, rows_total=100))
        assert [
            "[1] ▶ Migrating table t",
            "[1]   Migrating table t: 5% (5/100)",
            "[1]   Migrating table t: 16% (16/100)",
            "[1]   Migrating table t: 18% (18/100)",
            "[1]   Migrating table t: 19% (19/100)",
        ] == out.getvalue().splitlines()

    def test_text_updates_print_at_most_one_line_per_interval(self, clock):
        """Text updates print at most once per 5 s per event; the end line shows the latest text."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            handle = AlienEvent.CompilingCode(language="rust").emit(EventState.STARTED)
            for at, line in [(0.5, "a"), (1.0, "b"), (2.0, "c"), (6.0, "d"), (6.5, "d")]:
                clock.at(at)
                handle.update(AlienEvent.CompilingCode(language="rust", progress=line))
            clock.at(7.0)
            handle.complete()
        assert [
            "[1] ▶ Compiling rust",
            "[1]   Compiling rust: a",
            "[1]   Compiling rust: d",
            "[1] ✓ Compiling rust: d in 7.0s",
        ] == out.getvalue().splitlines()

    def test_alien_style_progress_ticks_are_throttled_together(self, clock):
        """Alien's push ticks (a new plain event each) are throttled as one progress."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            parent = AlienEvent.PushingResource(
                resource_name="api", resource_type="container"
            ).emit(EventState.STARTED)
            for layer in range(1, 11):
                clock.tick(0.2)
                AlienEvent.PushingImage(image="api", progress=push(layer, 10, layer, 10)).emit(
                    parent=parent
                )
        assert [
            "[1] ▶ Pushing container api",
            "[1.1] • Pushing image api: 10% (1/10 layers · 1.0/10.0 MB)",
            "[1.2] • Pushing image api: 60% (6/10 layers · 6.0/10.0 MB)",
            "[1.3] • Pushing image api: 100% (10/10 layers · 10.0/10.0 MB)",
        ] == out.getvalue().splitlines()

    def test_heartbeat_after_silence_names_the_running_leaves(self, clock):
        """After 30 s without output, the running events with nothing running below say they still run."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            outer = AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED)
            inner = MigratingTable(table="t").emit(EventState.STARTED, parent=outer)
            other = AlienEvent.AssumingRole(role_arn="r").emit(EventState.STARTED, parent=outer)
            for at in (31.0, 40.0, 62.0):
                clock.at(at)
                inner.update(MigratingTable(table="t"))  # nothing new to print
            clock.at(70.0)
            other.complete()
        handler.close()
        assert [
            "[1] ▶ Deploying stack s",
            "[1.1] ▶ Migrating table t",
            "[1.2] ▶ Assuming role r",
            "[1.1] … Migrating table t still running (31.0s)",
            "[1.2] … Assuming role r still running (31.0s)",
            "[1.1] … Migrating table t still running (1m02s)",
            "[1.2] … Assuming role r still running (1m02s)",
            "[1.2] ✓ Assuming role r in 1m10s",
            "… 2 running, 1 succeeded · total 1m10s",
        ] == out.getvalue().splitlines()

    def test_heartbeat_is_checked_at_close(self, clock):
        """Closing after a long silence prints the heartbeat before the summary."""
        handler, out = plain_handler(clock, heartbeat=10.0)
        with make_bus(clock, handler):
            AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED)
            clock.at(125.0)
        handler.close()
        assert [
            "[1] ▶ Deploying stack s",
            "[1] … Deploying stack s still running (2m05s)",
            "… 1 running · total 2m05s",
        ] == out.getvalue().splitlines()

    def test_heartbeat_zero_never_beats(self, clock):
        """``heartbeat=0`` turns the heartbeat off."""
        handler, out = plain_handler(clock, heartbeat=0)
        with make_bus(clock, handler):
            handle = AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED)
            clock.at(1000.0)
            handle.update(AlienEvent.DeployingStack(stack_name="s"))
        assert ["[1] ▶ Deploying stack s"] == out.getvalue().splitlines()

    def test_heartbeat_thread_beats_in_real_time(self):
        """With the real clock a background thread prints the heartbeat while nothing else happens."""
        out = io.StringIO()
        handler = ConsoleHandler("plain", file=out, color=False, environ={}, heartbeat=0.02)
        with EventBus([handler]):
            handle = AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED)
            deadline = time.monotonic() + 30
            while "still running" not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.01)
            handle.complete()
        handler.close()
        assert "[1] … Deploying stack s still running (" in out.getvalue()

    def test_failures_are_repeated_at_the_end_with_the_summary(self, clock):
        """The end block repeats each failure with where it happened, then counts and total time."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            outer = AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED)
            clock.at(2.0)
            AlienEvent.AssumingRole(role_arn="r").emit(
                EventState.FAILED, parent=outer, error=AlienError(code="DENIED", message="no")
            )
            clock.at(3.0)
            outer.complete()
        before = out.getvalue()
        handler.close()
        assert [
            "Failed (1):",
            "[1.1] ✗ Assuming role r failed",
            "[1.1]   in Deploying stack s",
            "[1.1]   DENIED: no",
            "✓ 1 failed, 1 succeeded · total 3.0s",
        ] == out.getvalue()[len(before) :].splitlines()

    def test_quiet_mode_is_silent_until_close(self, clock):
        """Quiet mode writes nothing while events run, and only failures and the summary at close."""
        handler, out = plain_handler(clock, mode="quiet")
        with make_bus(clock, handler):
            AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED).complete()
            AlienEvent.AssumingRole(role_arn="r").emit(
                EventState.FAILED, error=AlienError(code="DENIED", message="no")
            )
        assert "" == out.getvalue()
        handler.close()
        assert [
            "Failed (1):",
            "[1] ✗ Assuming role r failed",
            "[1]   DENIED: no",
            "✗ 1 failed, 1 succeeded · total 0.0s",
        ] == out.getvalue().splitlines()

    def test_replayed_changes_are_not_printed_twice(self, clock):
        """Delivering the same changes again (a replay) adds no lines."""
        changes, _ = record(deploy_story)
        handler, out = plain_handler(clock)
        bus = EventBus([handler])
        for change in [*changes, *changes]:
            clock.now = change.timestamp_micros / 1e6
            bus.publish(change)
        once, once_out = plain_handler(clock)
        for change in changes:
            clock.now = change.timestamp_micros / 1e6
            once.on_event_change(change)
        assert once.tree == handler.tree
        assert once_out.getvalue() == out.getvalue()

    def test_changes_in_any_order_are_shown_in_their_folded_state(self, clock):
        """A state change before its Created, and a child before its parent, still read right."""
        handler, out = plain_handler(clock)
        micros = int(T0 * 1_000_000)
        for change in [
            StateChanged.unchecked("b", micros + 2_000_000, EventState.SUCCESS, None, 2),
            Created.unchecked(
                "b",
                "a",
                micros + 1_000_000,
                AlienEvent.BuildingImage(image="x"),
                EventState.STARTED,
                None,
            ),
            Created.unchecked(
                "a", None, micros, AlienEvent.BuildingStack(stack="s"), EventState.STARTED, None
            ),
            Updated.unchecked("a", micros + 3_000_000, AlienEvent.BuildingStack(stack="t"), 1),
        ]:
            handler.on_event_change(change)
        assert [
            "[1] ✓ Building image x in 1.0s",
            "[2] ▶ Building stack s",
            "[2]   Building stack t",
        ] == out.getvalue().splitlines()

    def test_changes_after_close_are_ignored(self, clock):
        """A closed handler writes nothing more."""
        handler, out = plain_handler(clock)
        handler.close()
        closed = out.getvalue()
        with make_bus(clock, handler):
            AlienEvent.BuildingStack(stack="s").emit()
        handler.close()
        assert ("✓ no events · total 0.0s\n", closed) == (closed, out.getvalue())

    def test_failure_details_wrap_to_the_width(self, clock):
        """Failure details wrap under their label at the given width; event lines are never cut."""
        handler, out = plain_handler(clock, width=30)
        with make_bus(clock, handler):
            AlienEvent.AssumingRole(role_arn="arn:aws:iam::123456789012:role/deployer").emit(
                EventState.FAILED,
                error=AlienError(code="DENIED", message="the caller may not assume this role"),
            )
        assert [
            "[1] ✗ Assuming role arn:aws:iam::123456789012:role/deployer failed",
            "[1]   DENIED: the caller may",
            "[1]   not assume this role",
        ] == out.getvalue().splitlines()


# -- the live frame -----------------------------------------------------------------------------


def frame_of(story, width=80, height=None, *, at=None):
    changes, end = record(story)
    tree = EventTree(changes) if at is None else tree_at(changes, at)
    return render_frame(tree, end if at is None else T0 + at, width, height)


class TestFrame:
    @pytest.mark.parametrize("story", [deploy_story, crash_story, tall_story])
    def test_no_line_is_wider_than_the_width(self, story):
        """At every width from 10 to 130 columns, no line of the frame is wider than the width."""
        changes, end = record(story)
        tree = EventTree(changes)
        too_wide = [
            (width, line.plain)
            for width in range(10, 131, 3)
            for line in render_frame(tree, end, width).lines
            if cell_len(line.plain) > width
        ]
        assert [] == too_wide

    @pytest.mark.parametrize("height", range(6, 45))
    def test_tall_tree_keeps_running_and_failed_events_visible(self, height):
        """Whatever the height, the frame fits it and still shows the two running agents and the failed one."""
        frame = frame_of(tall_story, 80, height)
        shown = frame.plain
        kept = [agent for agent in ("agent-07", "agent-38", "agent-40") if agent in shown]
        assert (True, ["agent-07", "agent-38", "agent-40"]) == (len(frame) <= height, kept)

    def test_very_short_screen_cuts_the_frame_and_says_so(self):
        """When even running and failed events do not fit, the frame is cut with a note."""
        frame = frame_of(tall_story, 80, 4)
        assert [
            "⠹ Deploying stack fleet                                                    21.0s",
            "├─ ✗ Provisioning agent agent-07 (release rel-7)                            0.2s",
            "… 3 more lines",
            "⠹ 3 running, 1 failed, 37 succeeded                                        21.0s",
        ] == frame.plain.splitlines()

    def test_final_frame_is_drawn_in_full(self):
        """Without a height, every visible event is drawn (the final frame)."""
        frame = frame_of(tall_story, 80)
        agents = [line.plain for line in frame.lines if "Provisioning agent" in line.plain]
        assert 40 == len(agents)

    def test_succeeded_subtree_collapses_to_one_line(self, clock):
        """A succeeded event hides its children; a running one shows them."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            resource = AlienEvent.BuildingResource(resource_name="api", resource_type="container")
            with resource.in_scope():
                for language in ("rust", "typescript"):
                    with AlienEvent.CompilingCode(language=language).in_scope():
                        clock.tick(1)
        running = render_frame(tree_at(recorder.changes, 1.5), T0 + 1.5, 50)
        done = render_frame(EventTree(recorder.changes), clock.now, 50)
        assert [
            "⠇ Building container api                      1.5s",
            "├─ ✓ Compiling rust                           1.0s",
            "└─ ⠇ Compiling typescript                     0.5s",
            "⠇ 2 running, 1 succeeded                      1.5s",
        ] == running.plain.splitlines()
        assert [
            "✓ Building container api                      2.0s",
            "✓ 3 succeeded                                 2.0s",
        ] == done.plain.splitlines()

    def test_failed_event_shows_message_sources_and_hint(self, clock):
        """A failed event is expanded: code and message, each source indented by depth, then the hint."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            AlienEvent.BuildingImage(image="api").emit(EventState.FAILED, error=COMPILE_ERROR)
        frame = render_frame(EventTree(recorder.changes), clock.now, 70)
        assert [
            "✗ Building image api",
            "  COMPILE_FAILED: cargo build exited with status 101",
            "  ├─▶ RUSTC_ERROR: error[E0308]: mismatched types",
            "  │   --> src/orders.rs:42:18",
            "  │   ├─▶ TYPE_MISMATCH: expected `u64`, found `i32`",
            "  hint: run `cargo build` in services/api to see every error",
            "✗ 1 failed                                                        0.0s",
        ] == frame.plain.splitlines()

    def test_failure_without_error_says_so(self, clock):
        """A failed state with no error still gets a detail line."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            AlienEvent.BuildingImage(image="api").emit(EventState.FAILED)
        frame = render_frame(EventTree(recorder.changes), clock.now, 40)
        assert "  failed without an error" == frame.lines[1].plain

    def test_alien_style_ticks_coalesce_to_the_latest(self, clock):
        """Plain events of one type under one parent show as the latest, with a count."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            parent = AlienEvent.PushingResource(
                resource_name="api", resource_type="container"
            ).emit(EventState.STARTED)
            for layer in range(1, 6):
                AlienEvent.PushingImage(image="api", progress=push(layer, 10, layer, 10)).emit(
                    parent=parent
                )
        frame = render_frame(EventTree(recorder.changes), clock.now, 80)
        expected = "└─ • Pushing image api ×5 ━━━━━━━━━━────────── 50% 5/10 layers · 5.0/10.0 MB"  # noqa: RUF001
        assert expected == (frame.lines[1].plain)

    def test_user_progress_draws_a_bar(self, clock):
        """An event with ``__alien_progress__`` gets a bar, a percentage and its counts."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            MigratingTable(table="t", rows_done=3, rows_total=12).emit(EventState.STARTED)
        frame = render_frame(EventTree(recorder.changes), clock.now, 60)
        assert (
            "⠋ Migrating table t ━━━━━─────────────── 25% 3/12       0.0s" == frame.lines[0].plain
        )

    def test_spinner_follows_the_clock(self):
        """The spinner is a function of time: one frame per 80 ms."""
        changes, _ = record(tall_story)
        tree = tree_at(changes, 21.0)
        spinners = {
            render_frame(tree, T0 + 21.0 + 0.08 * n, 60).lines[0].plain[0] for n in range(10)
        }
        assert set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") == spinners

    def test_empty_tree_draws_nothing(self):
        """No events, no lines."""
        assert ((), "") == (
            render_frame(EventTree(), T0, 80).lines,
            render_frame(EventTree(), T0, 80).plain,
        )

    def test_frame_prints_the_same_through_a_rich_console(self):
        """Printed by a fixed-width, colourless rich console, the frame is exactly its plain text."""
        frame = frame_of(deploy_story, 80, 24, at=DEPLOY_MID)
        out = io.StringIO()
        Console(file=out, width=80, color_system=None, force_terminal=False).print(frame)
        assert frame.plain == out.getvalue()

    def test_frame_styles_mark_states(self):
        """Spinners are cyan, success green, failure bold red, guides and times dim."""
        frame = frame_of(deploy_story, 80, 24, at=DEPLOY_MID)
        out = io.StringIO()
        Console(file=out, width=80, color_system="standard", force_terminal=True).print(frame)
        written = out.getvalue()
        assert ["\x1b[36m⠋", "\x1b[32m✓", "\x1b[1;31m✗", "\x1b[2m├─ "] == [
            code
            for code in ("\x1b[36m⠋", "\x1b[32m✓", "\x1b[1;31m✗", "\x1b[2m├─ ")
            if code in written
        ]

    def test_broken_hooks_fall_back_and_are_reported(self, clock):
        """A failing text or progress hook draws the fallback text and no bar, and on_error is told."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            BrokenText(name="a").emit(EventState.STARTED)
            BadProgress(name="b").emit(EventState.STARTED)
        errors = []
        frame = render_frame(EventTree(recorder.changes), clock.now, 40, on_error=errors.append)
        assert [
            "⠋ BrokenText name=a                 0.0s",
            "⠋ BadProgress name=b                0.0s",
        ] == frame.plain.splitlines()[:2]
        assert [RuntimeError, TypeError] == [type(error) for error in errors]


# -- live mode, on a terminal -------------------------------------------------------------------


def last_frame(written: str) -> str:
    """The text drawn after the last erase of the live region, without escape codes."""
    tail = written.rsplit("\x1b[2K", 1)[-1]
    return ANSI.sub("", tail).replace("\r", "").rstrip("\n")


class TestLive:
    def test_terminal_gets_the_live_tree_and_the_full_final_frame(self):
        """On a real pseudo-terminal, auto mode goes live, hides the cursor, and ends with the final frame."""
        clock = FakeClock()
        with pseudo_terminal() as (terminal, written):
            handler = ConsoleHandler(
                file=terminal,
                environ={"TERM": "xterm-256color", "LINES": "24"},
                clock=clock,
                width=80,
            )
            recorder = RecordingHandler()
            with make_bus(clock, handler, recorder):
                deploy_story(clock)
            handler.close()
            terminal.close()
            text = written()
        final = render_frame(EventTree(recorder.changes), clock.now, 80)
        assert ("live", True) == (handler.mode, handler.color)
        assert (True, True) == ("\x1b[?25l" in text, text.rstrip().endswith("\x1b[?25h"))
        assert final.plain == last_frame(text)

    def test_redraws_are_rate_limited(self, clock):
        """Many changes within one refresh interval draw one frame; the next interval draws again."""
        out = io.StringIO()
        handler = ConsoleHandler(
            "live", file=out, environ={"LINES": "24"}, clock=clock, width=60, refresh_per_second=4
        )
        with make_bus(clock, handler):
            handle = MigratingTable(table="t").emit(EventState.STARTED)
            for done in range(1, 101):
                clock.tick(0.002)
                handle.update(MigratingTable(table="t", rows_done=done, rows_total=100))
            drawn_early = out.getvalue().count("Migrating table t")
            clock.tick(0.3)
            handle.complete()
        drawn_later = out.getvalue().count("Migrating table t")
        handler.close()
        assert (1, 2, 3) == (drawn_early, drawn_later, out.getvalue().count("Migrating table t"))

    def test_frames_fit_the_screen_but_the_final_one_is_whole(self, clock):
        """While live, frames fit the terminal height; the final frame runs past it, in full."""
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={"LINES": "12"}, clock=clock, width=80)
        recorder = RecordingHandler()
        with make_bus(clock, handler, recorder):
            tall_story(clock)
        live_frames = out.getvalue().split("\x1b[2K")
        handler.close()
        tallest = max(ANSI.sub("", part).replace("\r", "").count("\n") + 1 for part in live_frames)
        final = render_frame(EventTree(recorder.changes), clock.now, 80)
        assert (True, 44) == (tallest <= 11, len(final))
        assert final.plain == last_frame(out.getvalue())

    def test_live_with_the_real_clock_draws_from_a_thread(self):
        """With the real clock the emitting call only folds changes; close still prints the final frame."""
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, width=60, refresh_per_second=50)
        with EventBus([handler]), AlienEvent.BuildingStack(stack="s").in_scope():
            time.sleep(0.05)  # a few ticks of the drawing thread, if it gets them
        handler.close()
        final = last_frame(out.getvalue()).splitlines()
        assert ["✓ Building stack s", "✓ 1 succeeded"] == [
            line.rsplit(" ", 1)[0].rstrip() for line in final
        ]

    def test_display_is_closed_at_exit_when_nobody_closes_it(self):
        """A program that never closes the handler still gets the final frame and its cursor back."""
        script = (
            "from alien_events_api import AlienEvent, EventState\n"
            "from alien_events_sdk import EventBus\n"
            "from alien_events_console import ConsoleHandler\n"
            "handler = ConsoleHandler(width=40)\n"
            "with EventBus([handler]):\n"
            "    AlienEvent.BuildingStack(stack='s').emit(EventState.SUCCESS)\n"
        )
        environ = {**os.environ, "ALIEN_EVENTS_CONSOLE_MODE": "live", "NO_COLOR": "1"}
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env=environ,
            check=False,
            timeout=120,
        )
        assert (0, True) == (done.returncode, done.stderr.rstrip().endswith("\x1b[?25h"))
        assert [
            "✓ Building stack s",
            "✓ 1 succeeded                       0.0s",
        ] == last_frame(done.stderr).splitlines()

    def test_nothing_is_drawn_without_changes(self, clock):
        """A live handler that received nothing writes nothing, even at close."""
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, clock=clock)
        handler.close()
        assert "" == out.getvalue()

    def test_closing_twice_prints_the_end_once(self, clock):
        """``close()`` is idempotent."""
        handler, out = plain_handler(clock)
        handler.close()
        handler.close()
        assert ["✓ no events · total 0.0s"] == out.getvalue().splitlines()


# -- rendering never fails the program ----------------------------------------------------------


def run_on(clock, handler, story) -> RecordingHandler:
    """Run ``story(clock)`` on a bus with ``handler`` and a recorder, close the handler; return the recorder."""
    recorder = RecordingHandler()
    with make_bus(clock, handler, recorder):
        story(clock)
    handler.close()
    return recorder


def two_broken_scopes(clock):
    for name in ("a", "b"):
        with BrokenText(name=name).in_scope():
            clock.tick(1)


class TestRenderingErrors:
    def test_error_is_reported_once_and_never_raised(self, clock):
        """A failing text hook warns once, the emits succeed, and the lines use the fallback text."""
        handler, out = plain_handler(clock)
        with pytest.warns(ConsoleWarning, match="rendering failed") as caught:
            run_on(clock, handler, two_broken_scopes)
        assert 1 == len(caught)
        assert "RuntimeError: no text today" in str(caught[0].message)
        assert [
            "[1] ▶ BrokenText name=a",
            "[1] ✓ BrokenText name=a in 1.0s",
            "[2] ▶ BrokenText name=b",
            "[2] ✓ BrokenText name=b in 1.0s",
            "✓ 2 succeeded · total 2.0s",
        ] == out.getvalue().splitlines()

    def test_with_warnings_as_errors_the_report_is_a_line(self, clock):
        """If warnings are errors, the one report goes to the output as a line instead."""
        handler, out = plain_handler(clock)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            run_on(clock, handler, two_broken_scopes)
        reports = [line for line in out.getvalue().splitlines() if "rendering failed" in line]
        assert [
            (
                "alien-events console: rendering failed (RuntimeError: no text today); the "
                "display carries on, and further rendering errors are not reported"
            )
        ] == reports

    def test_a_broken_output_never_fails_the_emitter(self, clock):
        """Writing to a closed file fails inside the handler only: emits go on, one warning."""
        out = io.StringIO()
        out.close()
        handler = ConsoleHandler("plain", file=out, color=False, environ={}, clock=clock)

        def story(clock):
            with AlienEvent.BuildingStack(stack="s").in_scope():
                AlienEvent.LoadingConfiguration().emit()

        with pytest.warns(ConsoleWarning, match="I/O operation on closed file") as caught:
            recorder = run_on(clock, handler, story)
        assert (1, 3) == (len(caught), len(recorder.changes))

    def test_live_errors_are_reported_once(self, clock):
        """In live mode too, a failing hook is reported once and the final frame still prints."""
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, clock=clock, width=40)

        def story(clock):
            BrokenText(name="a").emit(EventState.STARTED).complete()
            clock.tick(1)
            BadProgress(name="b").emit(EventState.STARTED)

        with pytest.warns(ConsoleWarning) as caught:
            run_on(clock, handler, story)
        assert 1 == len(caught)
        assert "✓ BrokenText name=a" in last_frame(out.getvalue())

    def test_something_that_is_not_a_change_is_reported_not_raised(self, clock):
        """A handler given junk reports it once and keeps rendering real changes."""
        handler, out = plain_handler(clock)

        def junk(handler):
            handler.on_event_change("junk")
            handler.on_event_change(42)

        with pytest.warns(ConsoleWarning, match="apply\\(\\) takes a change") as caught:
            junk(handler)
        with make_bus(clock, handler):
            AlienEvent.BuildingStack(stack="s").emit()
        assert (1, ["[1] • Building stack s"]) == (len(caught), out.getvalue().splitlines())

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"mode": "fancy"}, "mode must be one of"),
            ({"color": "sometimes"}, "color must be"),
            ({"width": 0}, "width must be an int >= 1"),
            ({"refresh_per_second": 0}, "refresh_per_second must be a number > 0"),
            ({"heartbeat": -1}, "heartbeat must be a number >= 0"),
        ],
    )
    def test_bad_arguments_raise_at_construction(self, options, message):
        """Bad arguments are a ``ValueError`` when the handler is built, never later."""
        with pytest.raises(ValueError, match=message):
            ConsoleHandler(file=io.StringIO(), environ={}, **options)

    def test_clock_must_be_callable(self):
        """A clock that cannot be called is a ``TypeError``."""
        with pytest.raises(TypeError, match="clock must be a callable"):
            ConsoleHandler(file=io.StringIO(), environ={}, clock=5.0)


# -- the plugin ---------------------------------------------------------------------------------


class TestPlugin:
    def test_plugin_is_installed(self):
        """The ``console`` entry point is found and gives the ``console`` handler."""
        found = {info.entry_point: info for info in installed_plugins().plugins}
        assert ("alien-events-console", ("console",)) == (
            found["console"].distribution,
            found["console"].handlers,
        )

    def test_bus_from_plugins(self, capsys):
        """``EventBus.from_plugins(["console"], console={"mode": "plain"})`` writes plain lines to stderr."""
        bus = EventBus.from_plugins(["console"], console={"mode": "plain", "color": "never"})
        (handler,) = bus.handlers
        with bus, AlienEvent.BuildingStack(stack="s").in_scope():
            pass
        bus.close()
        lines = capsys.readouterr().err.splitlines()
        assert (ConsoleHandler, "plain") == (type(handler), handler.mode)
        assert ["[1] ▶ Building stack s", "[1] ✓ Building stack s"] == [
            line.split(" in ")[0] for line in lines[:2]
        ]
        assert lines[-1].startswith("✓ 1 succeeded · total ")

    def test_bus_from_environment(self):
        """The options come from ALIEN_EVENTS_CONSOLE_* variables too."""
        bus = EventBus.from_env(
            {
                "ALIEN_EVENTS_HANDLERS": "console",
                "ALIEN_EVENTS_CONSOLE_MODE": "quiet",
                "ALIEN_EVENTS_CONSOLE_COLOR": "always",
                "ALIEN_EVENTS_CONSOLE_WIDTH": "60",
            }
        )
        (handler,) = bus.handlers
        bus.close()
        assert ("quiet", True) == (handler.mode, handler.color)

    @pytest.mark.parametrize(("width", "expected"), [(0, 1), (30, 2)])
    def test_plugin_width_option(self, width, expected, capsys, monkeypatch):
        """The plugin's ``width`` wraps failure details; 0 leaves it to the terminal (none here)."""
        monkeypatch.delenv("COLUMNS", raising=False)
        bus = EventBus.from_plugins(
            ["console"], console={"mode": "quiet", "color": "never", "width": width}
        )
        error = AlienError(code="DENIED", message="the caller may not assume this role")
        with bus:
            AlienEvent.AssumingRole(role_arn="r").emit(EventState.FAILED, error=error)
        bus.close()
        details = [
            line for line in capsys.readouterr().err.splitlines() if line.startswith("[1]   ")
        ]
        assert expected == len(details)

    @pytest.mark.parametrize(
        ("options", "option"),
        [
            ({"mode": "fancy"}, "*"),
            ({"color": "sometimes"}, "*"),
            ({"width": -1}, "*"),
            ({"width": "wide"}, "width"),
            ({"speed": 3}, "speed"),
        ],
    )
    def test_bad_plugin_options_raise_plugin_option_error(self, options, option):
        """A bad option is a ``PluginOptionError`` naming the plugin."""
        with pytest.raises(PluginOptionError) as caught:
            EventBus.from_plugins(["console"], console=options)
        assert ("console", option) == (caught.value.plugin, caught.value.option)


# -- the public surface -------------------------------------------------------------------------


class TestExports:
    def test_all_is_sorted_and_complete(self):
        """``__all__`` is sorted and lists every public name the package defines."""
        module = importlib.import_module("alien_events_console")
        public = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
        }
        assert (sorted(module.__all__), set(module.__all__)) == (module.__all__, public)

    def test_public_objects_present_as_public_module(self):
        """Classes and functions in ``__all__`` say they live in ``alien_events_console``."""
        module = importlib.import_module("alien_events_console")
        wrong = [
            name
            for name in module.__all__
            if (inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name)))
            and getattr(module, name).__module__ != "alien_events_console"
        ]
        assert [] == wrong
