"""
Tests of ``AlienError`` (``alien_events_api._alien_error``).

Its fields and checks, ``from_exception``, and its Rust-like display.
"""

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import AlienError, AlienEvent, EventHandlerError, EventValidationError
from alien_events_api._alien_error import cancelled_error


class HTTPError(Exception):
    pass


class CodedError(Exception):
    code = "MY_CODE"


class NumberCodedError(Exception):
    code = 404


class EmptyCodedError(Exception):
    code = ""


class CarriesError(Exception):
    def __init__(self, error: AlienError) -> None:
        super().__init__("carrier")
        self.alien_error = error


class BrokenStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() is broken")


class ConvertsTo(Exception):
    """An exception whose ``as_alien_error()`` returns a given value."""

    def __init__(self, made: object) -> None:
        super().__init__("converts")
        self.made = made

    def as_alien_error(self) -> object:
        return self.made


class BrokenInterrupt(KeyboardInterrupt):
    def __str__(self) -> str:
        raise RuntimeError("str() is broken")


# The class pool for random chains, with the code each one must give.
CODES: dict[type[Exception], str] = {
    ValueError: "VALUE_ERROR",
    KeyError: "KEY_ERROR",
    RuntimeError: "RUNTIME_ERROR",
    HTTPError: "HTTP_ERROR",
    CodedError: "MY_CODE",
    NumberCodedError: "NUMBER_CODED_ERROR",
}

LINKS = st.lists(
    st.tuples(
        st.sampled_from(sorted(CODES, key=lambda c: c.__name__)),
        st.text(max_size=8),
        st.sampled_from(["cause", "context"]),
    ),
    min_size=1,
    max_size=20,
)


def chain(links) -> list[BaseException]:
    """Build exceptions from the links, each linked to the next by ``__cause__`` or ``__context__``."""
    excs: list[BaseException] = [cls(message) for cls, message, _ in links]
    for (_, _, how), exc, below in zip(links, excs, excs[1:], strict=False):
        if how == "cause":
            exc.__cause__ = below
        else:
            exc.__context__ = below
    return excs


def sources(error: AlienError | None) -> list[AlienError]:
    """The error and its sources, outermost first."""
    found = []
    while error is not None:
        found.append(error)
        error = error.source
    return found


def expected_message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class TestFields:
    def test_defaults(self):
        """Only code and message are required; the rest default as in Rust's generic form."""
        error = AlienError("CODE", "message")
        assert {
            "code": "CODE",
            "message": "message",
            "context": None,
            "hint": None,
            "retryable": False,
            "internal": False,
            "http_status_code": None,
            "source": None,
        } == attrs.asdict(error, recurse=False)

    def test_field_order_is_rusts(self):
        """The fields are Rust's, in Rust's order."""
        assert [
            "code",
            "message",
            "context",
            "hint",
            "retryable",
            "internal",
            "http_status_code",
            "source",
        ] == [a.name for a in attrs.fields(AlienError)]

    def test_context_takes_any_json_value(self):
        """``context`` holds any JSON value as given."""
        context = {"resource_id": "r", "reason": ["a", 1, None, 2.5, True]}
        assert context == AlienError("C", "m", context=context).context

    def test_frozen_and_equal_by_value(self):
        """Errors are frozen and equal when every field is equal, sources included."""
        error = AlienError("C", "m", source=AlienError("S", "s"))
        assert AlienError("C", "m", source=AlienError("S", "s")) == error
        assert AlienError("C", "m", source=AlienError("S", "t")) != error
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            error.code = "D"  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("field", "value", "reason_start"),
        [
            ("code", 1, "expected str"),
            ("message", None, "expected str"),
            ("hint", 3, "expected str or None"),
            ("retryable", 1, "expected bool"),
            ("internal", "yes", "expected bool"),
            ("http_status_code", "500", "expected int or None"),
            ("http_status_code", True, "expected int or None"),
            ("source", ValueError("x"), "expected AlienError"),
            ("source", "cause", "expected AlienError"),
        ],
    )
    def test_bad_field_is_refused(self, field, value, reason_start):
        """A field of the wrong type is refused with an error naming ``AlienError`` and the field."""
        with pytest.raises(EventValidationError) as caught:
            AlienError(**{"code": "C", "message": "m", field: value})
        assert ("AlienError", field) == (caught.value.cls_name, caught.value.field)
        assert caught.value.reason.startswith(reason_start)

    @settings(deadline=None)
    @given(st.integers(min_value=100, max_value=599))
    def test_any_http_status_in_range_is_accepted(self, status):
        """Every HTTP status from 100 to 599 is accepted."""
        assert status == AlienError("C", "m", http_status_code=status).http_status_code

    @settings(deadline=None)
    @given(st.integers(max_value=99) | st.integers(min_value=600))
    def test_any_http_status_out_of_range_is_refused(self, status):
        """Every integer outside 100..599 is refused as an HTTP status."""
        with pytest.raises(EventValidationError) as caught:
            AlienError("C", "m", http_status_code=status)
        assert "http_status_code" == caught.value.field
        assert f"expected 100..599 or None, got {status}" == caught.value.reason


class TestFromException:
    @pytest.mark.parametrize(
        ("exc", "code"),
        [
            (ValueError("x"), "VALUE_ERROR"),
            (HTTPError("x"), "HTTP_ERROR"),
            (KeyError("x"), "KEY_ERROR"),
            (OSError("x"), "OS_ERROR"),
            (FileNotFoundError("x"), "FILE_NOT_FOUND_ERROR"),
            (json.JSONDecodeError("x", "doc", 0), "JSON_DECODE_ERROR"),
            (ZeroDivisionError("x"), "ZERO_DIVISION_ERROR"),
            (KeyboardInterrupt(), "KEYBOARD_INTERRUPT"),
            (type("lowercase", (Exception,), {})("x"), "LOWERCASE"),
        ],
    )
    def test_code_is_the_class_name_in_upper_snake(self, exc, code):
        """Without a string ``code`` attribute, the code is the class name in UPPER_SNAKE."""
        assert code == AlienError.from_exception(exc).code

    def test_string_code_attribute_wins(self):
        """An exception's string ``code`` attribute is the code."""
        assert "MY_CODE" == AlienError.from_exception(CodedError("x")).code

    @pytest.mark.parametrize(
        ("exc", "code"),
        [
            (NumberCodedError("x"), "NUMBER_CODED_ERROR"),
            (EmptyCodedError("x"), "EMPTY_CODED_ERROR"),
            (SystemExit(3), "SYSTEM_EXIT"),
        ],
    )
    def test_code_attribute_that_is_not_a_non_empty_str_is_ignored(self, exc, code):
        """A ``code`` attribute that is not a non-empty ``str`` falls back to the class name."""
        assert code == AlienError.from_exception(exc).code

    def test_message_is_str_of_the_exception(self):
        """The message is ``str(exc)``."""
        assert "bad value" == AlienError.from_exception(ValueError("bad value")).message
        assert "'k'" == AlienError.from_exception(KeyError("k")).message

    def test_empty_message_falls_back_to_the_class_name(self):
        """An exception with an empty ``str`` gives its class name as message."""
        assert "HTTPError" == AlienError.from_exception(HTTPError()).message

    def test_other_fields(self):
        """A converted error has no context or hint, is not retryable or internal, and says 500."""
        error = AlienError.from_exception(ValueError("x"))
        assert (None, None, False, False, 500, None) == (
            error.context,
            error.hint,
            error.retryable,
            error.internal,
            error.http_status_code,
            error.source,
        )

    def test_cause_becomes_the_source(self):
        """``raise ... from cause`` makes the cause the source."""
        try:
            try:
                raise KeyError("inner")
            except KeyError as inner:
                raise ValueError("outer") from inner
        except ValueError as exc:
            error = AlienError.from_exception(exc)
        assert [("VALUE_ERROR", "outer"), ("KEY_ERROR", "'inner'")] == [
            (e.code, e.message) for e in sources(error)
        ]

    def test_context_becomes_the_source_without_a_cause(self):
        """An exception raised while handling another has that one as source."""
        try:
            try:
                raise KeyError("inner")
            except KeyError:
                raise ValueError("outer")  # noqa: B904
        except ValueError as exc:
            error = AlienError.from_exception(exc)
        assert ["VALUE_ERROR", "KEY_ERROR"] == [e.code for e in sources(error)]

    def test_cause_wins_over_context(self):
        """With both a cause and a context, the cause is the source."""
        exc = ValueError("outer")
        exc.__context__ = KeyError("context")
        exc.__cause__ = RuntimeError("cause")
        assert "RUNTIME_ERROR" == AlienError.from_exception(exc).source.code  # type: ignore[union-attr]

    def test_suppressed_context_is_not_a_source(self):
        """``raise ... from None`` hides the context: the error has no source."""
        try:
            try:
                raise KeyError("inner")
            except KeyError:
                raise ValueError("outer") from None
        except ValueError as exc:
            error = AlienError.from_exception(exc)
            context = exc.__context__
        assert isinstance(context, KeyError)
        assert error.source is None

    def test_self_cycle_terminates(self):
        """An exception that is its own cause gives an error without a source."""
        exc = ValueError("me")
        exc.__cause__ = exc
        assert [("VALUE_ERROR", "me")] == [
            (e.code, e.message) for e in sources(AlienError.from_exception(exc))
        ]

    def test_two_cycle_terminates(self):
        """Two exceptions that are each other's context give a chain of two."""
        first, second = ValueError("first"), KeyError("second")
        first.__context__ = second
        second.__context__ = first
        assert ["first", "'second'"] == [
            e.message for e in sources(AlienError.from_exception(first))
        ]

    def test_very_deep_chain_is_cut(self):
        """A chain deeper than 32 sources is cut after 32, so conversion cannot recurse forever."""
        excs = chain([(ValueError, str(i), "cause") for i in range(50)])
        found = sources(AlienError.from_exception(excs[0]))
        assert [str(i) for i in range(33)] == [e.message for e in found]

    def test_alien_error_attribute_is_honoured(self):
        """An exception carrying an ``alien_error`` gives exactly that error."""
        given = AlienError("GIVEN", "given", hint="h", source=AlienError("S", "s"))
        exc = CarriesError(given)
        exc.__cause__ = ValueError("ignored")
        assert given is AlienError.from_exception(exc)

    def test_alien_error_attribute_inside_a_chain(self):
        """A carried error deep in a chain is used as the source there, with its own sources."""
        given = AlienError("GIVEN", "given", source=AlienError("S", "s"))
        exc = ValueError("top")
        exc.__cause__ = CarriesError(given)
        assert ["VALUE_ERROR", "GIVEN", "S"] == [
            e.code for e in sources(AlienError.from_exception(exc))
        ]

    def test_alien_error_attribute_that_is_not_an_error_is_ignored(self):
        """An ``alien_error`` attribute that is not an ``AlienError`` is not used."""
        exc = ValueError("x")
        exc.alien_error = "not an error"  # type: ignore[attr-defined]
        assert "VALUE_ERROR" == AlienError.from_exception(exc).code

    def test_as_alien_error_method_is_honoured(self):
        """An exception with an ``as_alien_error()`` method gives the error that method returns."""
        made = AlienError("MADE", "made", retryable=True)
        exc = ConvertsTo(made)
        exc.__cause__ = ValueError("ignored")
        assert made is AlienError.from_exception(exc)

    @pytest.mark.parametrize("made", [None, "MADE", {"code": "MADE"}, ValueError("made")])
    def test_as_alien_error_returning_something_else_is_ignored(self, made):
        """An ``as_alien_error()`` that returns no ``AlienError`` is ignored: the usual conversion applies."""
        exc = ConvertsTo(made)
        exc.__cause__ = KeyError("below")
        error = AlienError.from_exception(exc)
        assert ("CONVERTS_TO", "converts", 500, "KEY_ERROR") == (
            error.code,
            error.message,
            error.http_status_code,
            error.source.code,
        )

    def test_handler_error_converts_to_the_rust_wrapper(self):
        """An ``EventHandlerError`` converts to Rust's "Event handler failed" generic error."""
        error = AlienError.from_exception(EventHandlerError([KeyError("boom")]))
        assert (
            AlienError(
                code="GENERIC_ERROR",
                message="Event handler failed",
                context={"message": "Event handler failed"},
                retryable=True,
                http_status_code=500,
                source=AlienError("KEY_ERROR", "'boom'", http_status_code=500),
            )
            == error
        )

    def test_broken_str_still_converts(self):
        """An exception whose ``__str__`` raises still converts, with its code."""
        error = AlienError.from_exception(BrokenStr())
        assert "BROKEN_STR" == error.code
        assert isinstance(error.message, str)

    @settings(deadline=None)
    @given(LINKS)
    def test_random_chain_gives_a_source_chain_of_the_same_length(self, links):
        """Any chain of causes and contexts gives one error per exception, in the same order."""
        excs = chain(links)
        found = sources(AlienError.from_exception(excs[0]))
        assert [(CODES[type(e)], expected_message(e)) for e in excs] == [
            (e.code, e.message) for e in found
        ]

    @settings(deadline=None)
    @given(LINKS, st.data())
    def test_random_cycle_terminates_with_each_exception_once(self, links, data):
        """A chain whose last exception links back to an earlier one gives each exception once."""
        excs = chain(links)
        back_to = data.draw(st.integers(min_value=0, max_value=len(excs) - 1))
        excs[-1].__context__ = excs[back_to]
        found = sources(AlienError.from_exception(excs[0]))
        assert [expected_message(e) for e in excs] == [e.message for e in found]


class TestDisplay:
    def test_without_source(self):
        """An error without source displays as ``CODE: message``."""
        assert "NOT_FOUND: no such stack" == str(AlienError("NOT_FOUND", "no such stack"))

    def test_with_one_source(self):
        """A source is shown on its own line after ``├─▶``."""
        error = AlienError("GENERIC_ERROR", "Event handler failed", source=AlienError("E", "m"))
        assert "GENERIC_ERROR: Event handler failed\n├─▶ E: m" == str(error)

    def test_nested_sources_are_indented(self):
        """Each deeper source is indented by one more ``│   `` as in Rust."""
        error = AlienError("A", "a", source=AlienError("B", "b", source=AlienError("C", "c")))
        assert "A: a\n├─▶ B: b\n│   ├─▶ C: c" == str(error)

    @settings(deadline=None)
    @given(LINKS)
    def test_one_line_per_error(self, links):
        """The display has one line per error of the chain, each deeper one indented further."""
        messages = [str(i) for i in range(len(links))]
        excs = chain([(cls, m, how) for (cls, _, how), m in zip(links, messages, strict=True)])
        error = AlienError.from_exception(excs[0])
        lines = str(error).split("\n")
        assert len(links) == len(lines)
        assert f"{error.code}: {error.message}" == lines[0]
        assert [
            f"{'│   ' * depth}├─▶ {e.code}: {e.message}"
            for depth, e in enumerate(sources(error)[1:])
        ] == lines[1:]


class TestCancelledError:
    @pytest.mark.parametrize(
        ("exc", "message"),
        [
            (GeneratorExit(), "cancelled (GeneratorExit)"),
            (KeyboardInterrupt(), "cancelled (KeyboardInterrupt)"),
            (SystemExit("bye"), "cancelled (bye)"),
        ],
    )
    def test_cancelled_error(self, exc, message):
        """A scope ended by cancellation gets ``CANCELLED``, retryable, HTTP 499, with the reason."""
        assert AlienError(
            code="CANCELLED", message=message, retryable=True, http_status_code=499
        ) == cancelled_error(exc)

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (cancelled_error(KeyboardInterrupt()), True),
            (AlienError(code="CANCELLED", message="by hand"), True),
            (AlienError(code="CANCELED", message="one L"), False),
            (AlienError(code="TIMEOUT", message="slow"), False),
        ],
    )
    def test_is_cancellation_means_the_cancelled_code(self, error, expected):
        """``is_cancellation`` is true exactly for the ``CANCELLED`` code a cut-short scope gets."""
        assert expected is error.is_cancellation

    def test_interrupt_with_a_broken_str_is_named_by_its_class(self, bus, recorder):
        """A scope interrupted by an exception whose ``str`` raises ends ``CANCELLED`` with its class name."""
        with bus, pytest.raises(BrokenInterrupt), AlienEvent.Finished().in_scope():
            raise BrokenInterrupt
        assert (
            AlienError(
                code="CANCELLED",
                message="cancelled (BrokenInterrupt)",
                retryable=True,
                http_status_code=499,
            )
            == recorder.changes[-1].error
        )
