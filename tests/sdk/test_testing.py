"""
The shipped test helpers (``alien_events_sdk.testing``) and the ``alien_events`` pytest fixture.

``capture_events``, ``CapturedEvents``, ``normalise`` and ``shape`` are used directly; the
fixture comes from the SDK's ``pytest11`` entry point, and the plugin tests run small generated
test files in-process with pytest's own ``pytester``. The Rust snapshot tests (reference
section 5.4) are written again on top of these helpers.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import threading
from datetime import UTC, datetime, timedelta

import pytest
from rust_test_events import (
    TestBuildImage,
    TestBuildingImage,
    TestBuildingStack,
    TestCreatingResource,
    TestDeployingStack,
    TestPerformingHealthCheck,
    TestPushImage,
)

from alien_events_api import (
    AlienError,
    Created,
    EventState,
    StateChanged,
    Updated,
    alien_event,
    carry_context,
)
from alien_events_sdk import EventBus, EventTree, RecordingHandler
from alien_events_sdk.testing import CapturedEvents, capture_events, normalise, shape

pytest_plugins = ["pytester"]

NONE, STARTED, SUCCESS, FAILED = (
    EventState.NONE,
    EventState.STARTED,
    EventState.SUCCESS,
    EventState.FAILED,
)
STAGES = ["download-deps", "compile", "optimize", "build"]


# -- helpers ------------------------------------------------------------------------------------


def build_with_one_stage(stage="compile"):
    """A scope with one plain child: Created(started), Created(none), StateChanged(success)."""
    with TestBuildingImage(image="api").in_scope():
        TestBuildImage(image="api", stage=stage).emit()


@alien_event(TestBuildingStack(stack="decorated"))
def decorated_deploy():
    """A module-level decorated function, defined once and called by several captures."""
    TestPushImage(image="decorated").emit()


MODULE_LEVEL_EVENT = TestPushImage(image="module-level")


def in_thread(fn):
    """Run ``fn`` in a plain thread (it inherits no context) and wait for it."""
    errors = []

    def target():
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _at(seconds):
    """An aware datetime ``seconds`` after 2026-01-01T00:00:00Z."""
    return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


def created_dict(event_id, parent_id, event, state):
    return {
        "type": "created",
        "id": event_id,
        "parentId": parent_id,
        "event": event,
        "state": state,
    }


# -- capture_events (sync) ----------------------------------------------------------------------


class TestCaptureEvents:
    def test_a_capture_records_changes_in_delivery_order(self):
        """The changes emitted in the block are recorded as Created, Created, StateChanged in order."""
        with capture_events() as captured:
            build_with_one_stage()

        assert isinstance(captured, CapturedEvents)
        assert [Created, Created, StateChanged] == [type(c) for c in captured.changes]
        scope, child, done = captured.changes
        assert (None, scope.id) == (scope.parent_id, child.parent_id)
        assert (scope.id, SUCCESS) == (done.id, done.new_state)

    def test_the_tree_is_folded_from_the_changes(self):
        """captured.tree is an EventTree equal to one folded from captured.changes."""
        with capture_events() as captured:
            build_with_one_stage()

        assert isinstance(captured.tree, EventTree)
        assert EventTree(captured.changes) == captured.tree
        (root,) = captured.tree.roots
        assert (TestBuildingImage(image="api"), SUCCESS) == (root.event, root.state)
        assert [TestBuildImage(image="api", stage="compile")] == [c.event for c in root.children]

    def test_normalised_gives_stable_ids_and_no_timestamps(self):
        """normalised() names ids event-1.. in order of first appearance and keeps errors, not times."""
        with capture_events() as captured:
            handle = TestBuildingStack(stack="s").emit(STARTED)
            child = TestBuildingImage(image="i").emit(parent=handle)
            child.update(TestBuildingImage(image="i2"))
            handle.fail(AlienError(code="DISK_FULL", message="no space left"))

        assert [
            created_dict("event-1", None, {"type": "TestBuildingStack", "stack": "s"}, "started"),
            created_dict("event-2", "event-1", {"type": "TestBuildingImage", "image": "i"}, "none"),
            {
                "type": "updated",
                "id": "event-2",
                "event": {"type": "TestBuildingImage", "image": "i2"},
            },
            {
                "type": "stateChanged",
                "id": "event-1",
                "newState": "failed",
                "error": {
                    "code": "DISK_FULL",
                    "message": "no space left",
                    "retryable": False,
                    "internal": False,
                },
            },
        ] == captured.normalised()

    def test_shape_gives_nested_type_and_state_tuples(self):
        """shape() gives (event type, state, [children]) tuples, roots first, children in order."""
        with capture_events() as captured:
            with TestBuildingStack(stack="s").in_scope():
                build_with_one_stage()
                TestPushImage(image="api").emit()
            TestDeployingStack(stack="s").emit(FAILED, error=AlienError(code="X", message="x"))

        assert [
            (
                "TestBuildingStack",
                "success",
                [
                    ("TestBuildingImage", "success", [("TestBuildImage", "none", [])]),
                    ("TestPushImage", "none", []),
                ],
            ),
            ("TestDeployingStack", "failed", []),
        ] == captured.shape()

    def test_events_lists_created_events_optionally_of_one_type(self):
        """events() lists every created event in order, and events(of_type) only those of that type."""
        with capture_events() as captured, TestBuildingStack(stack="s").in_scope() as handle:
            TestBuildImage(image="a", stage="1").emit()
            handle.update(TestBuildingStack(stack="updates are not creations"))
            TestPushImage(image="a").emit()
            TestBuildImage(image="a", stage="2").emit()

        assert [
            TestBuildingStack(stack="s"),
            TestBuildImage(image="a", stage="1"),
            TestPushImage(image="a"),
            TestBuildImage(image="a", stage="2"),
        ] == captured.events()
        assert [
            TestBuildImage(image="a", stage="1"),
            TestBuildImage(image="a", stage="2"),
        ] == captured.events(TestBuildImage)
        assert [] == captured.events(TestDeployingStack)

    def test_states_gives_the_final_state_by_stable_id(self):
        """states() maps each stable id to the event's final state."""
        with capture_events() as captured:
            with TestBuildingStack(stack="s").in_scope():
                TestPushImage(image="a").emit()
                try:
                    with TestBuildingImage(image="a").in_scope():
                        raise ValueError("broken")
                except ValueError:
                    pass
            TestDeployingStack(stack="s").emit(STARTED)

        assert {
            "event-1": SUCCESS,
            "event-2": NONE,
            "event-3": FAILED,
            "event-4": STARTED,
        } == captured.states()

    def test_clear_forgets_everything_captured_so_far(self):
        """clear() empties changes and tree, and later emissions are numbered from event-1 again."""
        with capture_events() as captured:
            build_with_one_stage("first")
            captured.clear()

            assert ([], 0, [], {}) == (
                captured.changes,
                len(captured.tree),
                captured.shape(),
                captured.states(),
            )

            TestPushImage(image="after").emit()

        assert [
            created_dict("event-1", None, {"type": "TestPushImage", "image": "after"}, "none")
        ] == captured.normalised()
        assert [("TestPushImage", "none", [])] == captured.shape()

    def test_the_bus_is_current_and_the_process_default_only_inside(self):
        """Inside the block the capture's bus is current and the process default; after, neither."""
        seen = []
        with capture_events() as captured:
            seen.append(EventBus.current())
            in_thread(lambda: seen.append(EventBus.current()))
        seen.append(EventBus.current())
        in_thread(lambda: seen.append(EventBus.current()))

        assert [captured.bus, captured.bus, None, None] == seen

    def test_nothing_is_captured_after_the_block(self):
        """Emissions after the block ends reach no bus and are not recorded."""
        with capture_events() as captured:
            TestPushImage(image="inside").emit()

        handle = TestPushImage(image="outside").emit()

        assert handle.is_noop
        assert [TestPushImage(image="inside")] == captured.events()

    def test_the_capture_ends_even_when_the_block_raises(self):
        """An exception leaving the block propagates, and the bus and default are restored."""
        captures = []

        def failing_block():
            with capture_events() as captured:
                captures.append(captured)
                build_with_one_stage()
                raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            failing_block()

        assert EventBus.current() is None
        assert 3 == len(captures[0].changes)


# -- normalise() and shape() on their own -------------------------------------------------------


class TestNormaliseAndShape:
    def test_a_created_numbers_its_own_id_before_its_parent(self):
        """A Created seen before its parent takes event-1 and its parent event-2, as in Rust's snapshots."""
        child = Created(
            id="child",
            parent_id="parent",
            created_at=_at(2),
            event=TestPushImage(image="c"),
        )
        parent = Created(id="parent", created_at=_at(1), event=TestBuildingStack(stack="p"))

        assert [
            created_dict("event-1", "event-2", {"type": "TestPushImage", "image": "c"}, "none"),
            created_dict("event-2", None, {"type": "TestBuildingStack", "stack": "p"}, "none"),
        ] == normalise([child, parent])

    def test_normalise_numbers_ids_by_first_appearance_across_change_kinds(self):
        """Ids first seen in an Updated or StateChanged are numbered where they first appear."""
        changes = [
            StateChanged(id="x", updated_at=_at(1), new_state=SUCCESS, seq=2),
            Updated(id="y", updated_at=_at(2), event=TestPushImage(image="y"), seq=1),
            Created(id="y", parent_id="x", created_at=_at(0), event=TestPushImage(image="y0")),
        ]

        assert [
            {"type": "stateChanged", "id": "event-1", "newState": "success"},
            {"type": "updated", "id": "event-2", "event": {"type": "TestPushImage", "image": "y"}},
            created_dict("event-2", "event-1", {"type": "TestPushImage", "image": "y0"}, "none"),
        ] == normalise(changes)

    def test_normalise_of_nothing_is_empty(self):
        """normalise() of no changes is an empty list."""
        assert [] == normalise([])

    def test_shape_of_any_tree(self):
        """shape() works on any EventTree, roots and children ordered by creation time."""
        tree = EventTree(
            [
                Created(id="b", created_at=_at(2), event=TestPushImage(image="b")),
                Created(
                    id="a", created_at=_at(1), event=TestBuildingStack(stack="a"), state=STARTED
                ),
                Created(id="a1", parent_id="a", created_at=_at(3), event=TestPushImage(image="a1")),
            ]
        )

        assert [
            ("TestBuildingStack", "started", [("TestPushImage", "none", [])]),
            ("TestPushImage", "none", []),
        ] == shape(tree)
        assert [] == shape(EventTree())


# -- async, tasks and threads -------------------------------------------------------------------


class TestAsyncTasksAndThreads:
    def test_async_with_captures_awaited_emissions(self):
        """``async with capture_events()`` captures the async forms of emit, update and complete."""

        async def main():
            async with (
                capture_events() as captured,
                TestBuildingStack(stack="s").in_scope() as handle,
            ):
                await handle.aupdate(TestBuildingStack(stack="s2"))
                await TestPushImage(image="i").aemit()
            return captured

        captured = asyncio.run(main())

        assert [
            created_dict("event-1", None, {"type": "TestBuildingStack", "stack": "s"}, "started"),
            {
                "type": "updated",
                "id": "event-1",
                "event": {"type": "TestBuildingStack", "stack": "s2"},
            },
            created_dict("event-2", "event-1", {"type": "TestPushImage", "image": "i"}, "none"),
            {"type": "stateChanged", "id": "event-1", "newState": "success"},
        ] == captured.normalised()
        assert EventBus.current() is None

    def test_emissions_from_asyncio_tasks_are_captured_under_their_parent(self):
        """Tasks started inside the capture emit to it, under the scope that started them."""

        async def stage(name):
            await asyncio.sleep(0)
            await TestBuildImage(image="api", stage=name).aemit()

        async def main():
            async with capture_events() as captured, TestBuildingImage(image="api").in_scope():
                await asyncio.gather(*(asyncio.create_task(stage(s)) for s in STAGES))
            return captured

        captured = asyncio.run(main())

        assert sorted(STAGES) == sorted(e.stage for e in captured.events(TestBuildImage))
        assert [("TestBuildingImage", "success", [("TestBuildImage", "none", [])] * 4)] == (
            captured.shape()
        )

    def test_a_plain_thread_is_captured_through_the_process_default(self):
        """A plain thread started in the block, which inherits no context, is still captured."""
        with capture_events() as captured:
            in_thread(build_with_one_stage)

        assert [("TestBuildingImage", "success", [("TestBuildImage", "none", [])])] == (
            captured.shape()
        )

    def test_without_the_process_default_plain_threads_are_not_captured(self):
        """With process_default=False a plain thread is not captured, but a carry_context one is."""
        seen_by_plain_thread = []
        with capture_events(process_default=False) as captured:
            in_thread(lambda: TestPushImage(image="plain").emit())
            in_thread(carry_context(lambda: TestPushImage(image="carried").emit()))
            in_thread(lambda: seen_by_plain_thread.append(EventBus.current()))

        assert [TestPushImage(image="carried")] == captured.events()
        assert [None] == seen_by_plain_thread

    def test_many_threads_at_once_lose_nothing(self):
        """Eight threads emitting 250 lifecycles each at the same time are all captured."""
        start = threading.Barrier(8)

        def worker(number):
            start.wait()
            for index in range(250):
                with TestBuildingImage(image=f"{number}-{index}").in_scope():
                    TestBuildImage(image=f"{number}-{index}", stage="compile").emit()

        with capture_events() as captured:
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        assert 8 * 250 * 3 == len(captured.changes)
        assert 8 * 250 * 2 == len(captured.tree)
        assert [("TestBuildingImage", "success", [("TestBuildImage", "none", [])])] * 2000 == (
            captured.shape()
        )


# -- isolation: captures in a row, nested, and cached emitters ---------------------------------


class TestIsolation:
    def test_two_captures_in_a_row_each_see_only_their_own(self):
        """Two captures one after the other each record only the events of their own block."""
        with capture_events() as first:
            TestPushImage(image="first").emit()
        with capture_events() as second:
            TestPushImage(image="second").emit()

        assert [TestPushImage(image="first")] == first.events()
        assert [TestPushImage(image="second")] == second.events()

    def test_module_level_emitters_are_not_cached_across_captures(self):
        """A module-level event value and decorated function reach whichever capture is current."""
        captures = []
        for _ in range(2):
            with capture_events() as captured:
                MODULE_LEVEL_EVENT.emit()
                decorated_deploy()
                in_thread(decorated_deploy)
            captures.append(captured)

        expected = [
            created_dict(
                "event-1", None, {"type": "TestPushImage", "image": "module-level"}, "none"
            ),
            created_dict(
                "event-2", None, {"type": "TestBuildingStack", "stack": "decorated"}, "started"
            ),
            created_dict(
                "event-3", "event-2", {"type": "TestPushImage", "image": "decorated"}, "none"
            ),
            {"type": "stateChanged", "id": "event-2", "newState": "success"},
            created_dict(
                "event-4", None, {"type": "TestBuildingStack", "stack": "decorated"}, "started"
            ),
            created_dict(
                "event-5", "event-4", {"type": "TestPushImage", "image": "decorated"}, "none"
            ),
            {"type": "stateChanged", "id": "event-4", "newState": "success"},
        ]
        assert [expected, expected] == [c.normalised() for c in captures]

    def test_a_nested_capture_sees_only_its_own_and_the_outer_resumes(self):
        """A capture inside another takes its block's events, threads included, then the outer resumes."""
        with capture_events() as outer:
            TestPushImage(image="outer-before").emit()
            with capture_events() as inner:
                TestPushImage(image="inner").emit()
                in_thread(lambda: TestPushImage(image="inner-thread").emit())
            TestPushImage(image="outer-after").emit()
            in_thread(lambda: TestPushImage(image="outer-thread").emit())

        assert [TestPushImage(image="inner"), TestPushImage(image="inner-thread")] == inner.events()
        assert [
            TestPushImage(image="outer-before"),
            TestPushImage(image="outer-after"),
            TestPushImage(image="outer-thread"),
        ] == outer.events()

    def test_a_capture_inside_a_user_bus_takes_over_and_gives_it_back(self):
        """A capture inside ``with bus:`` captures its block, and the user's bus gets the rest."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            TestPushImage(image="user-before").emit()
            with capture_events() as captured:
                TestPushImage(image="captured").emit()
            TestPushImage(image="user-after").emit()

        assert [TestPushImage(image="captured")] == captured.events()
        assert [TestPushImage(image="user-before"), TestPushImage(image="user-after")] == [
            c.event for c in recorder.changes
        ]

    def test_a_capture_inside_a_scope_records_the_outer_parent_by_stable_id(self):
        """Events of a capture opened inside a running scope name that outer parent by a stable id."""
        with (
            capture_events() as outer,
            TestBuildingStack(stack="outer").in_scope(),
            capture_events() as inner,
        ):
            TestPushImage(image="inner").emit()

        assert [
            created_dict("event-1", "event-2", {"type": "TestPushImage", "image": "inner"}, "none")
        ] == inner.normalised()
        assert [("TestBuildingStack", "success", [])] == outer.shape()

    def test_shape_of_a_capture_inside_a_scope_lists_its_events(self):
        """A capture opened inside a running scope shows its own events in shape(), not an empty list."""
        with EventBus(), TestBuildingStack(stack="outer").in_scope(), capture_events() as inner:
            build_with_one_stage()

        assert [("TestBuildingImage", "success", [("TestBuildImage", "none", [])])] == inner.shape()

    def test_states_of_a_capture_inside_a_scope_lists_its_events(self):
        """A capture opened inside a running scope gives the final states of its own events."""
        with (
            EventBus(),
            TestBuildingStack(stack="outer").in_scope(),
            capture_events() as inner,
            TestBuildingImage(image="api").in_scope(),
        ):
            pass

        assert {"event-1": SUCCESS} == inner.states()

    def test_states_uses_the_same_stable_ids_as_normalised(self):
        """states() keys are the ids normalised() gives, also when a parent is outside the capture."""
        with EventBus(), TestBuildingStack(stack="outer").in_scope(), capture_events() as inner:
            TestPushImage(image="a").emit()
            TestPushImage(image="b").emit()

        named = {c["id"] for c in inner.normalised()}
        assert ({"event-1", "event-3"}, {"event-1": NONE, "event-3": NONE}) == (
            named,
            inner.states(),
        )


# -- the alien_events fixture, used directly ----------------------------------------------------


class TestAlienEventsFixture:
    def test_the_fixture_is_a_capture_of_this_test(self, alien_events):
        """The alien_events fixture is a CapturedEvents that records what the test emits."""
        assert isinstance(alien_events, CapturedEvents)
        assert [] == alien_events.changes

        build_with_one_stage()

        assert [("TestBuildingImage", "success", [("TestBuildImage", "none", [])])] == (
            alien_events.shape()
        )
        assert alien_events.bus is EventBus.current()

    def test_the_fixture_captures_tasks_and_threads(self, alien_events):
        """The fixture captures asyncio.run tasks and plain threads of the test."""

        async def main():
            await asyncio.gather(*(TestBuildImage(image="t", stage=s).aemit() for s in ("a", "b")))

        asyncio.run(main())
        in_thread(lambda: TestPushImage(image="thread").emit())

        assert [
            TestBuildImage(image="t", stage="a"),
            TestBuildImage(image="t", stage="b"),
            TestPushImage(image="thread"),
        ] == alien_events.events()

    def test_the_fixture_starts_empty_in_every_test(self, alien_events):
        """Each test gets a fresh capture: nothing from earlier tests is there."""
        assert ([], 0) == (alien_events.changes, len(alien_events.tree))


# -- the plugin, through pytester ---------------------------------------------------------------

GENERATED_TESTS = """
import asyncio
import threading

from alien_events_api import AlienEvent, EventState


def test_sync(alien_events):
    with AlienEvent.BuildingStack(stack="prod").in_scope():
        AlienEvent.BuildingImage(image="api").emit()
    assert [("BuildingStack", "success", [("BuildingImage", "none", [])])] == alien_events.shape()
    assert "event-2" == alien_events.normalised()[1]["id"]


def test_async_and_thread(alien_events):
    async def main():
        await AlienEvent.PushingImage(image="api").aemit()

    asyncio.run(main())
    thread = threading.Thread(target=lambda: AlienEvent.Finished().emit(EventState.SUCCESS))
    thread.start()
    thread.join()
    assert [("PushingImage", "none", []), ("Finished", "success", [])] == alien_events.shape()


def test_fresh_each_time(alien_events):
    assert [] == alien_events.changes
"""

FAILING_TEST = """
from alien_events_api import AlienEvent


def test_build(alien_events):
    with AlienEvent.BuildingStack(stack="prod").in_scope():
        try:
            with AlienEvent.BuildingImage(image="api").in_scope():
                raise ValueError("no space left")
        except ValueError:
            pass
    assert [("BuildingStack", "success", [("BuildingImage", "success", [])])] == alien_events.shape()
"""


class TestPytestPlugin:
    def test_the_plugin_is_registered_through_the_pytest11_entry_point(self):
        """The installed SDK declares the pytest11 entry point alien_events -> the plugin module."""
        entry_points = importlib.metadata.entry_points(group="pytest11")

        assert ["alien_events_sdk.pytest_plugin"] == [
            ep.value for ep in entry_points if "alien_events" == ep.name
        ]

    def test_a_generated_test_file_gets_the_fixture_with_no_conftest(self, pytester):
        """A test file in a bare directory (no conftest, no -p) can use alien_events: sync, async and threads."""
        pytester.makepyfile(GENERATED_TESTS)

        result = pytester.runpytest_inprocess()

        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(["plugins:*alien-events-sdk*"])

    def test_the_fixture_is_listed_with_its_documentation(self, pytester):
        """``pytest --fixtures`` lists alien_events from the SDK plugin with its docstring."""
        pytester.makepyfile("def test_nothing():\n    pass\n")

        result = pytester.runpytest_inprocess("--fixtures")

        assert 0 == result.ret
        result.stdout.fnmatch_lines(["alien_events*", "*Capture every event the test emits*"])

    def test_without_plugin_autoload_the_fixture_is_missing(self, pytester, monkeypatch):
        """With entry-point autoload disabled the fixture is not found: the entry point is what provides it."""
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        pytester.makepyfile(GENERATED_TESTS)

        result = pytester.runpytest_inprocess()

        result.assert_outcomes(errors=3)
        result.stdout.fnmatch_lines(["*fixture 'alien_events' not found*"])

    def test_a_failing_assertion_shows_a_readable_diff(self, pytester):
        """A wrong expected shape fails with pytest's diff pointing at the state that differs."""
        pytester.makepyfile(FAILING_TEST)

        result = pytester.runpytest_inprocess("-vv")

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                (
                    "*AssertionError: assert [[]('BuildingStack', 'success', [[]('BuildingImage', "
                    "'success', [[]])])] == [[]('BuildingStack', 'success', [[]('BuildingImage', "
                    "'failed', [[]])])]"
                ),
                "*At index 0 diff:*",
                "*Full diff:*",
                "*-*'failed',",
                "*+*'success',",
            ]
        )

    def test_a_failing_normalised_comparison_names_the_differing_change(self, pytester):
        """A wrong expected normalised() list fails with the differing change shown by index."""
        pytester.makepyfile(
            """
            from alien_events_api import AlienEvent

            def test_emit(alien_events):
                AlienEvent.BuildingImage(image="api").emit()
                assert [
                    {"type": "created", "id": "event-1", "parentId": None,
                     "event": {"type": "BuildingImage", "image": "web"}, "state": "none"},
                ] == alien_events.normalised()
            """
        )

        result = pytester.runpytest_inprocess()

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*At index 0 diff:*'image': 'web'*!=*'image': 'api'*"])


# -- the Rust snapshot tests on top of the helpers (reference 5.4) -----------------------------

COMPLEX_WORKFLOW_NORMALISED = [
    created_dict(
        "event-1", None, {"type": "TestBuildingStack", "stack": "production-stack"}, "started"
    ),
    created_dict(
        "event-2", "event-1", {"type": "TestBuildingImage", "image": "api-service"}, "started"
    ),
    created_dict(
        "event-3",
        "event-2",
        {"type": "TestBuildImage", "image": "api-service", "stage": "download-deps"},
        "none",
    ),
    created_dict(
        "event-4",
        "event-2",
        {"type": "TestBuildImage", "image": "api-service", "stage": "compile"},
        "none",
    ),
    created_dict(
        "event-5",
        "event-2",
        {"type": "TestBuildImage", "image": "api-service", "stage": "optimize"},
        "none",
    ),
    created_dict(
        "event-6",
        "event-2",
        {"type": "TestBuildImage", "image": "api-service", "stage": "build"},
        "none",
    ),
    {"type": "stateChanged", "id": "event-2", "newState": "success"},
    created_dict("event-7", "event-1", {"type": "TestPushImage", "image": "api-service"}, "none"),
    created_dict(
        "event-8", "event-1", {"type": "TestDeployingStack", "stack": "api-service"}, "started"
    ),
    created_dict(
        "event-9",
        "event-8",
        {
            "type": "TestCreatingResource",
            "resourceType": "LoadBalancer",
            "resourceName": "api-lb",
            "details": "Updating target groups",
        },
        "none",
    ),
    created_dict(
        "event-10",
        "event-8",
        {
            "type": "TestPerformingHealthCheck",
            "target": "https://api.example.com/health",
            "checkType": "HTTP",
        },
        "none",
    ),
    {"type": "stateChanged", "id": "event-8", "newState": "success"},
    {"type": "stateChanged", "id": "event-1", "newState": "success"},
]

COMPLEX_WORKFLOW_SHAPE = [
    (
        "TestBuildingStack",
        "success",
        [
            ("TestBuildingImage", "success", [("TestBuildImage", "none", [])] * 4),
            ("TestPushImage", "none", []),
            (
                "TestDeployingStack",
                "success",
                [("TestCreatingResource", "none", []), ("TestPerformingHealthCheck", "none", [])],
            ),
        ],
    )
]

DEEP_HIERARCHY_CREATED = [
    created_dict("event-1", None, {"type": "TestBuildingStack", "stack": "root-stack"}, "started"),
    created_dict("event-2", "event-1", {"type": "TestBuildingImage", "image": "app1"}, "started"),
    created_dict(
        "event-3",
        "event-2",
        {"type": "TestBuildImage", "image": "app1", "stage": "compile"},
        "started",
    ),
    created_dict(
        "event-4",
        "event-3",
        {"type": "TestBuildImage", "image": "app1", "stage": "optimize"},
        "none",
    ),
    created_dict("event-5", "event-1", {"type": "TestBuildingImage", "image": "app2"}, "none"),
]

DEEP_HIERARCHY_SHAPE = [
    (
        "TestBuildingStack",
        "success",
        [
            (
                "TestBuildingImage",
                "success",
                [("TestBuildImage", "success", [("TestBuildImage", "none", [])])],
            ),
            ("TestBuildingImage", "none", []),
        ],
    )
]


def complex_workflow_sync():
    with TestBuildingStack(stack="production-stack").in_scope():
        with TestBuildingImage(image="api-service").in_scope():
            for stage in STAGES:
                TestBuildImage(image="api-service", stage=stage).emit()
        TestPushImage(image="api-service").emit()
        with TestDeployingStack(stack="api-service").in_scope():
            TestCreatingResource(
                resource_type="LoadBalancer",
                resource_name="api-lb",
                details="Updating target groups",
            ).emit()
            TestPerformingHealthCheck(
                target="https://api.example.com/health", check_type="HTTP"
            ).emit()


async def complex_workflow_async():
    async with TestBuildingStack(stack="production-stack").in_scope():
        async with TestBuildingImage(image="api-service").in_scope():
            for stage in STAGES:
                await TestBuildImage(image="api-service", stage=stage).aemit()
        await TestPushImage(image="api-service").aemit()
        async with TestDeployingStack(stack="api-service").in_scope():
            await TestCreatingResource(
                resource_type="LoadBalancer",
                resource_name="api-lb",
                details="Updating target groups",
            ).aemit()
            await TestPerformingHealthCheck(
                target="https://api.example.com/health", check_type="HTTP"
            ).aemit()


class TestRustSnapshots:
    def test_complex_workflow_snapshot_with_the_fixture(self, alien_events):
        """The sync build-push-deploy workflow gives Rust's 13-step snapshot and its tree shape."""
        complex_workflow_sync()

        assert COMPLEX_WORKFLOW_NORMALISED == alien_events.normalised()
        assert COMPLEX_WORKFLOW_SHAPE == alien_events.shape()

    def test_complex_workflow_snapshot_async(self):
        """The async build-push-deploy workflow under ``async with capture_events()`` gives the same snapshot."""

        async def main():
            async with capture_events() as captured:
                await complex_workflow_async()
            return captured

        captured = asyncio.run(main())

        assert COMPLEX_WORKFLOW_NORMALISED == captured.normalised()
        assert COMPLEX_WORKFLOW_SHAPE == captured.shape()
        assert {
            "event-1": SUCCESS,
            "event-2": SUCCESS,
            **{f"event-{n}": NONE for n in (3, 4, 5, 6, 7)},
            "event-8": SUCCESS,
            "event-9": NONE,
            "event-10": NONE,
        } == captured.states()

    def test_deep_hierarchy_snapshot(self):
        """Nested scopes give Rust's five (id, parent, event) Createds and the nested shape."""

        def compile_app1():
            with TestBuildImage(image="app1", stage="compile").in_scope():
                TestBuildImage(image="app1", stage="optimize").emit()

        with capture_events() as captured, TestBuildingStack(stack="root-stack").in_scope():
            with TestBuildingImage(image="app1").in_scope():
                compile_app1()
            TestBuildingImage(image="app2").emit()

        assert DEEP_HIERARCHY_CREATED == [
            c for c in captured.normalised() if "created" == c["type"]
        ]
        assert DEEP_HIERARCHY_SHAPE == captured.shape()
