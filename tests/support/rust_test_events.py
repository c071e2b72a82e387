"""
The Rust module's seven test-only event types, for the ported test suite.
"""

from __future__ import annotations

from typing import ClassVar

from alien_events_api import Event, event_type


@event_type
class TestBuildingStack(Event):
    """Rust's ``TestBuildingStack { stack }``."""

    __test__: ClassVar[bool] = False
    stack: str


@event_type
class TestBuildingImage(Event):
    """Rust's ``TestBuildingImage { image }``."""

    __test__: ClassVar[bool] = False
    image: str


@event_type
class TestBuildImage(Event):
    """Rust's ``TestBuildImage { image, stage }``."""

    __test__: ClassVar[bool] = False
    image: str
    stage: str


@event_type
class TestPushImage(Event):
    """Rust's ``TestPushImage { image }``."""

    __test__: ClassVar[bool] = False
    image: str


@event_type
class TestCreatingResource(Event):
    """Rust's ``TestCreatingResource { resource_type, resource_name, details }``."""

    __test__: ClassVar[bool] = False
    resource_type: str
    resource_name: str
    details: str | None = None


@event_type
class TestDeployingStack(Event):
    """Rust's ``TestDeployingStack { stack }``."""

    __test__: ClassVar[bool] = False
    stack: str


@event_type
class TestPerformingHealthCheck(Event):
    """Rust's ``TestPerformingHealthCheck { target, check_type }``."""

    __test__: ClassVar[bool] = False
    target: str
    check_type: str
