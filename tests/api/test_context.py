"""
Tests of the context and process settings (``alien_events_api._context``).

The API's own process-default accessors, which share their state with the SDK's ``set_default_bus``.
"""

from alien_events_api import AlienEvent, EventHandle, EventState
from alien_events_api._context import get_default_bus, set_default_bus
from alien_events_sdk import EventBus, RecordingHandler
from alien_events_sdk import set_default_bus as sdk_set_default_bus


class TestProcessDefaultBus:
    def test_no_default_bus_at_first(self):
        """With no default installed, ``get_default_bus`` returns ``None``."""
        assert get_default_bus() is None

    def test_installed_bus_is_the_fallback_for_emit(self, bus, recorder):
        """A bus installed with the API's ``set_default_bus`` receives events emitted outside any context."""
        assert set_default_bus(bus) is None
        assert bus is get_default_bus()
        handle = AlienEvent.Finished().emit(EventState.STARTED)
        handle.complete()
        assert [handle.id, handle.id] == [c.id for c in recorder.changes]

    def test_setting_returns_the_previous_default(self, bus):
        """``set_default_bus`` returns the default it replaces, and ``None`` clears it."""
        other = EventBus()
        set_default_bus(bus)
        assert bus is set_default_bus(other)
        assert other is set_default_bus(None)
        assert get_default_bus() is None

    def test_cleared_default_makes_emit_a_no_op(self, bus, recorder):
        """After the default is cleared again, emitting outside any context reaches nothing."""
        set_default_bus(bus)
        set_default_bus(None)
        assert EventHandle.noop() is AlienEvent.Finished().emit()
        assert [] == recorder.changes

    def test_shares_its_state_with_the_sdk_setter(self, bus):
        """The API's accessors see the bus the SDK's ``set_default_bus`` installed, and the other way round."""
        sdk_set_default_bus(bus)
        assert bus is get_default_bus()
        other = EventBus([RecordingHandler()])
        assert bus is set_default_bus(other)
        assert other is sdk_set_default_bus(None)
