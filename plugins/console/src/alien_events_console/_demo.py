"""
The simulated build and deploy that ``alien-events demo`` runs.

It emits what a real ``alien build`` and release would: configuration, a stack built resource
by resource (in parallel threads, with compiler output as updates), images pushed layer by
layer (``PushingImage`` updated with ``PushProgress``), one push that fails and is retried, a
release and a CloudFormation deploy whose status moves on, and ``Finished`` at the end. Every
wait goes through a ``Pacer``, so tests can run the whole thing in a fraction of a second.
"""

from __future__ import annotations

import threading
import typing
from typing import TYPE_CHECKING

import attrs

from alien_events_api import (
    AlienError,
    AlienEvent,
    EventState,
    PushProgress,
    carry_context,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from alien_events_sdk import EventBus

DEFAULT_PAUSE = 0.1
"""Seconds per simulated step at speed 1: the whole run takes about four seconds."""

STACK = "shop"
PROJECT = "acme/shop"
PLATFORM = "aws"
VERSION = "1.4.0"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop"
ROLE_ARN = "arn:aws:iam::123456789012:role/alien-deployer"
CFN_STACK = "shop-prod"
MB = 1_000_000
_POLL = 0.05


@typing.final
@attrs.frozen
class Resource:
    """One resource of the simulated stack: how it is compiled and what its image holds."""

    name: str
    type: str
    language: str
    compiler_output: tuple[str, ...]
    layer_bytes: tuple[int, ...]

    @property
    def image(self) -> str:
        """The image reference pushed for this resource."""
        return f"{STACK}-{self.name}:{VERSION}"


RESOURCES = (
    Resource(
        name="api",
        type="container",
        language="rust",
        compiler_output=(
            "crate 9/52: tokio v1.38.0",
            "crate 23/52: hyper v1.3.1",
            "crate 41/52: aws-sdk-s3 v1.29.0",
            "crate 52/52: shop-api v1.4.0",
            "finished release profile [optimized] in 41.7s",
        ),
        layer_bytes=(31 * MB, 12 * MB, 4 * MB, 900_000, 120_000),
    ),
    Resource(
        name="worker",
        type="function",
        language="typescript",
        compiler_output=(
            "tsc -b: 1/3 projects",
            "tsc -b: 3/3 projects",
            "esbuild: bundled 412 modules (1.9 MB)",
        ),
        layer_bytes=(18 * MB, 6 * MB, 2 * MB, 300_000),
    ),
    Resource(
        name="web",
        type="container",
        language="typescript",
        compiler_output=(
            "vite: transforming (318 modules)",
            "vite: rendering chunks (27)",
            "vite: built in 6.2s",
        ),
        layer_bytes=(22 * MB, 9 * MB, 700_000),
    ),
)

FLAKY_RESOURCE = "worker"
"""The resource whose first push fails (the registry answers 503) and is retried."""
FAILING_LAYER = 3
"""The layer during which the flaky push fails."""

CFN_STATUSES = (
    "UPDATE_IN_PROGRESS",
    "UPDATE_IN_PROGRESS (api: service updating)",
    "UPDATE_IN_PROGRESS (worker: function updated)",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_COMPLETE",
)


class DemoError(Exception):
    """
    A failure of the simulated work; ``alien_error`` is what its event fails with.
    """

    def __init__(self, error: AlienError) -> None:
        super().__init__(error.message)
        self.alien_error = error


class DemoInterruptedError(DemoError):
    """
    The demo was stopped (Ctrl-C) while this thread's work was running.
    """

    def __init__(self) -> None:
        super().__init__(
            AlienError(
                code="CANCELLED",
                message="cancelled (the demo was interrupted)",
                retryable=True,
                http_status_code=499,
            )
        )


@typing.final
class Pacer:
    """
    Paces the simulated work: a step is ``pause`` seconds; ``stop()`` ends every wait at once.
    """

    def __init__(self, pause: float) -> None:
        if pause < 0:
            msg = f"pause must be >= 0 seconds, got {pause!r}"
            raise ValueError(msg)
        self.pause = pause
        self._stopped = threading.Event()

    def step(self, steps: float = 1.0) -> None:
        """Wait ``steps`` steps; raise ``DemoInterruptedError`` if the demo was stopped."""
        if self._stopped.wait(self.pause * steps):
            raise DemoInterruptedError

    @property
    def stopped(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopped.is_set()

    def stop(self) -> None:
        """Make every current and later wait raise ``DemoInterruptedError``."""
        self._stopped.set()


def registry_error(resource: Resource, attempt: int, total_layers: int) -> AlienError:
    """Return the error a push fails with when the registry is unavailable."""
    return AlienError(
        code="LAYER_UPLOAD_FAILED",
        message=(
            f"uploading layer {FAILING_LAYER} of {total_layers} of {resource.image} failed "
            f"(attempt {attempt})"
        ),
        hint="The registry was briefly unavailable; pushes are retried once.",
        retryable=True,
        http_status_code=503,
        source=AlienError(
            code="HTTP_503",
            message=f"{REGISTRY.split('/', 1)[0]} answered 503 Service Unavailable",
            retryable=True,
            http_status_code=503,
            source=AlienError(code="CONNECTION_RESET", message="connection reset by peer"),
        ),
    )


def run_demo(bus: EventBus, *, pause: float = DEFAULT_PAUSE, fail: bool = False) -> None:
    """
    Run the simulated build and deploy on ``bus``; return when it is done.

    With ``fail``, the retried push fails again and the run ends there, raising the
    ``DemoError``. ``KeyboardInterrupt`` stops the worker threads at their next step.
    """
    pacer = Pacer(pause)
    bus.run(_build_and_deploy, pacer, fail=fail)


def _build_and_deploy(pacer: Pacer, *, fail: bool) -> None:
    with AlienEvent.LoadingConfiguration().in_scope():
        pacer.step(2)
    with AlienEvent.BuildingStack(stack=STACK).in_scope():
        with AlienEvent.RunningPreflights(stack=STACK, platform=PLATFORM).in_scope():
            pacer.step(3)
        _in_parallel(pacer, lambda r: _build_resource(pacer, r), RESOURCES)
    with AlienEvent.PushingStack(stack=STACK, platform=PLATFORM, destination=REGISTRY).in_scope():
        with AlienEvent.EnsuringDockerRepository(repository_name=STACK).in_scope():
            pacer.step(2)
        _in_parallel(pacer, lambda r: _push_resource(pacer, r, fail=fail), RESOURCES)
    with AlienEvent.CreatingRelease(project=PROJECT).in_scope():
        pacer.step(3)
    _deploy(pacer)
    AlienEvent.Finished().emit(EventState.SUCCESS)


def _in_parallel(
    pacer: Pacer, work: Callable[[Resource], None], resources: Sequence[Resource]
) -> None:
    """
    Run ``work`` for each resource in a thread of its own, under the current event.

    Raises the first resource's failure once every thread is done. On Ctrl-C the threads are
    stopped at their next step and waited for, so no event is left running.
    """
    failures: dict[int, BaseException] = {}
    entered = [threading.Event() for _ in resources]
    finished = [threading.Event() for _ in resources]

    def run(index: int, resource: Resource) -> None:
        entered[index].set()
        try:
            if not pacer.stopped:  # a thread that only gets going after Ctrl-C does nothing
                work(resource)
        except BaseException as exc:  # noqa: BLE001  (handed to the main thread, raised there)
            failures[index] = exc
        finally:
            finished[index].set()

    threads = [
        threading.Thread(target=carry_context(run), args=(i, r), name=f"demo-{r.name}", daemon=True)
        for i, r in enumerate(resources)
    ]
    try:
        for thread in threads:
            thread.start()
        _wait_for(finished)
    except BaseException:  # Ctrl-C: stop the threads, wait for those that got going, go on
        pacer.stop()
        # A thread not entered yet sees the stop and does nothing. (Not Thread.join: on
        # Python 3.11 a join interrupted by Ctrl-C marks a running thread as stopped.)
        _wait_for([done for went, done in zip(entered, finished, strict=True) if went.is_set()])
        raise
    if failures:
        raise failures[min(failures)]


def _wait_for(events: Sequence[threading.Event]) -> None:
    """Wait until every event is set, waking often so that Ctrl-C is seen at once."""
    for event in events:
        while not event.wait(_POLL):
            pass


def _build_resource(pacer: Pacer, resource: Resource) -> None:
    event = AlienEvent.BuildingResource(resource_name=resource.name, resource_type=resource.type)
    with event.in_scope():
        with AlienEvent.CompilingCode(language=resource.language).in_scope() as compiling:
            for line in resource.compiler_output:
                pacer.step(1.5)
                compiling.update(
                    AlienEvent.CompilingCode(language=resource.language, progress=line)
                )
        with AlienEvent.BuildingImage(image=resource.image).in_scope():
            pacer.step(2)


def _push_resource(pacer: Pacer, resource: Resource, *, fail: bool) -> None:
    event = AlienEvent.PushingResource(resource_name=resource.name, resource_type=resource.type)
    with event.in_scope():
        flaky = resource.name == FLAKY_RESOURCE
        attempts = 2
        for attempt in range(1, attempts + 1):
            fails = flaky and (attempt == 1 or fail)
            try:
                _push_image(pacer, resource, attempt=attempt, fails=fails)
            except DemoError as exc:
                if attempt == attempts or isinstance(exc, DemoInterruptedError):
                    raise
                pacer.step(2)  # back off before the retry
            else:
                return


def _push_image(pacer: Pacer, resource: Resource, *, attempt: int, fails: bool) -> None:
    """Push an image layer by layer, updating one ``PushingImage`` event as bytes go up."""
    layers = resource.layer_bytes
    total = sum(layers)
    image = resource.image

    def progress(done_layers: int, done_bytes: int, operation: str = "Uploading") -> PushProgress:
        return PushProgress(operation, done_layers, len(layers), done_bytes, total)

    with AlienEvent.PushingImage(image=image, progress=progress(0, 0)).in_scope() as pushing:
        sent = 0
        for number, size in enumerate(layers, start=1):
            # Two updates per layer: half of it, then all of it (big layers move the bar).
            pacer.step(0.5)
            pushing.update(
                AlienEvent.PushingImage(
                    image=image, progress=progress(number - 1, sent + size // 2)
                )
            )
            if fails and number == FAILING_LAYER:
                pacer.step(0.5)
                raise DemoError(registry_error(resource, attempt, len(layers)))
            pacer.step(0.5)
            sent += size
            pushing.update(AlienEvent.PushingImage(image=image, progress=progress(number, sent)))
        pushing.update(
            AlienEvent.PushingImage(image=image, progress=progress(len(layers), total, "Pushed"))
        )


def _deploy(pacer: Pacer) -> None:
    with AlienEvent.DeployingStack(stack_name=STACK).in_scope():
        with AlienEvent.AssumingRole(role_arn=ROLE_ARN).in_scope():
            pacer.step(2)
        first = AlienEvent.DeployingCloudFormationStack(
            cfn_stack_name=CFN_STACK, current_status="UPDATE_IN_PROGRESS"
        )
        with first.in_scope() as deploying:
            for status in CFN_STATUSES[1:]:
                pacer.step(1.5)
                deploying.update(
                    AlienEvent.DeployingCloudFormationStack(
                        cfn_stack_name=CFN_STACK, current_status=status
                    )
                )
        with AlienEvent.RunningTestWorker(stack_name=STACK).in_scope():
            pacer.step(3)
