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

import atexit
import contextlib
import fcntl
import gc
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
import weakref
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


@event_type(tag="ConsoleTestUploadingBlob")
class UploadingBlob(Event):
    """A user type without hooks whose field holds an Alien ``PushProgress``."""

    blob: str
    progress: PushProgress | None = None


class ReleaseNote:
    """A plain class (not an event type): its public attributes are its fields."""

    def __init__(self) -> None:
        self.title = "fix login"
        self.count = 3
        self._cache = "hidden"


class Slotted:
    """A class with ``__slots__`` only: no ``__dict__`` and no attrs fields."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 1


class Unprintable:
    """A value whose ``repr()`` fails."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@event_type(tag="ConsoleTestUnprintableField")
class UnprintableField(Event):
    """A user type whose text hook fails and whose field cannot be printed either."""

    thing: Unprintable

    def __alien_text__(self) -> str:
        raise RuntimeError("no text")


class TestDescribeFallbacks:
    def test_push_progress_field_of_a_user_type_reads_as_layers(self):
        """A user type without hooks shows a ``PushProgress`` field as layers done out of layers."""
        event = UploadingBlob(blob="db.tar", progress=PushProgress("Up", 2, 5, 10, 20))
        assert "UploadingBlob blob=db.tar progress=2/5" == describe(event)

    def test_plain_object_shows_its_public_attributes(self):
        """An object that is not an event type reads as its name and public attributes, private ones left out."""
        assert "ReleaseNote title='fix login' count=3" == describe(ReleaseNote())

    def test_object_without_attributes_shows_its_type_name(self):
        """An object with neither ``__dict__`` nor attrs fields reads as its type name alone."""
        assert ("Slotted", "int") == (describe(Slotted()), describe(42))

    def test_unprintable_field_after_a_failing_hook_falls_back_to_the_type_name(self, clock):
        """When the text hook fails and a field's repr fails too, the line shows the type name; one warning."""
        handler, out = plain_handler(clock)
        with pytest.warns(ConsoleWarning, match="RuntimeError: no text") as caught:
            run_on(clock, handler, lambda clock: UnprintableField(thing=Unprintable()).emit())
        assert 1 == len(caught)
        assert ["[1] • UnprintableField", "✓ 1 info · total 0.0s"] == out.getvalue().splitlines()

    def test_render_frame_without_on_error_still_falls_back(self, clock):
        """Without ``on_error``, failing hooks still draw the fallback text and no bar, and nothing raises."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            BrokenText(name="a").emit(EventState.STARTED)
            BadProgress(name="b").emit(EventState.STARTED)
        frame = render_frame(EventTree(recorder.changes), clock.now, 40)
        assert [
            "⠋ BrokenText name=a                 0.0s",
            "⠋ BadProgress name=b                0.0s",
            "⠋ 2 running                         0.0s",
        ] == frame.plain.splitlines()


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


class LineSink:
    """A minimal text stream (only ``write``, like some logging adapters): no isatty, no flush."""

    def __init__(self) -> None:
        self.chunks: list[str] = []

    def write(self, text: str) -> int:
        self.chunks.append(text)
        return len(text)


class TestStreamWithoutTerminalMethods:
    def test_no_file_or_a_file_without_isatty_is_no_terminal(self):
        """A missing file, or one without ``isatty``, counts as no terminal: plain mode, no colour."""
        assert ("plain", False) == (
            choose_mode(file=None, environ={}),
            choose_color(file=None, environ={}),
        )
        assert ("plain", False) == (
            choose_mode(file=LineSink(), environ={}),
            choose_color(file=LineSink(), environ={}),
        )

    def test_handler_writes_plain_lines_to_a_stream_with_only_write(self, clock):
        """A stream with only ``write`` gets uncoloured plain lines, nothing wrapped, no flush needed."""
        sink = LineSink()
        handler = ConsoleHandler(file=sink, environ={}, clock=clock)

        def story(clock):
            with AlienEvent.BuildingStack(stack="s").in_scope():
                clock.tick(1)
                AlienEvent.AssumingRole(role_arn="r").emit(
                    EventState.FAILED,
                    error=AlienError(code="DENIED", message="the caller may not assume this role"),
                )

        run_on(clock, handler, story)
        assert ("plain", False) == (handler.mode, handler.color)
        assert [
            "[1] ▶ Building stack s",
            "[1.1] ✗ Assuming role r failed",
            "[1.1]   DENIED: the caller may not assume this role",
            "[1] ✓ Building stack s in 1.0s",
            "Failed (1):",
            "[1.1] ✗ Assuming role r failed",
            "[1.1]   in Building stack s",
            "[1.1]   DENIED: the caller may not assume this role",
            "✓ 1 failed, 1 succeeded · total 1.0s",
        ] == "".join(sink.chunks).splitlines()


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


@event_type(tag="ConsoleTestCountingRows")
class CountingRows(Event):
    """A user type whose progress is a count with no known total."""

    table: str
    rows: int = 0

    def __alien_text__(self) -> str:
        return f"Counting rows in {self.table}"

    def __alien_progress__(self) -> tuple[float, float] | None:
        return (self.rows, 0)


@event_type(tag="ConsoleTestSyncingBucket")
class SyncingBucket(Event):
    """A user type counting objects with no total, that also carries a push progress with no totals."""

    bucket: str
    objects: int = 0
    progress: PushProgress | None = None

    def __alien_text__(self) -> str:
        return f"Syncing bucket {self.bucket}"

    def __alien_progress__(self) -> tuple[float, float] | None:
        return (self.objects, 0)


WAITING_SYNC = SyncingBucket(bucket="b", objects=7, progress=PushProgress("Waiting", 0, 0, 0, 0))


def chained_error(depth: int) -> AlienError:
    """An error with ``depth`` sources below it, ``S1`` the first, each the cause of the one above."""
    error = None
    for level in range(depth, 0, -1):
        error = AlienError(code=f"S{level}", message=f"cause {level}", source=error)
    return AlienError(code="TOP", message="it broke", source=error)


class TestPlainFormatting:
    def test_durations_of_an_hour_or_more_read_in_hours_and_minutes(self, clock):
        """An event that ran 1 h 2 min 5 s reads ``in 1h02m``, and so does the total."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            handle = AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED)
            clock.at(3725.0)
            handle.complete()
        handler.close()
        assert [
            "[1] ▶ Deploying stack s",
            "[1] ✓ Deploying stack s in 1h02m",
            "✓ 1 succeeded · total 1h02m",
        ] == out.getvalue().splitlines()

    def test_started_event_shows_its_progress_and_throttles_from_there(self, clock):
        """A start line carries the progress (bytes under 1 kB in B), and counts as the last progress line."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            handle = AlienEvent.PushingImage(
                image="a", progress=PushProgress("Up", 1, 2, 512, 900)
            ).emit(EventState.STARTED)
            clock.tick(0.5)  # moved a step, but too soon after the start line
            handle.update(
                AlienEvent.PushingImage(image="a", progress=PushProgress("Up", 1, 2, 600, 900))
            )
        assert [
            "[1] ▶ Pushing image a: 56% (1/2 layers · 512/900 B)"
        ] == out.getvalue().splitlines()

    def test_push_progress_shows_only_the_totals_it_knows(self, clock):
        """Push progress with no byte total shows layers only; with no layer total, bytes only."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            AlienEvent.PushingImage(image="b", progress=PushProgress("Up", 2, 5, 0, 0)).emit(
                EventState.STARTED
            )
            AlienEvent.PushingImage(
                image="c", progress=PushProgress("Up", 0, 0, 1_500_000, 3_000_000)
            ).emit(EventState.STARTED)
        assert [
            "[1] ▶ Pushing image b: 40% (2/5 layers)",
            "[2] ▶ Pushing image c: 50% (1.5/3.0 MB)",
        ] == out.getvalue().splitlines()

    def test_progress_without_a_total_shows_the_count(self, clock):
        """Progress whose total is unknown (0) shows the bare count, with no percentage."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            handle = CountingRows(table="orders", rows=3).emit(EventState.STARTED)
            clock.tick(5.0)
            handle.update(CountingRows(table="orders", rows=1200))
        assert [
            "[1] ▶ Counting rows in orders: 3",
            "[1]   Counting rows in orders: 1200",
        ] == out.getvalue().splitlines()

    def test_progress_with_nothing_to_show_adds_nothing_to_the_line(self, clock):
        """A progress with no total whose push progress has no counts adds nothing, as in the live frame."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            WAITING_SYNC.emit(EventState.STARTED)
        assert ["[1] ▶ Syncing bucket b"] == out.getvalue().splitlines()

    def test_failure_without_an_error_says_so(self, clock):
        """A failed state with no error gets a detail line saying so, at once and in the end block."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            AlienEvent.BuildingImage(image="api").emit(EventState.FAILED)
        handler.close()
        assert [
            "[1] ✗ Building image api failed",
            "[1]   failed without an error",
            "Failed (1):",
            "[1] ✗ Building image api failed",
            "[1]   failed without an error",
            "✗ 1 failed · total 0.0s",
        ] == out.getvalue().splitlines()

    def test_a_long_error_message_is_cut_to_twelve_lines(self, clock):
        """An error message of 15 lines shows its first 11 and says how many more there were."""
        handler, out = plain_handler(clock)
        message = "\n".join(f"line {n}" for n in range(1, 16))
        with make_bus(clock, handler):
            AlienEvent.BuildingImage(image="api").emit(
                EventState.FAILED, error=AlienError(code="LOG", message=message)
            )
        assert [
            "[1] ✗ Building image api failed",
            "[1]   LOG: line 1",
            *[f"[1]   line {n}" for n in range(2, 12)],
            "[1]   … 4 more lines",
        ] == out.getvalue().splitlines()

    def test_a_deep_chain_of_sources_is_cut_after_sixteen(self, clock):
        """An error with 18 sources shows 16 of them, then says more sources were left out."""
        handler, out = plain_handler(clock)
        with make_bus(clock, handler):
            AlienEvent.BuildingImage(image="api").emit(EventState.FAILED, error=chained_error(18))
        assert [
            "[1] ✗ Building image api failed",
            "[1]   TOP: it broke",
            *[f"[1]   {'│   ' * (n - 1)}├─▶ S{n}: cause {n}" for n in range(1, 17)],
            f"[1]   {'│   ' * 16}… more sources",
        ] == out.getvalue().splitlines()

    def test_coloured_failure_details(self, clock):
        """In colour, labels and markers are dim, the error red, the hint yellow, and no empty codes are written."""
        out = io.StringIO()
        handler = ConsoleHandler("plain", file=out, color=True, environ={}, clock=clock)
        error = AlienError(
            code="DENIED",
            message="no",
            hint="ask",
            source=AlienError(code="HTTP", message="403"),
        )
        with make_bus(clock, handler):
            AlienEvent.AssumingRole(role_arn="r").emit(EventState.FAILED, error=error)
        assert [
            "\x1b[2m[1] \x1b[0m\x1b[1;31m✗\x1b[0m \x1b[1;31mAssuming role r failed\x1b[0m",
            "\x1b[2m[1] \x1b[0m  \x1b[31mDENIED: no\x1b[0m",
            "\x1b[2m[1] \x1b[0m  \x1b[2m├─▶ \x1b[0m\x1b[31mHTTP: 403\x1b[0m",
            "\x1b[2m[1] \x1b[0m  \x1b[2mhint: \x1b[0m\x1b[33mask\x1b[0m",
        ] == out.getvalue().splitlines()

    def test_no_heartbeat_when_nothing_runs(self, clock):
        """After a long silence with nothing running, closing prints no heartbeat, only the summary."""
        handler, out = plain_handler(clock, heartbeat=10.0)
        with make_bus(clock, handler):
            AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED).complete()
        clock.at(100.0)
        handler.close()
        assert [
            "[1] ▶ Deploying stack s",
            "[1] ✓ Deploying stack s in 0.0s",
            "✓ 1 succeeded · total 0.0s",
        ] == out.getvalue().splitlines()

    def test_plain_mode_on_a_terminal_wraps_details_to_its_width(self, clock):
        """Plain mode on a 30-column pseudo-terminal, with no width given, wraps failure details to 30."""
        with pseudo_terminal(columns=30) as (terminal, written):
            handler = ConsoleHandler("plain", file=terminal, color=False, environ={}, clock=clock)
            with make_bus(clock, handler):
                AlienEvent.AssumingRole(role_arn="r").emit(
                    EventState.FAILED,
                    error=AlienError(code="DENIED", message="the caller may not assume this role"),
                )
            terminal.close()
            text = written()
        assert [
            "[1] ✗ Assuming role r failed",
            "[1]   DENIED: the caller may",
            "[1]   not assume this role",
        ] == text.splitlines()

    def test_repr_names_mode_and_colour(self, clock):
        """``repr`` shows the mode and whether the output is coloured."""
        handler, _ = plain_handler(clock, mode="quiet")
        assert "<ConsoleHandler mode=quiet color=False>" == repr(handler)


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


def micros_at(seconds: float) -> int:
    """Microseconds since the epoch, ``seconds`` after T0."""
    return round((T0 + seconds) * 1_000_000)


class TestFrameEdges:
    def test_error_shown_deeper_below_a_plain_event_is_not_repeated(self, clock):
        """A failed parent whose error is shown by a grandchild (under a plain event) does not repeat it."""
        recorder = RecordingHandler()
        denied = AlienError(code="DENIED", message="no")
        with make_bus(clock, recorder):
            root = AlienEvent.DeployingStack(stack_name="s").emit(EventState.STARTED)
            role = AlienEvent.AssumingRole(role_arn="r").emit(parent=root)
            AlienEvent.CreatingRelease(project="shop").emit(
                EventState.FAILED, parent=role, error=denied
            )
            clock.tick(1)
            root.fail(denied)
        frame = render_frame(EventTree(recorder.changes), clock.now, 50)
        assert [
            "✗ Deploying stack s                           1.0s",
            "└─ • Assuming role r",
            "   └─ ✗ Creating release for shop",
            "        DENIED: no",
            "✗ 2 failed, 1 info                            1.0s",
        ] == frame.plain.splitlines()

    def test_succeeded_parent_shows_its_hot_children_first_and_last(self, clock):
        """A succeeded parent lists a running first child and a failed last one, the done one between summarised."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            root = AlienEvent.BuildingStack(stack="s").emit(EventState.STARTED)
            AlienEvent.BuildingImage(image="a").emit(EventState.STARTED, parent=root)
            AlienEvent.BuildingImage(image="b").emit(EventState.STARTED, parent=root).complete()
            AlienEvent.BuildingImage(image="c").emit(
                EventState.FAILED, parent=root, error=AlienError(code="E", message="bad")
            )
            clock.tick(1)
            root.complete()
        frame = render_frame(EventTree(recorder.changes), clock.now, 50)
        assert [
            "✓ Building stack s                            1.0s",
            "├─ ⠹ Building image a                         1.0s",
            "├─ … 1 more done",
            "└─ ✗ Building image c",
            "     E: bad",
            "⠹ 1 running, 1 failed, 2 succeeded            1.0s",
        ] == frame.plain.splitlines()

    def test_events_deeper_than_32_levels_are_counted_not_drawn(self, clock):
        """In a chain of 40 nested events, the 33rd says how many are below it instead of drawing them."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            parent = None
            for level in range(40):
                parent = AlienEvent.BuildingImage(image=f"i{level}").emit(
                    EventState.STARTED, parent=parent
                )
        frame = render_frame(EventTree(recorder.changes), clock.now, 200)
        assert [
            ("   " * 31 + "└─ ⠋ Building image i32").ljust(195) + " 0.0s",
            "   " * 32 + "└─ … 7 more below",
            "⠋ 40 running".ljust(195) + " 0.0s",
        ] == frame.plain.splitlines()[32:]

    def test_a_chain_exactly_33_levels_deep_is_drawn_whole(self, clock):
        """The 33rd level of a chain is drawn, with no summary line when nothing is below it."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            parent = None
            for level in range(33):
                parent = AlienEvent.BuildingImage(image=f"i{level}").emit(
                    EventState.STARTED, parent=parent
                )
        frame = render_frame(EventTree(recorder.changes), clock.now, 200)
        assert [
            ("   " * 31 + "└─ ⠋ Building image i32").ljust(195) + " 0.0s",
            "⠋ 33 running".ljust(195) + " 0.0s",
        ] == frame.plain.splitlines()[32:]

    def test_summaries_either_side_of_a_dropped_event_merge_into_one(self):
        """On a short screen, finished roots and an older orphan (its parent never seen) become one summary."""
        tree = EventTree(
            [
                Created.unchecked(
                    "h",
                    None,
                    micros_at(0.5),
                    AlienEvent.DeployingStack(stack_name="fleet"),
                    EventState.STARTED,
                    None,
                ),
                Created.unchecked(
                    "r1",
                    None,
                    micros_at(1),
                    AlienEvent.BuildingImage(image="one"),
                    EventState.SUCCESS,
                    None,
                ),
                Created.unchecked(
                    "r2",
                    None,
                    micros_at(3),
                    AlienEvent.BuildingImage(image="two"),
                    EventState.SUCCESS,
                    None,
                ),
                Created.unchecked(
                    "o",
                    "gone",
                    micros_at(2),
                    AlienEvent.BuildingImage(image="orphan"),
                    EventState.SUCCESS,
                    None,
                ),
            ]
        )
        frame = render_frame(tree, T0 + 4, 50, 3)
        assert [
            "⠋ Deploying stack fleet                       3.5s",
            "… 3 more done",
            "⠋ 1 running, 3 succeeded                      3.5s",
        ] == frame.plain.splitlines()

    def test_progress_with_nothing_to_show_draws_nothing(self, clock):
        """A progress with no total whose push progress has no counts draws no count, no bar."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            WAITING_SYNC.emit(EventState.STARTED)
        frame = render_frame(EventTree(recorder.changes), clock.now, 50)
        assert "⠋ Syncing bucket b".ljust(45) + " 0.0s" == frame.lines[0].plain

    def test_progress_without_a_total_draws_the_count_without_a_bar(self, clock):
        """An event whose progress total is unknown shows its count, dimmed, and no bar."""
        recorder = RecordingHandler()
        with make_bus(clock, recorder):
            CountingRows(table="orders", rows=42).emit(EventState.STARTED)
        frame = render_frame(EventTree(recorder.changes), clock.now, 50)
        line = frame.lines[0]
        assert ("⠋ Counting rows in orders 42".ljust(45) + " 0.0s", " 42", "dim") == (
            line.plain,
            line.plain[25:28],
            next(span.style for span in line.spans if span.start == 25),
        )


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


def started_change(stack: str = "s"):
    """The ``Created`` of a started ``BuildingStack``, stamped with the real clock."""
    recorder = RecordingHandler()
    with EventBus([recorder]):
        AlienEvent.BuildingStack(stack=stack).emit(EventState.STARTED)
    (change,) = recorder.changes
    return change


def new_console_threads(before):
    """The handler threads started since ``before`` (a set of threads)."""
    return [
        thread
        for thread in threading.enumerate()
        if thread not in before and thread.name == "alien-events-console"
    ]


def wait_until(condition, what: str) -> None:
    """Poll ``condition`` until it holds (a generous bound, never reached when all is well)."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.005)


@contextlib.contextmanager
def at_first_tick(action):
    """
    Run ``action`` once in the handler thread started inside the block, just before its first tick.

    A profile hook on the return of the thread's timed ``Event.wait`` (``False``: a tick is
    due): nothing is replaced, the tick itself then runs as usual. Yields an event set once
    ``action`` ran.
    """
    ran = threading.Event()

    def hook(frame, event, arg):
        if (
            event == "return"
            and arg is False
            and frame.f_code is threading.Event.wait.__code__
            and not ran.is_set()
        ):
            action()
            ran.set()

    previous = threading.getprofile()
    threading.setprofile(hook)
    try:
        yield ran
    finally:
        threading.setprofile(previous)


COUNTED_TEXT_CALLS: list[str] = []


@event_type(tag="ConsoleTestCountedText")
class CountedText(Event):
    """A user type whose text hook records each call, so drawing can be observed."""

    name: str

    def __alien_text__(self) -> str:
        COUNTED_TEXT_CALLS.append(self.name)
        return f"Counted {self.name}"


class TestLiveThreads:
    def test_a_change_racing_the_start_of_the_display_is_queued_not_lost(self):
        """A change whose emitter waited while another thread started the display is still folded and drawn."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            root = AlienEvent.BuildingStack(stack="s").emit(EventState.STARTED)
            AlienEvent.LoadingConfiguration().emit(parent=root)
        first, second = recorder.changes
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, width=40, refresh_per_second=1)
        code = ConsoleHandler.on_event_change.__code__
        source, start = inspect.getsourcelines(ConsoleHandler.on_event_change)
        lock_line = start + next(i for i, line in enumerate(source) if "with self._lock:" in line)
        racer = threading.Thread(target=handler.on_event_change, args=(second,))
        waited = []

        def start_racer_and_let_it_wait_for_the_lock():
            # The display is starting (its first write) under the lock, the queue not made yet.
            racer.start()

            def waiting():
                frame = sys._current_frames().get(racer.ident)
                return frame is not None and (frame.f_code, frame.f_lineno) == (code, lock_line)

            wait_until(waiting, "the second emitter to wait for the lock")
            waited.append(True)

        def hook(frame, event, arg):
            if (
                event == "c_call"
                and getattr(arg, "__self__", None) is out
                and arg.__name__ == "write"
                and not waited
            ):
                start_racer_and_let_it_wait_for_the_lock()

        previous = sys.getprofile()
        sys.setprofile(hook)
        try:
            handler.on_event_change(first)
        finally:
            sys.setprofile(previous)
        racer.join()
        handler.close()
        final = last_frame(out.getvalue())
        assert [True] == waited
        assert (2, True, True) == (
            len(handler.tree),
            "Building stack s" in final,
            "└─ • Loading configuration" in final,
        )

    def test_a_bad_change_in_the_queue_is_reported_and_the_rest_still_folded(self):
        """Junk queued for the drawing thread is reported once; the changes around it are still drawn."""
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, width=40, refresh_per_second=1)

        def junk_between_two_changes():
            handler.on_event_change(started_change("a"))
            handler.on_event_change("junk")
            handler.on_event_change(started_change("b"))
            handler.close()

        with pytest.warns(ConsoleWarning, match=r"apply\(\) takes a change, got str") as caught:
            junk_between_two_changes()
        assert 1 == len(caught)
        assert ["Building stack a", "Building stack b"] == [
            line[2:].split("  ")[0] for line in last_frame(out.getvalue()).splitlines()[:2]
        ]

    def test_a_tick_due_when_the_handler_closes_draws_nothing_more(self):
        """A drawing tick that comes after close renders no frame: no user hook is called again."""
        COUNTED_TEXT_CALLS.clear()
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, width=40, refresh_per_second=200)
        calls_at_close = []
        threads = []

        def close_now():
            handler.close()
            calls_at_close.append(len(COUNTED_TEXT_CALLS))
            threads.append(threading.current_thread())

        with at_first_tick(close_now) as ran, EventBus([handler]):
            CountedText(name="x").emit(EventState.STARTED)
            wait_until(ran.is_set, "the first tick")
        threads[0].join(timeout=30)
        assert (False, [len(COUNTED_TEXT_CALLS)]) == (threads[0].is_alive(), calls_at_close)
        assert "Counted x" in last_frame(out.getvalue())

    def test_a_slow_frame_delays_the_next_one(self):
        """Drawing a big tree at a very high refresh rate skips ticks: fewer frames are drawn than ticks run."""
        out = io.StringIO()
        handler = ConsoleHandler(
            "live", file=out, environ={}, width=60, refresh_per_second=1_000_000
        )
        ticks = []

        def count(frame, event, arg):
            if event == "return" and arg is False and frame.f_code is threading.Event.wait.__code__:
                ticks.append(True)

        previous = threading.getprofile()
        threading.setprofile(count)
        try:
            with EventBus([handler]):
                root = AlienEvent.DeployingStack(stack_name="fleet").emit(EventState.STARTED)
                for number in range(300):
                    AlienEvent.ProvisioningAgent(
                        agent_id=f"agent-{number:03d}", release_id="r"
                    ).emit(EventState.STARTED, parent=root)
                wait_until(lambda: len(ticks) >= 40, "40 ticks of the drawing thread")
                handler.close()
        finally:
            threading.setprofile(previous)
        frames = out.getvalue().count("Deploying stack fleet") - 1  # the final frame aside
        assert 0 < frames < len(ticks)

    def test_a_broken_output_while_drawing_is_reported_once(self):
        """When the output breaks under the drawing thread, one warning says so and close still returns."""
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, width=40, refresh_per_second=200)

        def break_the_output_then_close(caught):
            handler.on_event_change(started_change())
            out.close()
            wait_until(lambda: len(caught) > 0, "the drawing thread to report the broken output")
            handler.close()

        with pytest.warns(ConsoleWarning, match="I/O operation on closed file") as caught:
            break_the_output_then_close(caught)
        assert 1 == len(caught)

    def test_the_exit_hook_closes_a_display_nobody_closed(self, clock):
        """The function registered with ``atexit`` prints the final frame and gives the cursor back."""
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, clock=clock, width=40)
        with make_bus(clock, handler):
            AlienEvent.BuildingStack(stack="s").emit(EventState.SUCCESS)
        handler._at_exit()  # what the interpreter calls at exit; no public way to reach it here
        assert (True, None) == (out.getvalue().endswith("\x1b[?25h"), handler._at_exit)
        assert [
            "✓ Building stack s",
            "✓ 1 succeeded                       0.0s",
        ] == last_frame(out.getvalue()).splitlines()

    def test_the_exit_hook_does_not_keep_a_dropped_handler_alive(self, clock):
        """A live handler dropped without close is freed, and its exit hook then does nothing."""
        out = io.StringIO()
        handler = ConsoleHandler("live", file=out, environ={}, clock=clock, width=40)
        handler.on_event_change(started_change())
        at_exit = handler._at_exit
        ref = weakref.ref(handler)
        del handler
        gc.collect()
        written = out.getvalue()
        at_exit()
        atexit.unregister(at_exit)
        assert (None, written) == (ref(), out.getvalue())

    def test_a_dropped_handler_does_not_keep_its_thread(self):
        """The heartbeat thread of a handler dropped without close ends by itself."""
        before = set(threading.enumerate())
        handler = ConsoleHandler(
            "plain", file=io.StringIO(), color=False, environ={}, heartbeat=0.04
        )
        handler.on_event_change(started_change())
        (thread,) = new_console_threads(before)
        ref = weakref.ref(handler)
        del handler

        def freed():
            gc.collect()
            return ref() is None

        wait_until(freed, "the handler to be freed")
        thread.join(timeout=30)
        assert (None, False) == (ref(), thread.is_alive())

    def test_a_ticker_stopped_from_its_own_tick_ends_without_deadlock(self):
        """Stopping the ticker from inside its tick (a close on the drawing thread) returns and ends it."""
        from alien_events_console._live import Ticker

        class Owner:
            def __init__(self):
                self.ticks = 0
                self.ticker = None

        owner = Owner()
        started = threading.Event()
        errors = []

        def tick(target):
            started.wait(30)
            target.ticks += 1
            try:
                target.ticker.stop()
            except Exception as exc:
                errors.append(exc)

        before = set(threading.enumerate())
        owner.ticker = Ticker(owner, tick, 0.001)
        (thread,) = new_console_threads(before)
        started.set()
        thread.join(timeout=30)
        assert (1, [], False) == (owner.ticks, errors, thread.is_alive())


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


class UnprintableError(Exception):
    """An exception whose ``str()`` fails."""

    def __str__(self) -> str:
        raise RuntimeError("no str")


@event_type(tag="ConsoleTestRaisesUnprintable")
class RaisesUnprintable(Event):
    """A user type whose text hook raises an exception that cannot be printed."""

    name: str

    def __alien_text__(self) -> str:
        raise UnprintableError


class TestRenderingErrorsInThreads:
    def test_an_error_that_cannot_be_printed_is_reported_by_its_type(self, clock):
        """A hook error whose ``str()`` fails is reported by its type name alone."""
        handler, out = plain_handler(clock)
        with pytest.warns(ConsoleWarning) as caught:
            run_on(clock, handler, lambda clock: RaisesUnprintable(name="a").emit())
        assert [
            (
                "alien-events console: rendering failed (UnprintableError); the display "
                "carries on, and further rendering errors are not reported"
            )
        ] == [str(warning.message) for warning in caught]
        assert "[1] • RaisesUnprintable name=a" == out.getvalue().splitlines()[0]

    def test_a_broken_output_under_the_heartbeat_is_reported_once(self):
        """When the output breaks, the heartbeat thread reports it once; close still returns."""
        out = io.StringIO()
        handler = ConsoleHandler("plain", file=out, color=False, environ={}, heartbeat=0.02)

        def break_the_output_then_close(caught):
            handler.on_event_change(started_change())
            out.close()
            wait_until(lambda: len(caught) > 0, "the heartbeat thread to report the broken output")
            handler.close()

        with pytest.warns(ConsoleWarning, match="I/O operation on closed file") as caught:
            break_the_output_then_close(caught)
        assert 1 == len(caught)

    def test_a_heartbeat_due_when_the_handler_closes_prints_nothing_after_the_summary(self):
        """A heartbeat tick that comes after close writes nothing: the summary stays the last line."""
        out = io.StringIO()
        handler = ConsoleHandler("plain", file=out, color=False, environ={}, heartbeat=0.01)
        at_close = []

        def close_and_let_a_heartbeat_fall_due():
            handler.close()
            at_close.append(out.getvalue())
            threads.append(threading.current_thread())
            time.sleep(0.05)  # longer than the heartbeat: the tick below finds one due

        threads = []
        with at_first_tick(close_and_let_a_heartbeat_fall_due) as ran:
            handler.on_event_change(started_change())
            wait_until(ran.is_set, "the first heartbeat tick")
        threads[0].join(timeout=30)
        assert (False, at_close) == (threads[0].is_alive(), [out.getvalue()])
        assert out.getvalue().splitlines()[-1].startswith("… 1 running · total ")


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


class TestReimport:
    def test_reloading_the_package_keeps_the_public_module_names(self):
        """Importing the package again (a reload) leaves every public name in ``alien_events_console``."""
        module = importlib.reload(importlib.import_module("alien_events_console"))
        assert {"alien_events_console"} == {
            getattr(module, name).__module__
            for name in module.__all__
            if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))
        }
        assert ConsoleHandler is module.ConsoleHandler
