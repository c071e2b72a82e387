"""
The 31 event types of Alien, under the ``AlienEvent`` namespace, and ``PushProgress``.

Field names are the Rust ones; their JSON keys are camelCase. Optional fields default to
``None`` here (Rust makes you spell them out).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from alien_events_api._errors import EventValidationError
from alien_events_api._event import JSON_SCHEMA, Event, event_field, event_type
from alien_events_api._validation import checked_frozen

_AT_LEAST_ZERO = {JSON_SCHEMA: {"minimum": 0}}


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 0:
        raise EventValidationError(
            type(instance).__qualname__, attribute.name, f"expected an int >= 0, got {value}"
        )


@checked_frozen
class PushProgress:
    """
    Progress of an image push: the operation, layers and bytes uploaded out of the totals.
    """

    operation: str
    layers_uploaded: int = attrs.field(validator=_non_negative, metadata=_AT_LEAST_ZERO)
    total_layers: int = attrs.field(validator=_non_negative, metadata=_AT_LEAST_ZERO)
    bytes_uploaded: int = attrs.field(validator=_non_negative, metadata=_AT_LEAST_ZERO)
    total_bytes: int = attrs.field(validator=_non_negative, metadata=_AT_LEAST_ZERO)


@typing.final
class AlienEvent:
    """
    The namespace of Alien's own event types: ``AlienEvent.BuildingStack(stack="s")`` and 30 more.
    """

    __slots__ = ()

    def __new__(cls) -> AlienEvent:
        msg = "AlienEvent is a namespace; build a variant, e.g. AlienEvent.BuildingStack(stack=...)"
        raise TypeError(msg)

    @event_type
    class LoadingConfiguration(Event):
        """
        Loading configuration file.
        """

    @event_type
    class Finished(Event):
        """
        Operation finished successfully.
        """

    @event_type
    class BuildingStack(Event):
        """
        Stack packaging event.
        """

        stack: str

    @event_type
    class RunningPreflights(Event):
        """
        Running build-time preflight checks and mutations.
        """

        stack: str
        platform: str

    @event_type
    class DownloadingAlienRuntime(Event):
        """
        Downloading alien runtime event.
        """

        target_triple: str
        url: str

    @event_type
    class BuildingResource(Event):
        """
        Resource build event (function, container, or worker).
        """

        resource_name: str
        resource_type: str
        related_resources: Sequence[str] = event_field(default=(), omit_if_default=True)

    @event_type
    class BuildingImage(Event):
        """
        Image build event.
        """

        image: str

    @event_type
    class PushingImage(Event):
        """
        Image push event.
        """

        image: str
        progress: PushProgress | None = None

    @event_type
    class PushingStack(Event):
        """
        Pushing stack images to registry.
        """

        stack: str
        platform: str
        destination: str | None = event_field(default=None, omit_if_default=True)

    @event_type
    class PushingResource(Event):
        """
        Pushing resource images to registry.
        """

        resource_name: str
        resource_type: str

    @event_type
    class CreatingRelease(Event):
        """
        Creating a release on the platform.
        """

        project: str

    @event_type
    class CompilingCode(Event):
        """
        Code compilation event (rust, typescript, etc.).
        """

        language: str
        progress: str | None = None

    @event_type
    class StackStep(Event):
        """
        One step of the infrastructure executor, with the state it moves to.
        """

        next_state: Mapping[str, Any]
        suggested_delay_ms: int | None = attrs.field(
            default=None, validator=_non_negative, metadata=_AT_LEAST_ZERO
        )

    @event_type
    class GeneratingCloudFormationTemplate(Event):
        """
        Generating CloudFormation template.
        """

    @event_type
    class GeneratingTemplate(Event):
        """
        Generating infrastructure template.
        """

        platform: str

    @event_type
    class ProvisioningAgent(Event):
        """
        Provisioning a new agent.
        """

        agent_id: str
        release_id: str

    @event_type
    class UpdatingAgent(Event):
        """
        Updating an existing agent.
        """

        agent_id: str
        release_id: str

    @event_type
    class DeletingAgent(Event):
        """
        Deleting an agent.
        """

        agent_id: str
        release_id: str

    @event_type
    class DebuggingAgent(Event):
        """
        Starting a debug session for an agent.
        """

        agent_id: str
        debug_session_id: str

    @event_type
    class PreparingEnvironment(Event):
        """
        Preparing environment for deployment.
        """

        strategy_name: str

    @event_type
    class DeployingStack(Event):
        """
        Deploying stack with alien-infra.
        """

        stack_name: str

    @event_type
    class RunningTestWorker(Event):
        """
        Running test function after deployment.
        """

        stack_name: str

    @event_type
    class CleaningUpStack(Event):
        """
        Cleaning up deployed stack resources.
        """

        stack_name: str
        strategy_name: str

    @event_type
    class CleaningUpEnvironment(Event):
        """
        Cleaning up deployment environment.
        """

        stack_name: str
        strategy_name: str

    @event_type
    class SettingUpPlatformContext(Event):
        """
        Setting up platform context.
        """

        platform_name: str

    @event_type
    class EnsuringDockerRepository(Event):
        """
        Ensuring docker repository exists.
        """

        repository_name: str

    @event_type
    class DeployingCloudFormationStack(Event):
        """
        Deploying CloudFormation stack.
        """

        cfn_stack_name: str
        current_status: str

    @event_type
    class AssumingRole(Event):
        """
        Assuming AWS IAM role.
        """

        role_arn: str

    @event_type
    class ImportingStackStateFromCloudFormation(Event):
        """
        Importing stack state from CloudFormation.
        """

        cfn_stack_name: str

    @event_type
    class DeletingCloudFormationStack(Event):
        """
        Deleting CloudFormation stack.
        """

        cfn_stack_name: str
        current_status: str

    @event_type
    class EmptyingBuckets(Event):
        """
        Emptying S3 buckets before stack deletion.
        """

        bucket_names: Sequence[str]


ALIEN_EVENT_TYPES: tuple[type[Event], ...] = tuple(
    value
    for value in vars(AlienEvent).values()
    if isinstance(value, type) and issubclass(value, Event)
)
"""The 31 variants, in Rust's declaration order."""
