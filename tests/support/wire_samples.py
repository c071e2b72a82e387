"""
Shared samples for the wire-format tests: Alien's conformance files and realistic events.

The conformance files (golden examples and Alien's own JSON Schemas) live beside the project,
in ``tests/conformance`` (a copy of the team's ``../shared/conformance``;
``ALIEN_CONFORMANCE_DIR`` overrides the place).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from alien_events_api import (
    ALIEN_EVENT_TYPES,
    AlienError,
    AlienEvent,
    Event,
    EventChange,
    EventState,
    PushProgress,
)
from alien_events_sdk import EventBus, RecordingHandler

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFORMANCE = pathlib.Path(os.environ.get("ALIEN_CONFORMANCE_DIR", ROOT / "tests" / "conformance"))
SCHEMAS = CONFORMANCE / "alien-schemas"


def load_examples() -> list[dict[str, Any]]:
    """Return the golden examples of ``wire-examples.jsonl``, in file order."""
    text = (CONFORMANCE / "wire-examples.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_alien_schema(name: str) -> dict[str, Any]:
    """Return one of Alien's schemas: eventChange, alienEvent, eventState or alienError."""
    return json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))


EXAMPLES = load_examples()

# A StackState as Alien's schema describes it (alienEvent.json, StackStep.nextState): a
# platform from its enum, a resource prefix, and resources with type, status and config.
STACK_STATE: dict[str, Any] = {
    "platform": "aws",
    "resourcePrefix": "acme-prod",
    "resources": {
        "assets": {
            "type": "storage",
            "status": "running",
            "config": {"type": "storage", "id": "assets", "publicRead": False},
            "outputs": {"type": "storage", "bucketName": "acme-prod-assets"},
            "dependencies": [{"type": "role", "id": "assets-role"}],
            "lifecycle": "frozen",
            "controllerPlatform": "aws",
            "error": None,
            "previousConfig": None,
            "retryAttempt": 0,
        },
        "api": {
            "type": "worker",
            "status": "provisioning",
            "config": {"type": "worker", "id": "api", "memoryMb": 512},
            "dependencies": [],
            "error": {
                "code": "TIMEOUT",
                "message": "Lambda did not become active in time",
                "retryable": True,
                "internal": False,
            },
            "retryAttempt": 2,
        },
    },
}

# One realistic instance of each of the 31 types, every optional field filled in.
REALISTIC: dict[type[Event], Event] = {
    AlienEvent.LoadingConfiguration: AlienEvent.LoadingConfiguration(),
    AlienEvent.Finished: AlienEvent.Finished(),
    AlienEvent.BuildingStack: AlienEvent.BuildingStack(stack="my-stack"),
    AlienEvent.RunningPreflights: AlienEvent.RunningPreflights(stack="my-stack", platform="aws"),
    AlienEvent.DownloadingAlienRuntime: AlienEvent.DownloadingAlienRuntime(
        target_triple="x86_64-unknown-linux-gnu",
        url="https://releases.alien.dev/runtime/x86_64-unknown-linux-gnu.tar.gz",
    ),
    AlienEvent.BuildingResource: AlienEvent.BuildingResource(
        resource_name="api", resource_type="container", related_resources=["api", "jobs"]
    ),
    AlienEvent.BuildingImage: AlienEvent.BuildingImage(image="api"),
    AlienEvent.PushingImage: AlienEvent.PushingImage(
        image="api",
        progress=PushProgress(
            operation="Uploading",
            layers_uploaded=1,
            total_layers=3,
            bytes_uploaded=1024,
            total_bytes=4096,
        ),
    ),
    AlienEvent.PushingStack: AlienEvent.PushingStack(
        stack="my-stack", platform="aws", destination="123456789012.dkr.ecr.us-east-1.amazonaws.com"
    ),
    AlienEvent.PushingResource: AlienEvent.PushingResource(
        resource_name="api", resource_type="worker"
    ),
    AlienEvent.CreatingRelease: AlienEvent.CreatingRelease(project="acme"),
    AlienEvent.CompilingCode: AlienEvent.CompilingCode(
        language="rust", progress="Compiling serde v1.0.210"
    ),
    AlienEvent.StackStep: AlienEvent.StackStep(next_state=STACK_STATE, suggested_delay_ms=5000),
    AlienEvent.GeneratingCloudFormationTemplate: AlienEvent.GeneratingCloudFormationTemplate(),
    AlienEvent.GeneratingTemplate: AlienEvent.GeneratingTemplate(platform="gcp"),
    AlienEvent.ProvisioningAgent: AlienEvent.ProvisioningAgent(
        agent_id="agent-7", release_id="rel-42"
    ),
    AlienEvent.UpdatingAgent: AlienEvent.UpdatingAgent(agent_id="agent-7", release_id="rel-43"),
    AlienEvent.DeletingAgent: AlienEvent.DeletingAgent(agent_id="agent-7", release_id="rel-43"),
    AlienEvent.DebuggingAgent: AlienEvent.DebuggingAgent(
        agent_id="agent-7", debug_session_id="dbg-1"
    ),
    AlienEvent.PreparingEnvironment: AlienEvent.PreparingEnvironment(strategy_name="aws-sandbox"),
    AlienEvent.DeployingStack: AlienEvent.DeployingStack(stack_name="my-stack"),
    AlienEvent.RunningTestWorker: AlienEvent.RunningTestWorker(stack_name="my-stack"),
    AlienEvent.CleaningUpStack: AlienEvent.CleaningUpStack(
        stack_name="my-stack", strategy_name="aws-sandbox"
    ),
    AlienEvent.CleaningUpEnvironment: AlienEvent.CleaningUpEnvironment(
        stack_name="my-stack", strategy_name="aws-sandbox"
    ),
    AlienEvent.SettingUpPlatformContext: AlienEvent.SettingUpPlatformContext(
        platform_name="kubernetes"
    ),
    AlienEvent.EnsuringDockerRepository: AlienEvent.EnsuringDockerRepository(
        repository_name="acme/api"
    ),
    AlienEvent.DeployingCloudFormationStack: AlienEvent.DeployingCloudFormationStack(
        cfn_stack_name="acme-prod", current_status="CREATE_IN_PROGRESS"
    ),
    AlienEvent.AssumingRole: AlienEvent.AssumingRole(
        role_arn="arn:aws:iam::123456789012:role/alien-deployer"
    ),
    AlienEvent.ImportingStackStateFromCloudFormation: (
        AlienEvent.ImportingStackStateFromCloudFormation(cfn_stack_name="acme-prod")
    ),
    AlienEvent.DeletingCloudFormationStack: AlienEvent.DeletingCloudFormationStack(
        cfn_stack_name="acme-prod", current_status="DELETE_IN_PROGRESS"
    ),
    AlienEvent.EmptyingBuckets: AlienEvent.EmptyingBuckets(
        bucket_names=["acme-prod-logs", "acme-prod-assets"]
    ),
}

# The same types with every optional field left at its default (what Rust omits or nulls).
MINIMAL: dict[type[Event], Event] = {
    **REALISTIC,
    AlienEvent.BuildingResource: AlienEvent.BuildingResource(
        resource_name="api", resource_type="worker"
    ),
    AlienEvent.PushingImage: AlienEvent.PushingImage(image="api"),
    AlienEvent.PushingStack: AlienEvent.PushingStack(stack="my-stack", platform="aws"),
    AlienEvent.CompilingCode: AlienEvent.CompilingCode(language="typescript"),
    AlienEvent.StackStep: AlienEvent.StackStep(
        next_state={"platform": "test", "resources": {}, "resourcePrefix": "t"}
    ),
    AlienEvent.EmptyingBuckets: AlienEvent.EmptyingBuckets(bucket_names=[]),
}

assert ALIEN_EVENT_TYPES == tuple(REALISTIC), "REALISTIC must list the 31 types in order"

# A failure with a chain of sources, every optional field used somewhere.
CHAINED_ERROR = AlienError(
    code="INVALID_RESOURCE_UPDATE",
    message="Resource 'my_resource' cannot be updated: hummus",
    context={"resource_id": "my_resource", "reason": "hummus"},
    hint="Wait for the running deployment to finish, then retry",
    retryable=False,
    internal=False,
    http_status_code=409,
    source=AlienError(
        code="GENERIC_ERROR",
        message="inner",
        context={"message": "inner"},
        retryable=True,
        http_status_code=500,
        source=AlienError(code="TIMEOUT", message="timed out after 30s", internal=True),
    ),
)


class DeployFailed(Exception):
    """An application exception with its own error code, for ``fail`` and failing scopes."""

    code = "DEPLOY_FAILED"


def produced_changes(event: Event, update: Event) -> list[EventChange]:
    """
    Return every kind of change the SDK produces for ``event``, as a handler receives them.

    Emits in each state (FAILED with the chained error and without an error), a child, an
    update, a completion, a failure from an ``AlienError`` and from an exception chain, and a
    scope that ends by an exception.
    """
    recorder = RecordingHandler()
    with EventBus([recorder]):
        event.emit()
        event.emit(EventState.STARTED)
        event.emit(EventState.SUCCESS)
        event.emit(EventState.FAILED, error=CHAINED_ERROR)
        event.emit(EventState.FAILED)
        handle = event.emit(EventState.STARTED)
        event.emit(parent=handle)
        handle.update(update)
        handle.complete()
        failing = event.emit_with_state(EventState.STARTED)
        failing.update(update)
        failing.fail(CHAINED_ERROR)
        other = event.emit_with_state(EventState.STARTED)
        try:
            try:
                raise KeyError("api")
            except KeyError as exc:
                raise DeployFailed("deploy of api failed") from exc
        except DeployFailed as exc:
            other.fail(exc)
        try:
            with event.in_scope():
                event.emit()
                raise DeployFailed("scope failed")
        except DeployFailed:
            pass
    return recorder.snapshot()
