"""
The Rust ``alien_core`` events module's own test suite, ported (reference section 5).

``TestBus`` is ``bus.rs``, ``TestEvent`` is ``event.rs`` (field values only; the JSON round
trip is tested with the wire format), ``TestModule`` is ``mod.rs`` (including its runnable doc
examples) and ``TestExtraChecks`` is the reference's list of extra checks (5.6). Where
``decisions.md`` (section 3) changes a behaviour, the test pins our decision and says so.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import attrs
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
    AlienEvent,
    Created,
    EventHandle,
    EventHandlerError,
    EventHandlerWarning,
    EventState,
    StateChanged,
    Updated,
    alien_event,
    carry_context,
    lookup_event_type,
)
from alien_events_sdk import EventBus, RecordingHandler

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


# -- helpers ------------------------------------------------------------------------------------


class InvalidResourceUpdate(Exception):
    """Rust's ``ErrorData::InvalidResourceUpdate`` as an exception that knows its ``AlienError``."""

    code = "INVALID_RESOURCE_UPDATE"

    def __init__(self, resource_id: str, reason: str) -> None:
        self.resource_id = resource_id
        self.reason = reason
        super().__init__(f"Resource '{resource_id}' cannot be updated: {reason}")

    def as_alien_error(self) -> AlienError:
        return AlienError(
            code=self.code,
            message=str(self),
            context={"resource_id": self.resource_id, "reason": self.reason},
            retryable=False,
            http_status_code=500,
        )


class GenericError(Exception):
    """Rust's ``alien_error::GenericError { message }``: only a code and a message."""

    code = "GENERIC_ERROR"


class FailingHandler:
    """Counts its calls and raises on every change, or only on those ``when`` picks."""

    def __init__(self, message="Handler intentionally failed", when=None) -> None:
        self.message = message
        self.when = when
        self.calls = 0

    def on_event_change(self, change) -> None:
        self.calls += 1
        if self.when is None or self.when(change):
            raise RuntimeError(self.message)


def normalise(changes):
    """
    Return the changes as plain tuples, ids replaced by ``event-N`` in order of first appearance.
    """
    stable: dict[str, str] = {}

    def name(event_id):
        if event_id is None:
            return None
        return stable.setdefault(event_id, f"event-{len(stable) + 1}")

    out = []
    for change in changes:
        match change:
            case Created():
                own = name(change.id)  # a Created's id is numbered before its parent's
                out.append(("created", own, name(change.parent_id), change.event, change.state))
            case Updated():
                out.append(("updated", name(change.id), change.event))
            case StateChanged():
                out.append(("state_changed", name(change.id), change.new_state, change.error))
            case _:
                raise AssertionError(f"not a change: {change!r}")
    return out


def created(changes):
    return [c for c in changes if isinstance(c, Created)]


def state_changes(changes):
    return [c for c in changes if isinstance(c, StateChanged)]


# -- bus.rs -------------------------------------------------------------------------------------


class TestBus:
    def test_event_emission(self, bus, recorder):
        """Emitting one event delivers exactly one Created change carrying that event."""
        handle = bus.run(lambda: TestBuildingStack(stack="test").emit())

        assert 1 == len(recorder.changes)
        change = recorder.changes[0]
        assert isinstance(change, Created)
        assert handle.id == change.id
        assert TestBuildingStack(stack="test") == change.event

    def test_event_hierarchy(self, bus, recorder):
        """A child emitted inside ``parent.as_parent`` gets the parent's id as its parent id."""

        def work():
            parent = TestBuildingStack(stack="parent").emit()
            with parent.as_parent():
                TestBuildImage(image="child", stage="build").emit()
            return parent

        parent = bus.run(work)

        assert 2 == len(recorder.changes)
        first, second = recorder.changes
        assert parent.id == first.id
        assert first.parent_id is None
        assert isinstance(second, Created)
        assert parent.id == second.parent_id

    def test_event_update(self, bus, recorder):
        """``handle.update`` delivers an Updated change with the handle's id and the new data."""

        def work():
            handle = TestBuildImage(image="app", stage="stage1").emit()
            handle.update(TestBuildImage(image="app", stage="stage2"))
            return handle

        handle = bus.run(work)

        assert 2 == len(recorder.changes)
        update = recorder.changes[1]
        assert isinstance(update, Updated)
        assert handle.id == update.id
        assert TestBuildImage(image="app", stage="stage2") == update.event

    def test_scoped_success(self, bus, recorder):
        """A successful ``in_scope`` returns the body's value; changes: started, child, success."""

        def body(handle):
            TestBuildImage(image="app", stage="build").emit()
            return 42

        result = bus.run(lambda: TestBuildingStack(stack="scoped").in_scope(body))

        assert 42 == result
        assert [
            ("created", "event-1", None, TestBuildingStack(stack="scoped"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="app", stage="build"),
                EventState.NONE,
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_scoped_success_async(self, bus, recorder):
        """The async ``in_scope`` form gives the same value and the same three changes."""

        async def body(handle):
            await TestBuildImage(image="app", stage="build").aemit()
            return 42

        async def main():
            return await TestBuildingStack(stack="scoped").in_scope(body)

        result = asyncio.run(bus.run(main))

        assert 42 == result
        assert [
            ("created", "event-1", None, TestBuildingStack(stack="scoped"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="app", stage="build"),
                EventState.NONE,
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_scoped_failure_closure_returning_coroutine(self, bus, recorder):
        """
        ``in_scope(lambda h: coro(h))``, Rust's closure-returning-a-future idiom, scopes the work.
        """

        async def body(handle):
            await TestBuildImage(image="app", stage="build").aemit()
            raise InvalidResourceUpdate("my_resource", "hummus")

        async def main():
            await TestBuildingStack(stack="scoped").in_scope(lambda h: body(h))  # noqa: PLW0108

        with pytest.raises(InvalidResourceUpdate):
            asyncio.run(bus.run(main))

        assert [
            ("created", "event-1", None, TestBuildingStack(stack="scoped"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="app", stage="build"),
                EventState.NONE,
            ),
            (
                "state_changed",
                "event-1",
                EventState.FAILED,
                InvalidResourceUpdate("my_resource", "hummus").as_alien_error(),
            ),
        ] == normalise(recorder.changes)

    def test_scoped_failure(self, bus, recorder):
        """
        A body that raises fails the event with the exception's error and re-raises it unchanged.

        Rust returns the typed ``Err``; ours (decisions.md: exceptions in a scope) re-raises
        the same exception object, so its typed fields survive.
        """
        raised = InvalidResourceUpdate("my_resource", "hummus")

        def body(handle):
            raise raised

        with pytest.raises(InvalidResourceUpdate) as info:
            bus.run(lambda: TestBuildingStack(stack="scoped").in_scope(body))

        assert raised is info.value
        assert "my_resource" == info.value.resource_id
        assert 2 == len(recorder.changes)
        failed = recorder.changes[1]
        assert isinstance(failed, StateChanged)
        assert EventState.FAILED == failed.new_state
        assert "Resource 'my_resource' cannot be updated: hummus" == failed.error.message
        assert (
            AlienError(
                code="INVALID_RESOURCE_UPDATE",
                message="Resource 'my_resource' cannot be updated: hummus",
                context={"resource_id": "my_resource", "reason": "hummus"},
                retryable=False,
                internal=False,
                http_status_code=500,
            )
            == failed.error
        )

    def test_scoped_failure_async(self, bus, recorder):
        """The async ``in_scope`` form fails the event the same way and re-raises the exception."""

        async def main():
            async with TestBuildingStack(stack="scoped").in_scope():
                raise InvalidResourceUpdate("my_resource", "hummus")

        with pytest.raises(InvalidResourceUpdate):
            asyncio.run(bus.run(main))

        assert [
            ("created", "event-1", None, TestBuildingStack(stack="scoped"), EventState.STARTED),
            (
                "state_changed",
                "event-1",
                EventState.FAILED,
                InvalidResourceUpdate("my_resource", "hummus").as_alien_error(),
            ),
        ] == normalise(recorder.changes)

    def test_no_event_bus_context(self, recorder):
        """Emitting with no bus reachable returns the no-op handle and delivers nothing."""
        EventBus([recorder])  # exists, but is not current

        handle = TestBuildingStack(stack="test").emit()

        assert handle.is_noop
        assert "noop" == handle.id
        assert [] == recorder.changes


# -- event.rs -----------------------------------------------------------------------------------


class TestEvent:
    def test_event_serialization(self):
        """
        Event types carry their tag and field values, and rebuild equal from their fields.

        Only field values are ported here; the JSON round trip belongs to the wire-format tests.
        """
        stack = AlienEvent.BuildingStack(stack="test-stack")
        runtime = AlienEvent.DownloadingAlienRuntime(
            target_triple="x86_64-unknown-linux-gnu",
            url="https://example.com/runtime",
        )

        assert "BuildingStack" == type(stack).__event_tag__
        assert "test-stack" == stack.stack
        assert "DownloadingAlienRuntime" == type(runtime).__event_tag__
        assert "x86_64-unknown-linux-gnu" == runtime.target_triple
        assert "https://example.com/runtime" == runtime.url
        for event in (stack, runtime):
            cls = lookup_event_type(type(event).__event_tag__)
            assert type(event) is cls
            assert event == cls(**attrs.asdict(event, recurse=False))


# -- mod.rs -------------------------------------------------------------------------------------


STAGES = ["download-deps", "compile", "optimize", "build"]

COMPLEX_WORKFLOW_SNAPSHOT = [
    (
        "created",
        "event-1",
        None,
        TestBuildingStack(stack="production-stack"),
        EventState.STARTED,
    ),
    ("created", "event-2", "event-1", TestBuildingImage(image="api-service"), EventState.STARTED),
    *(
        (
            "created",
            f"event-{n}",
            "event-2",
            TestBuildImage(image="api-service", stage=stage),
            EventState.NONE,
        )
        for n, stage in enumerate(STAGES, start=3)
    ),
    ("state_changed", "event-2", EventState.SUCCESS, None),
    ("created", "event-7", "event-1", TestPushImage(image="api-service"), EventState.NONE),
    ("created", "event-8", "event-1", TestDeployingStack(stack="api-service"), EventState.STARTED),
    (
        "created",
        "event-9",
        "event-8",
        TestCreatingResource(
            resource_type="LoadBalancer",
            resource_name="api-lb",
            details="Updating target groups",
        ),
        EventState.NONE,
    ),
    (
        "created",
        "event-10",
        "event-8",
        TestPerformingHealthCheck(target="https://api.example.com/health", check_type="HTTP"),
        EventState.NONE,
    ),
    ("state_changed", "event-8", EventState.SUCCESS, None),
    ("state_changed", "event-1", EventState.SUCCESS, None),
]


class TenantHandler:
    """An async handler that files every change under its tenant, then yields to other tasks."""

    def __init__(self, tenant_id: str, received: dict[str, list], order: list[str]) -> None:
        self.tenant_id = tenant_id
        self.received = received
        self.order = order

    async def on_event_change(self, change) -> None:
        self.received.setdefault(self.tenant_id, []).append(change)
        self.order.append(self.tenant_id)
        await asyncio.sleep(0)


async def deploy_service(tenant_id: str) -> None:
    await TestDeployingStack(stack=f"{tenant_id}-service").aemit()
    await asyncio.sleep(0)
    await TestCreatingResource(
        resource_type="Database", resource_name=f"{tenant_id}-db", details=f"for {tenant_id}"
    ).aemit()


async def handle_request(tenant_id: str, received: dict[str, list], order: list[str]) -> str:
    """The ported axum handler: one request, its own bus, a scope with three children."""
    bus = EventBus([TenantHandler(tenant_id, received, order)])

    async def work() -> str:
        async with TestBuildingStack(stack=f"{tenant_id}-stack").in_scope():
            await asyncio.sleep(0)
            await TestBuildImage(image=f"{tenant_id}-image", stage="build").aemit()
            await deploy_service(tenant_id)
        return f"deployed {tenant_id}"

    return await bus.run(work)


class TestModule:
    def test_simple_event_emission(self, bus, recorder):
        """A plain emit returns a handle with an id and delivers one Created in state NONE."""
        handle = bus.run(lambda: TestBuildingStack(stack="simple").emit())

        assert handle.id
        assert [
            Created(
                id=handle.id,
                parent_id=None,
                created_at=recorder.changes[0].created_at,
                event=TestBuildingStack(stack="simple"),
                state=EventState.NONE,
            )
        ] == recorder.changes

    def test_event_update(self, bus, recorder):
        """Two updates after an emit deliver two Updated changes, in order, with the new data."""

        def work():
            handle = TestBuildImage(image="app", stage="stage 1").emit()
            handle.update(TestBuildImage(image="app", stage="stage 2"))
            handle.update(TestBuildImage(image="app", stage="stage 3"))

        bus.run(work)

        assert 3 == len(recorder.changes)
        assert [
            ("updated", "event-1", TestBuildImage(image="app", stage="stage 2")),
            ("updated", "event-1", TestBuildImage(image="app", stage="stage 3")),
        ] == normalise(recorder.changes)[1:]

    def test_scoped_event_success(self, bus, recorder):
        """A scope with two children returns its value; changes: started, 2 children, success."""

        def work():
            with TestBuildingStack(stack="scoped").in_scope():
                TestBuildImage(image="app", stage="compile").emit()
                TestBuildImage(image="app", stage="link").emit()
                return 42

        assert 42 == bus.run(work)
        assert 4 == len(recorder.changes)
        first, last = recorder.changes[0], recorder.changes[-1]
        assert isinstance(first, Created)
        assert EventState.STARTED == first.state
        assert isinstance(last, StateChanged)
        assert EventState.SUCCESS == last.new_state
        assert first.id == last.id

    def test_scoped_event_failure(self, bus, recorder):
        """A scope whose body raises after one child ends FAILED; the exception propagates."""

        def work():
            with TestBuildingStack(stack="scoped").in_scope():
                TestBuildImage(image="app", stage="compile").emit()
                raise GenericError("Test error")

        with pytest.raises(GenericError, match="Test error"):
            bus.run(work)

        assert [
            ("created", "event-1", None, TestBuildingStack(stack="scoped"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="app", stage="compile"),
                EventState.NONE,
            ),
            (
                "state_changed",
                "event-1",
                EventState.FAILED,
                AlienError(code="GENERIC_ERROR", message="Test error", http_status_code=500),
            ),
        ] == normalise(recorder.changes)

    def test_deep_hierarchy(self, bus, recorder):
        """Nested scopes give each Created its enclosing scope as parent (the deep snapshot)."""

        def compile_app1():
            with TestBuildImage(image="app1", stage="compile").in_scope():
                TestBuildImage(image="app1", stage="optimize").emit()

        def build_app1():
            with TestBuildingImage(image="app1").in_scope():
                compile_app1()

        def work():
            with TestBuildingStack(stack="root-stack").in_scope():
                build_app1()
                TestBuildingImage(image="app2").emit()

        bus.run(work)

        hierarchy = [c[1:4] for c in normalise(recorder.changes) if "created" == c[0]]
        assert [
            ("event-1", None, TestBuildingStack(stack="root-stack")),
            ("event-2", "event-1", TestBuildingImage(image="app1")),
            ("event-3", "event-2", TestBuildImage(image="app1", stage="compile")),
            ("event-4", "event-3", TestBuildImage(image="app1", stage="optimize")),
            ("event-5", "event-1", TestBuildingImage(image="app2")),
        ] == hierarchy

    def test_wide_hierarchy(self, bus, recorder):
        """Ten children emitted under one parent all carry that parent's id."""

        def work():
            parent = TestBuildingStack(stack="wide").emit()
            with parent.as_parent():
                for i in range(10):
                    TestBuildImage(image=f"image-{i}", stage="build").emit()
            parent.complete()
            return parent

        parent = bus.run(work)

        with_parent = [c for c in created(recorder.changes) if c.parent_id is not None]
        assert 10 == len(with_parent)
        assert {parent.id} == {c.parent_id for c in with_parent}
        assert 12 == len(recorder.changes)

    def test_durable_execution_simulation(self, bus, recorder):
        """A started event parents children across two separate ``as_parent`` steps, then ends."""

        def work():
            handle = TestDeployingStack(stack="durable").emit_with_state(EventState.STARTED)
            handle.as_parent(
                lambda _: TestCreatingResource(resource_type="A", resource_name="a").emit()
            )
            handle.as_parent(
                lambda _: TestCreatingResource(resource_type="B", resource_name="b").emit()
            )
            handle.complete()

        bus.run(work)

        assert [
            ("created", "event-1", None, TestDeployingStack(stack="durable"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestCreatingResource(resource_type="A", resource_name="a"),
                EventState.NONE,
            ),
            (
                "created",
                "event-3",
                "event-1",
                TestCreatingResource(resource_type="B", resource_name="b"),
                EventState.NONE,
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_durable_execution_simulation_async(self, bus, recorder):
        """The async form: two awaited ``as_parent`` steps under one started event, then success."""

        async def step(name):
            return await TestCreatingResource(resource_type=name, resource_name=name).aemit()

        async def step_a(_handle):
            return await step("A")

        async def main():
            handle = await TestDeployingStack(stack="durable").aemit(EventState.STARTED)
            first = await handle.as_parent(step_a)
            async with handle.as_parent():
                second = await step("B")
            await handle.acomplete()
            return handle, first, second

        handle, first, second = asyncio.run(bus.run(main))

        assert [handle.id, handle.id] == [first.parent_id, second.parent_id]
        assert [
            ("created", "event-1", None, EventState.STARTED),
            ("created", "event-2", "event-1", EventState.NONE),
            ("created", "event-3", "event-1", EventState.NONE),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == [c[:3] + c[4:] if "created" == c[0] else c for c in normalise(recorder.changes)]

    def test_as_parent_with_closure_returning_coroutine(self, bus, recorder):
        """
        ``as_parent(lambda h: coro(h))``, Rust's closure-returning-a-future idiom, parents the work.
        """

        async def step(_handle):
            return await TestCreatingResource(resource_type="A", resource_name="a").aemit()

        async def main():
            handle = await TestDeployingStack(stack="durable").aemit(EventState.STARTED)
            child = await handle.as_parent(lambda h: step(h))  # noqa: PLW0108  (the idiom)
            return handle, child

        handle, child = asyncio.run(bus.run(main))

        assert handle.id == child.parent_id

    def test_manual_state_management(self, bus, recorder):
        """``emit_with_state(STARTED)`` then ``fail(error)`` delivers Created then FAILED with it."""
        error = AlienError(
            code="GENERIC_ERROR", message="Something went wrong", http_status_code=500
        )

        def work():
            handle = TestBuildingStack(stack="manual").emit_with_state(EventState.STARTED)
            handle.fail(error)

        bus.run(work)

        assert 2 == len(recorder.changes)
        first, second = recorder.changes
        assert isinstance(first, Created)
        assert EventState.STARTED == first.state
        assert isinstance(second, StateChanged)
        assert EventState.FAILED == second.new_state
        assert "Something went wrong" == second.error.message
        assert error == second.error

    def test_concurrent_events(self, bus, recorder):
        """Three emits awaited together under ``asyncio.gather`` all succeed, three changes."""

        async def main():
            return await asyncio.gather(
                TestBuildImage(image="a", stage="build").aemit(),
                TestBuildImage(image="b", stage="build").aemit(),
                TestBuildImage(image="c", stage="build").aemit(),
            )

        handles = asyncio.run(bus.run(main))

        assert 3 == len(recorder.changes)
        assert {h.id for h in handles} == {c.id for c in recorder.changes}
        assert {"a", "b", "c"} == {c.event.image for c in recorder.changes}

    def test_concurrent_events_threads(self, bus, recorder):
        """The sync form: three emits from three threads carrying the context, three changes."""

        def work():
            with ThreadPoolExecutor(max_workers=3) as pool:
                futures = [
                    pool.submit(carry_context(TestBuildImage(image=name, stage="build").emit))
                    for name in "abc"
                ]
                return [f.result() for f in futures]

        handles = bus.run(work)

        assert 3 == len(recorder.changes)
        assert {h.id for h in handles} == {c.id for c in recorder.changes}

    def test_nested_scopes_with_errors(self, bus, recorder):
        """An inner scope's failure, handled by the outer body, fails only the inner event."""

        def work():
            with TestBuildingStack(stack="outer").in_scope():
                TestBuildImage(image="outer", stage="prepare").emit()
                try:
                    with TestBuildingImage(image="inner").in_scope():
                        raise GenericError("Inner failure")
                except GenericError:
                    pass
                return "Outer succeeded"

        assert "Outer succeeded" == bus.run(work)
        assert [
            ("created", "event-1", None, TestBuildingStack(stack="outer"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="outer", stage="prepare"),
                EventState.NONE,
            ),
            ("created", "event-3", "event-1", TestBuildingImage(image="inner"), EventState.STARTED),
            (
                "state_changed",
                "event-3",
                EventState.FAILED,
                AlienError(code="GENERIC_ERROR", message="Inner failure", http_status_code=500),
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_no_event_bus_context(self):
        """With no bus, emit returns the no-op handle and its operations do nothing."""
        handle = TestBuildingStack(stack="nobus").emit()

        assert handle.is_noop
        assert EventHandle.noop() == handle
        handle.update(TestBuildingStack(stack="still nothing"))
        handle.complete()

    @pytest.mark.parametrize(
        ("stack", "image", "stage"),
        [
            ("stack1", "image1", "stage1"),
            ("stack2", "image2", "stage2"),
            ("stack3", "image3", "stage3"),
        ],
    )
    def test_parameterized_events(self, bus, recorder, stack, image, stage):
        """A scope with one child gives started, child and success with the given values."""

        def work():
            with TestBuildingStack(stack=stack).in_scope():
                TestBuildImage(image=image, stage=stage).emit()

        bus.run(work)

        assert [
            ("created", "event-1", None, TestBuildingStack(stack=stack), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image=image, stage=stage),
                EventState.NONE,
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_complex_workflow_snapshot(self, bus, recorder):
        """A build-push-deploy workflow (async forms) matches the Rust snapshot change for change."""

        async def build_image():
            async with TestBuildingImage(image="api-service").in_scope():
                for stage in STAGES:
                    await TestBuildImage(image="api-service", stage=stage).aemit()

        async def deploy():
            async with TestDeployingStack(stack="api-service").in_scope():
                await TestCreatingResource(
                    resource_type="LoadBalancer",
                    resource_name="api-lb",
                    details="Updating target groups",
                ).aemit()
                await TestPerformingHealthCheck(
                    target="https://api.example.com/health", check_type="HTTP"
                ).aemit()

        async def main():
            async with TestBuildingStack(stack="production-stack").in_scope():
                await build_image()
                await TestPushImage(image="api-service").aemit()
                await deploy()

        asyncio.run(bus.run(main))

        assert COMPLEX_WORKFLOW_SNAPSHOT == normalise(recorder.changes)

    def test_complex_workflow_snapshot_sync(self, bus, recorder):
        """The same workflow written with the sync forms gives the same snapshot."""

        def work():
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

        bus.run(work)

        assert COMPLEX_WORKFLOW_SNAPSHOT == normalise(recorder.changes)

    def test_multi_tenancy_with_http_server(self):
        """10,000 concurrent requests, each with its own bus, see only their own five changes."""
        smoke: dict[str, list] = {}
        assert "deployed smoke" == asyncio.run(handle_request("smoke", smoke, []))
        assert 5 == len(smoke["smoke"])

        tenants = [f"tenant-{i:04d}" for i in range(10_000)]
        received: dict[str, list] = {}
        order: list[str] = []

        async def main():
            return await asyncio.gather(*(handle_request(t, received, order) for t in tenants))

        results = asyncio.run(main())

        assert [f"deployed {t}" for t in tenants] == results
        assert set(tenants) == set(received)
        # Every request had started its scope before any went on: all 10,000 ran at once.
        assert set(tenants) == set(order[:10_000])
        all_ids = set()
        for tenant in tenants:
            changes = received[tenant]
            assert 5 == len(changes), tenant
            root, *children = created(changes)
            assert 3 == len(children)
            for change in created(changes):
                assert any(tenant in str(value) for value in attrs.astuple(change.event)), change
            assert [root.id] * 3 == [c.parent_id for c in children]
            assert [(root.id, EventState.SUCCESS)] == [
                (c.id, c.new_state) for c in state_changes(changes)
            ]
            all_ids.update(c.id for c in changes)
        assert 40_000 == len(all_ids)
        first = received["tenant-0000"]
        building_stack = next(c for c in first if isinstance(c.event, TestBuildingStack))
        assert any(c.parent_id == building_stack.id for c in created(first))

    def test_handler_failure(self):
        """A failing handler fails ``emit`` with "Event handler failed" and the handler's message."""
        bus = EventBus([FailingHandler()])

        with pytest.raises(EventHandlerError) as info:
            bus.run(lambda: TestBuildingStack(stack="x").emit())

        assert "Event handler failed" in str(info.value)
        assert "Handler intentionally failed" in str(info.value)
        wrapped = info.value.as_alien_error()
        assert "GENERIC_ERROR" == wrapped.code
        assert "Event handler failed" == wrapped.message
        assert {"message": "Event handler failed"} == wrapped.context
        assert wrapped.retryable
        assert 500 == wrapped.http_status_code
        assert "Handler intentionally failed" == wrapped.source.message

    def test_mixed_handlers_one_fails(self, recorder):
        """With handlers [recording, failing] emit fails, and the recorder got the one Created."""
        bus = EventBus([recorder, FailingHandler()])

        with pytest.raises(EventHandlerError) as info:
            bus.run(lambda: TestBuildingStack(stack="x").emit())

        assert "Event handler failed" in str(info.value)
        assert "Handler intentionally failed" in str(info.value)
        assert 1 == len(recorder.changes)
        assert isinstance(recorder.changes[0], Created)

    def test_handler_failure_in_scoped_event(self):
        """
        A failing handler does not fail ``in_scope``: the body runs and its value comes back.

        Decision (decisions.md, a failing handler): the body gets the real handle, not Rust's
        no-op one, and the failure is reported once as an ``EventHandlerWarning``.
        """
        failing = FailingHandler()
        bus = EventBus([failing])
        seen = []

        def body(handle):
            seen.append(handle)
            return 42

        with pytest.warns(EventHandlerWarning, match="Handler intentionally failed") as warned:
            result = bus.run(lambda: TestBuildingStack(stack="x").in_scope(body))

        assert 42 == result
        assert 1 == len(seen)
        assert not seen[0].is_noop
        assert UUID4.fullmatch(seen[0].id)
        assert 2 == failing.calls  # the Created, then the success through the real handle
        assert 1 == len(warned)

    def test_handler_failure_during_update(self):
        """A handler failing only on Updated lets emit succeed and fails the update."""
        failing = FailingHandler(
            "Handler failed during update", when=lambda c: isinstance(c, Updated)
        )
        bus = EventBus([failing])

        def work():
            handle = TestBuildingStack(stack="x").emit()
            with pytest.raises(EventHandlerError) as info:
                handle.update(TestBuildingStack(stack="y"))
            return info.value

        error = bus.run(work)

        assert "Event handler failed" in str(error)
        assert "Handler failed during update" in str(error)
        assert 2 == failing.calls

    def test_alien_event_macro(self, bus, recorder):
        """An async function under ``@alien_event`` runs in the event's scope and parents children."""

        @alien_event(TestBuildingStack(stack="macro-test"))
        async def build():
            await TestBuildImage(image="macro", stage="child").aemit()
            return "success"

        assert "success" == asyncio.run(bus.run(build))
        assert len(recorder.changes) >= 3
        first = recorder.changes[0]
        assert isinstance(first, Created)
        assert EventState.STARTED == first.state
        assert TestBuildingStack(stack="macro-test") == first.event
        assert any(
            c.event == TestBuildImage(image="macro", stage="child") and c.parent_id == first.id
            for c in created(recorder.changes)
        )
        assert [(first.id, EventState.SUCCESS)] == [
            (c.id, c.new_state) for c in state_changes(recorder.changes)
        ]

    def test_alien_event_macro_sync(self, bus, recorder):
        """The decorator also wraps a sync function (our addition), with the same changes."""

        @alien_event(TestBuildingStack(stack="macro-test"))
        def build():
            TestBuildImage(image="macro", stage="child").emit()
            return "success"

        assert "success" == bus.run(build)
        assert [
            ("created", "event-1", None, TestBuildingStack(stack="macro-test"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="macro", stage="child"),
                EventState.NONE,
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_alien_event_macro_with_failure(self, bus, recorder):
        """A decorated async function that raises fails its event and re-raises."""

        @alien_event(TestBuildingStack(stack="macro-fail"))
        async def build():
            await TestBuildImage(image="macro", stage="child").aemit()
            raise GenericError("Macro failure")

        with pytest.raises(GenericError, match="Macro failure"):
            asyncio.run(bus.run(build))

        assert [
            (
                "state_changed",
                "event-1",
                EventState.FAILED,
                AlienError(code="GENERIC_ERROR", message="Macro failure", http_status_code=500),
            )
        ] == [c for c in normalise(recorder.changes) if c[0] == "state_changed"]

    def test_alien_event_macro_with_dynamic_values(self, bus, recorder):
        """A factory builds the decorator's event from the call's arguments."""

        @alien_event(lambda item_id: TestBuildingStack(stack=f"stack-{item_id}"))
        async def process(item_id: int) -> str:
            return f"processed-{item_id}"

        async def main():
            return await process(42)

        assert "processed-42" == asyncio.run(bus.run(main))
        first = recorder.changes[0]
        assert isinstance(first, Created)
        assert TestBuildingStack(stack="stack-42") == first.event

    def test_handler_failure_during_state_change(self):
        """A handler failing only on StateChanged lets emit succeed and fails ``complete``."""
        failing = FailingHandler(
            "Handler failed during state change", when=lambda c: isinstance(c, StateChanged)
        )
        bus = EventBus([failing])

        def work():
            handle = TestBuildingStack(stack="x").emit()
            with pytest.raises(EventHandlerError) as info:
                handle.complete()
            return info.value

        error = bus.run(work)

        assert "Event handler failed" in str(error)
        assert "Handler failed during state change" in str(error)
        assert 2 == failing.calls

    # The runnable examples of mod.rs's documentation.

    def test_doc_simple_event_emission(self, bus, recorder):
        """The "Simple Event Emission" example: an emit in ``bus.run`` returns a uuid4 id."""
        handle = bus.run(lambda: AlienEvent.BuildingStack(stack="my-stack").emit())

        assert UUID4.fullmatch(handle.id)
        assert [handle.id] == [c.id for c in recorder.changes]

    def test_doc_event_updates(self, bus, recorder):
        """The "Event Updates" example: emit, update and complete give the three change kinds."""

        def work():
            handle = AlienEvent.BuildingStack(stack="my-stack").emit()
            handle.update(AlienEvent.BuildingStack(stack="my-stack-v2"))
            handle.complete()

        bus.run(work)

        assert [
            (
                "created",
                "event-1",
                None,
                AlienEvent.BuildingStack(stack="my-stack"),
                EventState.NONE,
            ),
            ("updated", "event-1", AlienEvent.BuildingStack(stack="my-stack-v2")),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_doc_event_handlers(self):
        """The "Event Handlers" example: a store handler matching all three change kinds."""

        class StoreHandler:
            """Keeps one row per event, like the docs' PostgresEventHandler."""

            def __init__(self) -> None:
                self.rows: dict[str, dict] = {}

            def on_event_change(self, change) -> None:
                match change:
                    case Created(id=event_id, parent_id=parent_id, event=event, state=state):
                        self.rows[event_id] = {"parent": parent_id, "event": event, "state": state}
                    case Updated(id=event_id, event=event):
                        self.rows[event_id]["event"] = event
                    case StateChanged(id=event_id, new_state=new_state):
                        self.rows[event_id]["state"] = new_state

        store = StoreHandler()

        def work():
            handle = AlienEvent.BuildingStack(stack="my-stack").emit()
            handle.update(AlienEvent.BuildingStack(stack="my-stack-v2"))
            handle.complete()
            return handle

        handle = EventBus([store]).run(work)

        assert {
            handle.id: {
                "parent": None,
                "event": AlienEvent.BuildingStack(stack="my-stack-v2"),
                "state": EventState.SUCCESS,
            }
        } == store.rows


# -- extra checks (reference 5.6, and the edge cases of section 3) ------------------------------


class TestExtraChecks:
    def test_failing_second_handler_still_reaches_third(self):
        """
        A failing handler does not stop later handlers; the emit then fails with its error.

        Decision (decisions.md, a failing handler): Rust stops at the first failure and never
        calls the third handler; ours delivers to every handler, then raises.
        """
        first, third = RecordingHandler(), RecordingHandler()
        bus = EventBus([first, FailingHandler(), third])

        with pytest.raises(EventHandlerError) as info:
            bus.run(lambda: TestBuildingStack(stack="x").emit())

        assert 1 == len(first.changes)
        assert first.changes == third.changes
        assert 1 == len(info.value.errors)
        assert "Handler intentionally failed" == str(info.value.errors[0])
        assert info.value.errors[0] is info.value.__cause__
        assert first.changes[0].id == info.value.handle.id

    def test_several_failing_handlers_are_all_reported(self):
        """When two handlers fail, the error lists both, in handler order."""
        bus = EventBus([FailingHandler("first failed"), FailingHandler("second failed")])

        with pytest.raises(EventHandlerError) as info:
            bus.run(lambda: TestBuildingStack(stack="x").emit())

        assert ["first failed", "second failed"] == [str(e) for e in info.value.errors]

    def test_state_change_failure_does_not_fail_in_scope(self, recorder):
        """
        A handler failing only on StateChanged still lets ``in_scope`` return the body's value.

        Our addition (decisions.md): the failure is reported once, as an ``EventHandlerWarning``.
        """
        failing = FailingHandler(when=lambda c: isinstance(c, StateChanged))
        bus = EventBus([failing, recorder])

        def work():
            with TestBuildingStack(stack="x").in_scope():
                return "value"

        with pytest.warns(EventHandlerWarning) as warned:
            assert "value" == bus.run(work)

        assert 1 == len(warned)
        assert [EventState.SUCCESS] == [c.new_state for c in state_changes(recorder.changes)]

    def test_scope_whose_start_failed_keeps_its_real_handle(self, recorder):
        """
        When a scope's Created fails in one handler, its children still get the scope as parent.

        Decision (decisions.md, a failing handler): Rust falls back to a no-op handle, so its
        children get no parent; ours carries on with the real handle, so the working handlers
        see the whole scope: started, child, success.
        """
        failing = FailingHandler(
            when=lambda c: isinstance(c, Created) and c.state is EventState.STARTED
        )
        bus = EventBus([recorder, failing])

        def work():
            with TestBuildingStack(stack="x").in_scope() as handle:
                TestBuildImage(image="child", stage="build").emit()
                return handle

        with pytest.warns(EventHandlerWarning):
            handle = bus.run(work)

        assert not handle.is_noop
        assert [
            ("created", "event-1", None, TestBuildingStack(stack="x"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="child", stage="build"),
                EventState.NONE,
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_scope_body_gets_the_real_handle_with_its_parent(self, bus, recorder):
        """The handle ``in_scope`` gives its body is the event's own, with its true parent id."""

        def inner(handle):
            return handle

        def outer(handle):
            return handle, TestBuildingImage(image="inner").in_scope(inner)

        outer_handle, inner_handle = bus.run(lambda: TestBuildingStack(stack="o").in_scope(outer))

        assert outer_handle.parent_id is None
        assert outer_handle.id == inner_handle.parent_id
        assert [outer_handle.id, inner_handle.id] == [c.id for c in created(recorder.changes)]

    def test_noop_handle_as_parent_keeps_the_ambient_parent(self, bus, recorder):
        """
        Under a no-op handle's ``as_parent`` children keep the ambient parent (none at top level).

        This is also our form of Rust's ``with_parent(None)``, which keeps the ambient parent.
        """

        def work():
            with EventHandle.noop().as_parent():
                TestBuildImage(image="top", stage="build").emit()
            with (
                TestBuildingStack(stack="outer").in_scope() as outer,
                EventHandle.noop().as_parent(),
            ):
                TestBuildImage(image="inner", stage="build").emit()
            return outer

        outer = bus.run(work)

        assert [None, None, outer.id] == [c.parent_id for c in created(recorder.changes)]

    def test_nested_run_goes_to_inner_bus_with_outer_parent(self, bus, recorder):
        """A nested ``run`` sends events only to the inner bus, keeping the outer parent id."""
        inner_recorder = RecordingHandler()
        inner_bus = EventBus([inner_recorder])

        def work():
            with TestBuildingStack(stack="outer").in_scope() as outer:
                inner_bus.run(lambda: TestBuildImage(image="inner", stage="build").emit())
                TestBuildImage(image="after", stage="build").emit()
            return outer

        outer = bus.run(work)

        assert [(outer.id, TestBuildImage(image="inner", stage="build"))] == [
            (c.parent_id, c.event) for c in inner_recorder.changes
        ]
        assert [
            ("created", "event-1", None, TestBuildingStack(stack="outer"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="after", stage="build"),
                EventState.NONE,
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_asyncio_task_inherits_bus_and_parent(self, bus, recorder):
        """
        An asyncio task started in a scope emits to the same bus, under that scope.

        Decision (decisions.md, spawned work): Rust's spawned tasks inherit nothing (their
        emits are no-ops, or root events under ``bus.run``); asyncio tasks copy the context.
        """

        async def child():
            return await TestBuildImage(image="spawned", stage="build").aemit()

        async def main():
            async with TestBuildingStack(stack="outer").in_scope() as outer:
                spawned = await asyncio.create_task(child())
            return outer, spawned

        outer, spawned = asyncio.run(bus.run(main))

        assert not spawned.is_noop
        assert outer.id == spawned.parent_id
        assert [outer.id] == [c.parent_id for c in created(recorder.changes) if c.parent_id]

    def test_plain_thread_inherits_nothing_but_carry_context_carries_both(self, bus, recorder):
        """
        A plain thread's emit is a no-op; wrapped in ``carry_context`` it has the bus and parent.

        Decision (decisions.md, spawned work): threads do not inherit, like Rust's spawn, and
        ``carry_context`` carries the parent too (Rust's ``bus.run`` workaround loses it).
        """
        results = {}

        def emit_into(key):
            results[key] = TestBuildImage(image=key, stage="build").emit()

        def work():
            with TestBuildingStack(stack="outer").in_scope() as outer:
                plain = threading.Thread(target=emit_into, args=("plain",))
                carried = threading.Thread(target=carry_context(emit_into), args=("carried",))
                for thread in (plain, carried):
                    thread.start()
                    thread.join()
            return outer

        outer = bus.run(work)

        assert results["plain"].is_noop
        assert not results["carried"].is_noop
        assert outer.id == results["carried"].parent_id
        assert [
            ("created", "event-1", None, TestBuildingStack(stack="outer"), EventState.STARTED),
            (
                "created",
                "event-2",
                "event-1",
                TestBuildImage(image="carried", stage="build"),
                EventState.NONE,
            ),
            ("state_changed", "event-1", EventState.SUCCESS, None),
        ] == normalise(recorder.changes)

    def test_as_parent_callback_gets_the_handle_itself(self, bus):
        """
        ``as_parent(fn)`` passes the handle itself, with its real parent id, and returns fn's value.

        Decision (decisions.md: ``as_parent()`` works like ``in_scope()``): Rust passes a dummy
        handle with the same id and ``parent_id`` None.
        """

        def work():
            parent = TestBuildingStack(stack="parent").emit()
            child = TestBuildingImage(image="child").emit_with_parent(parent)
            return child, child.as_parent(lambda h: (h, "value"))

        child, (received, value) = bus.run(work)

        assert received is child
        assert child.parent_id == received.parent_id
        assert child.parent_id is not None
        assert "value" == value

    def test_registered_handler_survives_later_runs(self, recorder):
        """A handler registered inside one ``run`` still gets changes in later runs of that bus."""
        bus = EventBus()

        registered_on = bus.run(lambda: EventBus.register_handler(recorder))
        bus.run(lambda: TestBuildingStack(stack="later").emit())

        assert bus is registered_on
        assert (recorder,) == bus.handlers
        assert [TestBuildingStack(stack="later")] == [c.event for c in recorder.changes]

    def test_register_handler_without_bus_does_nothing(self, recorder):
        """``register_handler`` with no bus reachable returns None and adds nowhere."""
        assert EventBus.register_handler(recorder) is None
        assert EventBus.current() is None

    def test_double_complete_gives_two_state_changes(self, bus, recorder):
        """Completing a handle twice delivers two StateChanged(SUCCESS), with seq 1 then 2."""

        def work():
            handle = TestBuildingStack(stack="x").emit()
            handle.complete()
            handle.complete()

        bus.run(work)

        assert [(EventState.SUCCESS, 1), (EventState.SUCCESS, 2)] == [
            (c.new_state, c.seq) for c in state_changes(recorder.changes)
        ]

    def test_no_transition_is_validated(self, bus, recorder):
        """Update after complete, fail after complete and SUCCESS back to STARTED all go out."""
        error = AlienError(code="GENERIC_ERROR", message="late", http_status_code=500)

        def work():
            handle = TestBuildingStack(stack="x").emit()
            handle.complete()
            handle.update(TestBuildingStack(stack="after"))
            handle.fail(error)
            handle.set_state(EventState.STARTED)

        bus.run(work)

        assert [
            ("created", "event-1", None, TestBuildingStack(stack="x"), EventState.NONE),
            ("state_changed", "event-1", EventState.SUCCESS, None),
            ("updated", "event-1", TestBuildingStack(stack="after")),
            ("state_changed", "event-1", EventState.FAILED, error),
            ("state_changed", "event-1", EventState.STARTED, None),
        ] == normalise(recorder.changes)

    def test_state_change_of_unknown_id_is_dispatched(self, bus, recorder):
        """A state change for an id the bus never created is delivered as it is."""
        bus.run(lambda: EventHandle("nonexistent-id").set_state(EventState.STARTED))

        assert [("nonexistent-id", EventState.STARTED)] == [
            (c.id, c.new_state) for c in recorder.changes
        ]

    def test_emit_with_parent_outside_bus_is_noop_without_parent(self):
        """``emit_with_parent`` with no bus returns the no-op handle, whose parent id is None."""
        handle = TestBuildingStack(stack="x").emit_with_parent("some-parent")

        assert handle.is_noop
        assert handle.parent_id is None

    def test_explicit_parent_wins_over_scope(self, bus, recorder):
        """An explicit parent overrides the enclosing scope's."""

        def work():
            with TestBuildingStack(stack="outer").in_scope():
                return TestBuildImage(image="x", stage="build").emit_with_parent("elsewhere")

        handle = bus.run(work)

        assert "elsewhere" == handle.parent_id
        assert "elsewhere" == created(recorder.changes)[1].parent_id

    def test_noop_handle_operations_dispatch_nothing_on_live_bus(self, bus, recorder):
        """Update, complete and fail on the no-op handle send nothing, even inside a live bus."""

        def work():
            noop = EventHandle.noop()
            noop.update(TestBuildingStack(stack="x"))
            noop.complete()
            noop.fail(AlienError(code="X", message="y"))

        bus.run(work)

        assert [] == recorder.changes

    def test_bus_without_handlers_returns_real_handles(self):
        """A bus with no handlers still returns real handles with fresh uuid4 ids."""
        bus = EventBus()

        first, second = bus.run(
            lambda: (TestBuildingStack(stack="a").emit(), TestBuildingStack(stack="b").emit())
        )

        assert not first.is_noop
        assert UUID4.fullmatch(first.id)
        assert UUID4.fullmatch(second.id)
        assert first.id != second.id
