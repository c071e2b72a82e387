"""
Carrying the current parent across processes (design ``durable-execution.md`` §5 R8, R9).

``inject``/``extract``, ``format_token``/``parse_token`` and ``PropagationTokenError``: the
token's shape, round trips of any id, carriers left alone, no side effect on derived ids,
malformed tokens, ``async with``, custom keys, and a real second process (``sys.executable``)
that re-attaches from the token and writes its children to a JSON-lines file.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import (
    TOKEN_KEY,
    AlienEvent,
    AlienEventsError,
    Created,
    EventHandle,
    EventState,
    PropagationTokenError,
    current_event,
    extract,
    format_token,
    inject,
    parse_token,
)
from alien_events_jsonl import read_changes
from alien_events_sdk import DerivedIds, EventBus, EventTree, RecordingHandler

PROPERTY = settings(max_examples=200, deadline=None)
TRICKY_IDS = [
    "plain",
    "a b",
    "-",
    "--",
    "%",
    "%25",
    "1-abc",
    "100%-done",
    "wf/ünïcödé run",
    "日本語",
    "emoji 🚀",
    "tab\tnew\nline",
    "\x00",
    "~._",
    "a" * 1000,
]
# Ids of any characters (hypothesis leaves out lone surrogates, which no str id can be encoded
# from), short enough that even 4-byte characters keep the token under its 4096 limit.
IDS = st.one_of(st.sampled_from(TRICKY_IDS), st.text(min_size=1, max_size=300))


def created(changes):
    return [c for c in changes if isinstance(c, Created)]


# -- the token ----------------------------------------------------------------------------------


class TestToken:
    @given(parent_id=IDS)
    @PROPERTY
    def test_any_id_round_trips(self, parent_id):
        """parse_token(format_token(id)) is the id, for any non-empty text (unicode, spaces, '-', '%')."""
        assert parent_id == parse_token(format_token(parent_id))

    @given(parent_id=IDS)
    @PROPERTY
    def test_the_token_is_versioned_printable_ascii_without_spaces(self, parent_id):
        """A token starts with '1-' and holds only printable ASCII other than space."""
        token = format_token(parent_id)

        assert token.startswith("1-")
        assert all("!" <= char <= "~" for char in token), token

    def test_the_token_format_is_pinned(self):
        """The version-1 token is '1-' and the id percent-encoded with nothing left safe but -._~."""
        assert "1-a%20b%2F%C3%BC-%25~._" == format_token("a b/ü-%~._")
        assert "1-3f2a" == format_token("3f2a")
        assert "alien-events-parent" == TOKEN_KEY

    @pytest.mark.parametrize("bad", ["", None, 7, b"id"], ids=repr)
    def test_format_token_refuses_empty_or_non_str_ids(self, bad):
        """format_token takes a non-empty str only, and says so in a TypeError."""
        with pytest.raises(TypeError, match="parent_id must be a non-empty str"):
            format_token(bad)

    @pytest.mark.parametrize("parent_id", ["a" * 4095, "🚀" * 400], ids=["ascii", "emoji"])
    def test_a_token_format_token_writes_is_one_parse_token_reads(self, parent_id):
        """format_token either refuses an id (ValueError) or makes a token parse_token reads back."""
        try:
            token = format_token(parent_id)
        except ValueError:
            return
        assert parent_id == parse_token(token)

    @pytest.mark.parametrize("token", ["1-%zz", "1-abc%", "1-%4"])
    def test_invalid_percent_escapes_are_refused(self, token):
        """A token with a '%' not followed by two hex digits is malformed (format_token never writes one)."""
        with pytest.raises(PropagationTokenError):
            parse_token(token)


MALFORMED = [
    ("2-abc", "version '2' is not supported"),
    ("10-abc", "version '10' is not supported"),
    ("abc", "expected '<version>-<percent-encoded parent id>'"),
    ("", "expected '<version>-<percent-encoded parent id>'"),
    ("1-", "expected '<version>-<percent-encoded parent id>'"),
    ("-abc", "expected '<version>-<percent-encoded parent id>'"),
    ("1-a b", "expected '<version>-<percent-encoded parent id>'"),
    ("1-ü", "expected '<version>-<percent-encoded parent id>'"),
    ("V1-abc", "expected '<version>-<percent-encoded parent id>'"),
    (7, "expected a str, got int"),
    (b"1-abc", "expected a str, got bytes"),
    (["1-abc"], "expected a str, got list"),
    ("1-" + "a" * 4095, "longer than 4096 characters"),
    ("1-%ff", "the parent id is not UTF-8"),
    ("1-%C3", "the parent id is not UTF-8"),
    ("1-%C3%28", "the parent id is not UTF-8"),
    ("1-%ED%A0%80", "the parent id is not UTF-8"),  # an encoded surrogate
]
MALFORMED_IDS = [
    "v2",
    "v10",
    "no-dash",
    "empty",
    "empty-id",
    "no-version",
    "space",
    "non-ascii",
    "upper-case-version",
    "int",
    "bytes",
    "list",
    "too-long",
    "bad-byte",
    "truncated-utf8",
    "bad-continuation",
    "surrogate",
]


class TestMalformedTokens:
    @pytest.mark.parametrize(("token", "reason"), MALFORMED, ids=MALFORMED_IDS)
    def test_parse_token_names_the_problem(self, token, reason):
        """parse_token raises PropagationTokenError (a ValueError) whose message and reason say what is wrong."""
        with pytest.raises(PropagationTokenError) as caught:
            parse_token(token)

        error = caught.value
        assert isinstance(error, ValueError)
        assert isinstance(error, AlienEventsError)
        assert reason in error.reason
        assert reason in str(error)
        assert "bad alien-events propagation token" in str(error)
        assert token is error.token

    @pytest.mark.parametrize(("token", "reason"), MALFORMED, ids=MALFORMED_IDS)
    def test_extract_raises_it_and_emits_nothing(self, token, reason):
        """extract of a malformed token raises PropagationTokenError; no parent is set, nothing is emitted."""
        recorder = RecordingHandler()
        with EventBus([recorder]):
            with pytest.raises(PropagationTokenError, match="bad alien-events propagation token"):  # noqa: SIM117
                with extract({TOKEN_KEY: token}):
                    AlienEvent.Finished().emit()
            assert current_event().is_noop

        assert [] == recorder.changes

    def test_a_long_message_is_cut_but_the_token_is_kept(self):
        """The message shows at most 120 characters of the token; the error keeps all of it."""
        token = "2-" + "x" * 500

        with pytest.raises(PropagationTokenError) as caught:
            parse_token(token)

        assert token == caught.value.token
        assert len(str(caught.value)) < 300


# -- inject -------------------------------------------------------------------------------------


class TestInject:
    def test_outside_any_scope_nothing_is_written(self):
        """inject outside every scope, with or without a bus, leaves the carrier as it was."""
        carrier = {"traceparent": "00-abc-def-01"}
        inject(carrier)
        with EventBus([RecordingHandler()]):
            AlienEvent.Finished().emit()  # a root, but not a scope
            inject(carrier)

        assert {"traceparent": "00-abc-def-01"} == carrier

    def test_in_a_scope_it_writes_the_scopes_id_and_touches_no_other_key(self):
        """Inside in_scope, inject writes the scope's token under its key and leaves other keys alone."""
        carrier = {"traceparent": "00-abc-def-01", "x-other": "1"}
        with (
            EventBus([RecordingHandler()]),
            AlienEvent.BuildingStack(stack="s").in_scope(id="root / ü") as root,
        ):
            inject(carrier)

        assert {
            "traceparent": "00-abc-def-01",
            "x-other": "1",
            TOKEN_KEY: format_token("root / ü"),
        } == carrier
        assert "root / ü" == root.id

    def test_the_innermost_scope_wins_and_an_old_token_is_replaced(self):
        """In nested scopes the innermost parent is written, replacing a token already in the carrier."""
        carrier = {TOKEN_KEY: format_token("stale")}
        with EventBus(), AlienEvent.BuildingStack(stack="s").in_scope():
            with AlienEvent.BuildingImage(image="i").in_scope() as inner:
                inject(carrier)
            assert format_token(inner.id) == carrier[TOKEN_KEY]

    def test_an_attached_handle_as_parent_is_injected_without_a_bus(self):
        """Under as_parent of a handle built from an id, inject writes that id even with no bus."""
        carrier = {}
        with EventHandle.attach("from-a-store").as_parent():
            inject(carrier)

        assert {TOKEN_KEY: "1-from-a-store"} == carrier

    def test_a_noop_scope_without_a_bus_writes_nothing(self):
        """in_scope with no bus reachable gives a no-op scope, and inject inside it writes nothing."""
        carrier = {}
        with AlienEvent.BuildingStack(stack="s").in_scope():
            inject(carrier)

        assert {} == carrier

    def test_a_custom_key(self):
        """inject(key=...) writes under that key only, and extract(key=...) reads it back."""
        carrier = {}
        recorder = RecordingHandler()
        with EventBus([recorder]):
            with AlienEvent.BuildingStack(stack="s").in_scope() as root:
                inject(carrier, key="x-alien-parent")
            with extract(carrier):  # the default key is absent: no parent
                orphan = AlienEvent.Finished().emit()
            with extract(carrier, key="x-alien-parent"):
                child = AlienEvent.Finished().emit()

        assert ["x-alien-parent"] == list(carrier)
        assert orphan.parent_id is None
        assert root.id == child.parent_id

    @given(calls=st.lists(st.integers(0, 3), min_size=5, max_size=5))
    @settings(max_examples=30, deadline=None)
    def test_inject_is_side_effect_free(self, calls):
        """Calling inject any number of times, anywhere, changes no derived id, seq or counter."""

        def program(inject_times):
            recorder = RecordingHandler()
            tokens = set()

            def maybe_inject(point):
                for _ in range(inject_times[point]):
                    carrier = {}
                    inject(carrier)
                    tokens.update(carrier.values())

            with EventBus([recorder], ids=DerivedIds("wf/inject")):
                maybe_inject(0)
                with AlienEvent.BuildingStack(stack="s").in_scope() as stack:
                    maybe_inject(1)
                    for image in ("a", "b"):
                        with AlienEvent.BuildingImage(image=image).in_scope():
                            maybe_inject(2)
                            AlienEvent.Finished().emit()
                            maybe_inject(3)
                    stack.update(AlienEvent.BuildingStack(stack="s2"))
                    maybe_inject(4)
            return [(type(c).__name__, c.id, c.seq) for c in recorder.changes], tokens

        without, _ = program([0] * 5)
        with_injects, tokens = program(calls)

        assert without == with_injects
        assert len(tokens) <= 3


# -- extract ------------------------------------------------------------------------------------


class TestExtract:
    def test_children_go_under_the_carried_parent(self):
        """Inside extract, emitted events (and their subtrees) hang under the token's event; no Created for it."""
        carrier = {}
        recorder = RecordingHandler()
        with EventBus([recorder], ids=DerivedIds("wf/here")):
            with AlienEvent.BuildingStack(stack="s").in_scope() as root:
                inject(carrier)
            with extract(carrier) as attached:
                with AlienEvent.BuildingImage(image="i").in_scope() as child:
                    leaf = AlienEvent.Finished().emit()
                second = AlienEvent.Finished().emit()
            after = AlienEvent.Finished().emit()

        assert (root.id, root.id, child.id) == (child.parent_id, second.parent_id, leaf.parent_id)
        assert after.parent_id is None
        assert (root.id, None, 1) == (attached.id, attached.parent_id, attached.epoch)
        assert 1 == sum(c.id == root.id for c in created(recorder.changes))
        assert DerivedIds("wf/here").id_for(root.id, "BuildingImage") == child.id

    def test_a_missing_key_keeps_the_current_parent(self):
        """extract of a carrier without the key leaves the current parent (or none) in place."""
        with EventBus():
            with extract({"other": "1-x"}):
                top = AlienEvent.Finished().emit()
            with AlienEvent.BuildingStack(stack="s").in_scope() as root, extract({}):
                inside = AlienEvent.Finished().emit()
                assert root.id == current_event().children_parent_id

        assert top.parent_id is None
        assert root.id == inside.parent_id

    def test_the_previous_parent_comes_back_after_the_scope(self):
        """After extract's scope ends the parent before it is current again."""
        with EventBus(), AlienEvent.BuildingStack(stack="s").in_scope() as root:
            with extract({TOKEN_KEY: "1-remote"}):
                remote = AlienEvent.Finished().emit()
            local = AlienEvent.Finished().emit()

        assert ("remote", root.id) == (remote.parent_id, local.parent_id)

    def test_async_with(self):
        """extract works as an async context manager; aemit inside gets the carried parent."""
        recorder = RecordingHandler()

        async def main():
            async with extract({TOKEN_KEY: format_token("wf 1/root")}) as attached:
                child = await AlienEvent.Finished().aemit()
                task_child = await asyncio.create_task(AlienEvent.Finished().aemit())
            async with extract({}):
                top = await AlienEvent.Finished().aemit()
            return attached, child, task_child, top

        attached, child, task_child, top = asyncio.run(EventBus([recorder]).run(main))

        assert "wf 1/root" == attached.id
        assert ["wf 1/root", "wf 1/root", None] == [
            child.parent_id,
            task_child.parent_id,
            top.parent_id,
        ]
        assert 3 == len(recorder.changes)

    def test_the_extracted_handle_is_an_owner_with_epoch_one(self):
        """The handle extract gives is attached with epoch 1: its own changes outrank the creator's epoch 0."""
        recorder = RecordingHandler()
        with EventBus([recorder]), extract({TOKEN_KEY: "1-e1"}) as attached:
            attached.complete()

        (change,) = recorder.changes
        assert ("e1", (1, 1), EventState.SUCCESS) == (change.id, change.version, change.new_state)


# -- another process ----------------------------------------------------------------------------

CHILD_PROCESS = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from alien_events_api import AlienEvent, EventState, extract
    from alien_events_jsonl import JsonLinesHandler
    from alien_events_sdk import DerivedIds, EventBus

    how, mode, path = sys.argv[1], sys.argv[2], sys.argv[3]
    token = os.environ["ALIEN_TEST_TOKEN"] if how == "env" else sys.argv[4]
    carrier = {"alien-events-parent": token}
    bus = EventBus([JsonLinesHandler(path)], ids=DerivedIds("wf/remote-worker"))

    def sync_main():
        with extract(carrier) as attached:
            with AlienEvent.BuildingImage(image="remote").in_scope():
                AlienEvent.PushingImage(image="remote").emit(EventState.SUCCESS)
            return attached.id

    async def async_main():
        async with extract(carrier) as attached:
            async with AlienEvent.BuildingImage(image="remote").in_scope():
                await AlienEvent.PushingImage(image="remote").aemit(EventState.SUCCESS)
            return attached.id

    if mode == "sync":
        attached_id = bus.run(sync_main)
    else:
        attached_id = asyncio.run(bus.run(async_main))
    bus.close()
    print(json.dumps(attached_id))
    """
)


class TestAnotherProcess:
    @pytest.mark.parametrize(("how", "mode"), [("env", "sync"), ("argv", "async")])
    def test_a_subprocess_re_attaches_from_the_token(self, tmp_path, how, mode):
        """A second process given the token emits children that fold under the right parent in one tree."""
        root_id = "wf/ünï code 100%-done"
        path = tmp_path / "remote.jsonl"
        recorder = RecordingHandler()
        carrier = {}
        with (
            EventBus([recorder]),
            AlienEvent.BuildingStack(stack="app").in_scope(id=root_id) as root,
        ):
            local = AlienEvent.BuildingImage(image="local").emit()
            inject(carrier)
            token = carrier[TOKEN_KEY]
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD_PROCESS,
                    how,
                    mode,
                    str(path),
                    *([token] if how == "argv" else []),
                ],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "ALIEN_TEST_TOKEN": token},
            )
        assert 0 == done.returncode, done.stderr

        remote_changes = list(read_changes(path, strict=True))
        tree = EventTree([*recorder.changes, *remote_changes])
        expected_child = DerivedIds("wf/remote-worker").id_for(root_id, "BuildingImage", 0)

        assert root_id == json.loads(done.stdout)
        assert [root_id] == [node.id for node in tree.roots]
        assert [] == tree.orphans
        assert 4 == len(tree)
        node = tree.get(root_id)
        assert EventState.SUCCESS == node.state
        assert {local.id, expected_child} == {child.id for child in node.children}
        remote = tree.get(expected_child)
        assert (root_id, EventState.SUCCESS) == (remote.parent_id, remote.state)
        assert [AlienEvent.PushingImage(image="remote")] == [c.event for c in remote.children]
        assert root_id not in {c.id for c in created(remote_changes)}
        assert root.id == root_id
