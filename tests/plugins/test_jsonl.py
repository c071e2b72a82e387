"""
The ``jsonl`` handler plugin: every change as one line in a file, and ``read_changes`` to read it.

Everything here runs for real: real files in ``tmp_path``, real threads, real processes
(``sys.executable`` running a small writer script), a real ``SIGKILL``. Where a race has to
be hit at one exact instruction, a profile hook (``sys.setprofile``) runs the competing
writer at that point: nothing is replaced, only scheduled, so the interleaving is certain.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import inspect
import io
import itertools
import json
import os
import random
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alien_events_api import (
    AlienError,
    AlienEventsError,
    AlienEventsWarning,
    Created,
    Event,
    EventHandlerError,
    EventState,
    StateChanged,
    event_type,
)
from alien_events_jsonl import (
    BadLineError,
    BadLineWarning,
    JsonLinesError,
    JsonLinesHandler,
    read_changes,
)
from alien_events_sdk import (
    EventBus,
    EventTree,
    PluginOptionError,
    RecordingHandler,
    dump_change_line,
    installed_plugins,
    loads,
)

T0 = 1_767_225_600_123_456  # 2026-01-01T00:00:00.123456Z: every timestamp has six digits
CHANGES_PER_LIFECYCLE = 5  # scope created, leaf created, leaf updated, leaf done, scope done
FOLLOW_TIMEOUT = 30.0  # the bound on any wait for a follower (never reached when all is well)


@event_type(tag="JsonlTestWork")
class Work(Event):
    """One piece of a writer's work: a lifecycle's scope, its leaf, or the leaf's progress."""

    worker: int
    n: int
    role: str
    blob: str = ""


@event_type(tag="JsonlTestPayload")
class Payload(Event):
    """An event with every kind of field, for the round-trip property."""

    text: str
    number: int
    ratio: float
    tags: list[str]
    labels: dict[str, str]
    note: str | None = None


# -- helpers --------------------------------------------------------------------------------


def created(i, blob=""):
    """A root ``Created`` whose line has the same length for every ``i`` below 10,000."""
    return Created.unchecked(
        f"ev-{i:04d}",
        None,
        T0 + i,
        Work(worker=0, n=0, role=f"fixed-{i:04d}", blob=blob),
        EventState.NONE,
        None,
        0,
    )


LINE = len(dump_change_line(created(0)))


def lifecycle(worker, n, blob=""):
    """A scope (started, then done) holding a leaf that starts, makes progress and completes."""
    scope = Work(worker=worker, n=n, role="scope").emit(EventState.STARTED)
    leaf = Work(worker=worker, n=n, role="leaf", blob=blob).emit(EventState.STARTED, parent=scope)
    leaf.update(Work(worker=worker, n=n, role="progress"))
    leaf.complete()
    scope.complete()


def read_all(path):
    """Every change of a file, strictly: any bad or torn line raises."""
    return list(read_changes(path, strict=True))


def rotated_files(path):
    """The rotated files ``PATH.1``, ``PATH.2``, ... that exist, newest first (by index)."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    found = {}
    for item in path.parent.iterdir():
        match = pattern.fullmatch(item.name)
        if match:
            found[int(match.group(1))] = item
    return [found[index] for index in sorted(found)]


def whole_stream(path):
    """The changes of every file of a rotated path, oldest file first, each read strictly."""
    changes = []
    for item in [*reversed(rotated_files(path)), path]:
        changes.extend(read_all(item))
    return changes


def check_lifecycles(changes, workers, count):
    """
    Check the changes of ``count`` lifecycles per worker.

    Each (id, seq) exactly once, each event's seqs in file order 0, 1, ..., every leaf under
    its own scope, every event done.
    """
    workers = list(workers)
    assert len(workers) * count * CHANGES_PER_LIFECYCLE == len(changes)
    assert {} == {key: n for key, n in Counter((c.id, c.seq) for c in changes).items() if n != 1}
    by_id = {c.id: c for c in changes if isinstance(c, Created)}
    seqs = defaultdict(list)
    for change in changes:
        seqs[change.id].append(change.seq)
    expected_seqs = {
        event_id: [0, 1] if c.event.role == "scope" else [0, 1, 2] for event_id, c in by_id.items()
    }
    assert expected_seqs == dict(seqs)
    keys = {(c.event.worker, c.event.n, c.event.role) for c in by_id.values()}
    assert {(w, n, r) for w in workers for n in range(count) for r in ("scope", "leaf")} == keys
    parents = {
        (c.event.worker, c.event.n): by_id[c.parent_id].event
        for c in by_id.values()
        if c.event.role == "leaf"
    }
    assert {(w, n): (w, n, "scope") for w in workers for n in range(count)} == {
        key: (p.worker, p.n, p.role) for key, p in parents.items()
    }
    finals = {c.id: c.new_state for c in changes if isinstance(c, StateChanged)}
    assert dict.fromkeys(by_id, EventState.SUCCESS) == finals


@contextlib.contextmanager
def before_c_call(function, action):
    """
    Run ``action`` once, in this thread, just before the next call of the C ``function``.

    A profile hook, so the interleaving is exact; the hook is removed on exit. Yields a list
    that holds ``True`` once ``action`` ran.
    """
    ran = []

    def hook(frame, event, arg):
        if event == "c_call" and arg is function and not ran:
            ran.append(True)
            action()

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        yield ran
    finally:
        sys.setprofile(previous)


def pipe_bytes(fd):
    """How many bytes wait in a pipe (``FIONREAD``)."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


# -- a writer in another process ---------------------------------------------------------------

WRITER = r"""
import json
import sys

from alien_events_api import Event, EventState, event_type
from alien_events_sdk import EventBus
from alien_events_jsonl import JsonLinesHandler


@event_type(tag="JsonlTestWork")
class Work(Event):
    worker: int
    n: int
    role: str
    blob: str = ""


config = json.loads(sys.argv[1])
handler = JsonLinesHandler(
    config["path"], max_bytes=config["max_bytes"], backups=config["backups"], fsync=config["fsync"]
)
out = sys.stdout
report = config["report"]


def returned(handle, seq):
    # Only once the call returned: a reported change must be in the file.
    if report:
        out.write(f"{handle.id} {seq}\n")
        out.flush()


out.write("ready\n")
out.flush()
sys.stdin.readline()
worker, count, big_every = config["worker"], config["count"], config["big_every"]
with EventBus([handler]):
    n = 0
    while count < 0 or n < count:
        blob = "x" * config["big"] if big_every and n % big_every == big_every - 1 else ""
        scope = Work(worker=worker, n=n, role="scope").emit(EventState.STARTED)
        returned(scope, 0)
        leaf = Work(worker=worker, n=n, role="leaf", blob=blob).emit(EventState.STARTED, parent=scope)
        returned(leaf, 0)
        leaf.update(Work(worker=worker, n=n, role="progress"))
        returned(leaf, 1)
        leaf.complete()
        returned(leaf, 2)
        scope.complete()
        returned(scope, 1)
        n += 1
handler.close()
"""


def start_writer(
    path,
    *,
    worker=0,
    count,
    big_every=0,
    big=65_536,
    max_bytes=0,
    backups=5,
    fsync=False,
    report=False,
):
    """Start a writer process (use it in ``with``); it waits for ``go`` before emitting."""
    config = {
        "path": str(path),
        "worker": worker,
        "count": count,
        "big_every": big_every,
        "big": big,
        "max_bytes": max_bytes,
        "backups": backups,
        "fsync": fsync,
        "report": report,
    }
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def go(*procs):
    """Wait until every writer is ready (imported, file open), then let them all start."""
    for proc in procs:
        line = proc.stdout.readline()
        assert "ready\n" == line, proc.stderr.read()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()


def finish(proc):
    """Wait for a writer to end and check that it succeeded."""
    _, err = proc.communicate(timeout=120)
    assert 0 == proc.returncode, err


# -- writing ----------------------------------------------------------------------------------


class TestWriting:
    def test_each_change_is_one_line_of_the_wire_format(self, tmp_path, recorder):
        """Each change becomes exactly its ``dump_change_line`` line, in delivery order."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        with EventBus([handler, recorder]):
            lifecycle(0, 0)
            Work(worker=0, n=1, role="failed").emit().fail(AlienError(code="BOOM", message="no"))
        handler.close()
        assert b"".join(dump_change_line(c) for c in recorder.changes) == path.read_bytes()
        assert recorder.changes == read_all(path)

    def test_the_line_is_in_the_file_before_the_emitting_call_returns(self, tmp_path, recorder):
        """Right after emit, update and complete return, another descriptor reads their line."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        seen = []
        with open(path, "rb") as other, EventBus([recorder, handler]):  # noqa: PTH123
            handle = Work(worker=0, n=0, role="leaf").emit(EventState.STARTED)
            seen.append(other.read())
            handle.update(Work(worker=0, n=0, role="progress"))
            seen.append(other.read())
            handle.complete()
            seen.append(other.read())
        handler.close()
        assert [dump_change_line(c) for c in recorder.changes] == seen

    def test_an_existing_file_is_appended_to_not_truncated(self, tmp_path):
        """A second handler on the same path keeps the first one's lines and adds its own."""
        path = tmp_path / "events.jsonl"
        first = JsonLinesHandler(path)
        first.on_event_change(created(0))
        first.close()
        second = JsonLinesHandler(path)
        second.on_event_change(created(1))
        second.close()
        assert [created(0), created(1)] == read_all(path)

    def test_a_new_file_is_created_readable_by_others(self, tmp_path):
        """A missing file is created with mode 0o644 (before the umask)."""
        path = tmp_path / "events.jsonl"
        old_umask = os.umask(0o022)
        try:
            JsonLinesHandler(path).close()
        finally:
            os.umask(old_umask)
        assert 0o644 == path.stat().st_mode & 0o777

    @settings(max_examples=40, deadline=None)
    @given(
        programs=st.lists(
            st.tuples(
                st.builds(
                    Payload,
                    text=st.text(),
                    number=st.integers(-(2**63), 2**63 - 1),
                    ratio=st.floats(allow_nan=False, allow_infinity=False),
                    tags=st.lists(st.text(max_size=5), max_size=3),
                    labels=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
                    note=st.none() | st.text(max_size=10),
                ),
                st.lists(st.integers(0, 2**31), max_size=3),
                st.booleans(),
                st.sampled_from(["complete", "fail", "open"]),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def test_any_lifecycles_with_any_payloads_round_trip_through_the_file(
        self, tmp_path_factory, programs
    ):
        """Whatever the events hold (newlines, any unicode), the file reads back as the changes."""
        path = tmp_path_factory.mktemp("roundtrip") / "events.jsonl"
        handler = JsonLinesHandler(path)
        recorder = RecordingHandler()
        with EventBus([handler, recorder]):
            for payload, updates, with_child, ending in programs:
                handle = payload.emit(EventState.STARTED)
                if with_child:
                    Payload(text="child", number=0, ratio=0.0, tags=[], labels={}).emit(
                        parent=handle
                    )
                for number in updates:
                    handle.update(
                        Payload(text=payload.text, number=number, ratio=1.5, tags=[], labels={})
                    )
                if ending == "complete":
                    handle.complete()
                elif ending == "fail":
                    handle.fail(AlienError(code="BOOM", message="broken", context={"t": 1}))
        handler.close()
        text = path.read_bytes()
        assert len(recorder.changes) == text.count(b"\n")
        assert recorder.changes == read_all(path)
        assert EventTree(recorder.changes) == EventTree(read_changes(path))


class TestShortWrites:
    @pytest.mark.parametrize("options", [{}, {"max_bytes": 1 << 30}], ids=["plain", "rotating"])
    def test_a_write_cut_short_by_a_signal_still_puts_the_whole_line_out(self, tmp_path, options):
        """A 1 MiB line whose write a signal cuts short (a full pipe) is finished: the reader gets it whole."""
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        change = created(0, blob="x" * (1 << 20))
        line = dump_change_line(change)
        received = bytearray()
        signals = []
        writer = threading.get_ident()

        def interrupt_the_blocked_write_then_drain():
            capacity = fcntl.fcntl(reader, fcntl.F_GETPIPE_SZ)
            deadline = time.monotonic() + FOLLOW_TIMEOUT
            while pipe_bytes(reader) < capacity and time.monotonic() < deadline:
                time.sleep(0.001)  # the writer fills the pipe, then blocks in write()
            signal.pthread_kill(writer, signal.SIGUSR1)  # write() returns what it wrote so far
            while len(received) < len(line) and time.monotonic() < deadline:
                readable, _, _ = select.select([reader], [], [], 0.05)
                if readable:
                    received.extend(os.read(reader, 1 << 16))

        previous = signal.signal(signal.SIGUSR1, lambda signum, frame: signals.append(signum))
        try:
            handler = JsonLinesHandler(fifo, **options)
            drainer = threading.Thread(target=interrupt_the_blocked_write_then_drain)
            drainer.start()
            handler.on_event_change(change)
            drainer.join()
            handler.close()
        finally:
            signal.signal(signal.SIGUSR1, previous)
            os.close(reader)
        assert [signal.SIGUSR1] == signals
        assert line == bytes(received)


# -- fsync ------------------------------------------------------------------------------------


class TestFsync:
    def test_with_fsync_every_line_is_in_the_file_after_close(self, tmp_path, recorder):
        """fsync=True writes every change; after close the file holds them all, in order."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, fsync=True)
        with EventBus([handler, recorder]):
            for n in range(20):
                lifecycle(0, n)
        handler.close()
        assert recorder.changes == read_all(path)
        check_lifecycles(read_all(path), [0], 20)

    def test_with_fsync_and_rotation_no_line_is_lost(self, tmp_path, recorder):
        """fsync=True together with rotation keeps every line, across the rotated files."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, fsync=True, max_bytes=2048, backups=100)
        with EventBus([handler, recorder]):
            for n in range(30):
                lifecycle(0, n)
        handler.close()
        assert rotated_files(path)
        assert recorder.changes == whole_stream(path)

    def test_fsync_runs_after_each_write_and_its_failure_fails_the_emit(self, tmp_path):
        """On a FIFO (which cannot be fsynced) fsync=True makes emit fail after the line went out."""
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            handler = JsonLinesHandler(fifo, fsync=True)
            with EventBus([handler]), pytest.raises(EventHandlerError) as info:
                Work(worker=0, n=0, role="leaf").emit()
            written = os.read(reader, 65_536)
            handler.close()  # the final fsync fails too, and close does not mind
        finally:
            os.close(reader)
        assert [OSError] == [type(e) for e in info.value.errors]
        assert 22 == info.value.errors[0].errno  # EINVAL: a pipe has no disk to sync to
        assert info.value.handle.id == loads(written).id

    def test_without_fsync_the_same_fifo_takes_changes(self, tmp_path):
        """fsync=False (the default) never syncs: the FIFO that refuses fsync takes every line."""
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            handler = JsonLinesHandler(fifo)
            with EventBus([handler]):
                handle = Work(worker=0, n=0, role="leaf").emit()
                handle.complete()
            written = os.read(reader, 65_536)
            handler.close()
        finally:
            os.close(reader)
        assert [handle.id, handle.id] == [loads(line).id for line in written.splitlines()]


# -- threads ----------------------------------------------------------------------------------


@pytest.fixture
def _switch_threads_often():
    """Make the interpreter switch threads very often, so that threads really interleave."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


@pytest.mark.usefixtures("_switch_threads_often")
class TestThreads:
    THREADS = 8
    LIFECYCLES = 2_000

    def test_many_threads_write_every_change_exactly_once_as_whole_lines(self, tmp_path):
        """8 threads x 2,000 lifecycles on one handler: every line parses, each (id, seq) once."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        bus = EventBus([handler])
        barrier = threading.Barrier(self.THREADS)
        errors = []

        def work(worker):
            barrier.wait()
            try:
                with bus:
                    for n in range(self.LIFECYCLES):
                        lifecycle(worker, n)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(self.THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        handler.close()
        assert [] == errors
        changes = read_all(path)
        check_lifecycles(changes, range(self.THREADS), self.LIFECYCLES)
        workers = [c.event.worker for c in changes if isinstance(c, Created)]
        assert sum(a != b for a, b in itertools.pairwise(workers)) > self.THREADS

    def test_a_rotation_by_another_thread_never_loses_the_line_being_written(self, tmp_path):
        """A thread rotating the file while another is about to write costs that write nothing."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=2 * LINE, backups=10)
        bus = EventBus([handler])
        bus.publish(created(0))
        other = threading.Thread(
            target=lambda: [handler.on_event_change(created(i)) for i in (2, 3)]
        )

        def rotate_in_another_thread():
            other.start()
            other.join(timeout=1.0)  # a handler that holds a lock over the write blocks it

        ran = []
        try:
            with before_c_call(os.write, rotate_in_another_thread) as ran:
                bus.publish(created(1))
        finally:
            if ran:
                other.join()
        assert [True] == ran
        assert [created(i) for i in range(4)] == sorted(whole_stream(path), key=lambda c: c.id)


# -- processes --------------------------------------------------------------------------------


class TestProcesses:
    @pytest.mark.slow
    def test_processes_appending_to_one_file_never_interleave_or_tear_lines(self, tmp_path):
        """4 processes x 5,000 lifecycles (some lines 64 KiB) on one file: all whole, counts exact."""
        path = tmp_path / "events.jsonl"
        count = 5_000
        procs = [
            start_writer(path, worker=w, count=count, big_every=100, big=65_536) for w in range(4)
        ]
        with contextlib.ExitStack() as stack:
            for proc in procs:
                stack.enter_context(proc)
            go(*procs)
            for proc in procs:
                finish(proc)
        data = path.read_bytes()
        assert data.endswith(b"\n")
        changes = read_all(path)
        check_lifecycles(changes, range(4), count)
        assert 4 * (count // 100) == sum(
            len(c.event.blob) == 65_536 for c in changes if isinstance(c, Created)
        )
        workers = [c.event.worker for c in changes if isinstance(c, Created)]
        assert sum(a != b for a, b in itertools.pairwise(workers)) > 4


# -- rotation ---------------------------------------------------------------------------------


class TestRotation:
    def test_rotated_files_hold_the_whole_stream_in_order_with_the_newest_in_path(
        self, tmp_path, recorder
    ):
        """PATH.N ... PATH.1 then PATH, read in turn, give back every change in order."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=2048, backups=200)
        with EventBus([handler, recorder]):
            for n in range(200):
                lifecycle(0, n)
        handler.close()
        rotated = rotated_files(path)
        assert len(rotated) > 10
        assert [f"{path.name}.{i}" for i in range(1, len(rotated) + 1)] == [f.name for f in rotated]
        assert recorder.changes == whole_stream(path)
        assert recorder.changes[-1] == read_all(path)[-1]

    def test_no_file_grows_past_max_bytes(self, tmp_path):
        """Every file, rotated or current, stays within max_bytes when each line fits."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=1000, backups=500)
        with EventBus([handler]):
            for n in range(100):
                lifecycle(0, n)
        handler.close()
        sizes = {f.name: f.stat().st_size for f in [*rotated_files(path), path]}
        assert {} == {name: size for name, size in sizes.items() if size > 1000}

    def test_at_most_backups_files_are_kept_and_they_hold_the_newest_changes(
        self, tmp_path, recorder
    ):
        """With backups=3 only PATH.1..PATH.3 exist, and with PATH they are the stream's tail."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=1024, backups=3)
        with EventBus([handler, recorder]):
            for n in range(100):
                lifecycle(0, n)
        handler.close()
        assert [f"{path.name}.{i}" for i in (1, 2, 3)] == [f.name for f in rotated_files(path)]
        kept = whole_stream(path)
        assert 0 < len(kept) < len(recorder.changes)
        assert recorder.changes[-len(kept) :] == kept

    def test_a_line_bigger_than_max_bytes_is_written_whole_in_a_file_of_its_own(self, tmp_path):
        """A change larger than max_bytes is not split nor dropped: it gets a file to itself."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=512, backups=5)
        big = created(1, blob="b" * 4096)
        for change in (created(0), big, created(2)):
            handler.on_event_change(change)
        handler.close()
        assert [[created(0)], [big], [created(2)]] == [
            read_all(f) for f in [*reversed(rotated_files(path)), path]
        ]

    def test_rotation_is_off_by_default(self, tmp_path):
        """max_bytes=0 (the default) never rotates, however much is written."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        for i in range(2000):
            handler.on_event_change(created(i))
        handler.close()
        assert [] == rotated_files(path)
        assert 2000 == len(read_all(path))

    @pytest.mark.slow
    def test_two_processes_rotating_the_same_path_lose_no_line(self, tmp_path):
        """Two processes sharing a rotating path: across all files every line is whole and there."""
        path = tmp_path / "events.jsonl"
        count = 1_500
        backups = 500
        procs = [
            start_writer(path, worker=w, count=count, max_bytes=32_768, backups=backups)
            for w in range(2)
        ]
        with contextlib.ExitStack() as stack:
            for proc in procs:
                stack.enter_context(proc)
            go(*procs)
            for proc in procs:
                finish(proc)
        rotated = rotated_files(path)
        assert 10 < len(rotated) <= backups
        assert [f"{path.name}.{i}" for i in range(1, len(rotated) + 1)] == [f.name for f in rotated]
        check_lifecycles(whole_stream(path), range(2), count)


class TestRotationByOthers:
    def test_a_rotating_handler_whose_file_was_deleted_starts_a_new_one(self, tmp_path):
        """If the file is deleted under a rotating handler, its next change starts a new file at the path."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=100 * LINE)
        handler.on_event_change(created(0))
        path.unlink()
        handler.on_event_change(created(1))
        handler.close()
        assert ([created(1)], []) == (read_all(path), rotated_files(path))

    def test_a_handler_follows_a_rotation_made_by_another_handler(self, tmp_path):
        """Of two rotating handlers on one path, the one that did not rotate writes on into the new file."""
        path = tmp_path / "events.jsonl"
        first = JsonLinesHandler(path, max_bytes=2 * LINE, backups=5)
        second = JsonLinesHandler(path, max_bytes=2 * LINE, backups=5)
        first.on_event_change(created(0))
        second.on_event_change(created(1))
        first.on_event_change(created(2))  # rotates
        second.on_event_change(created(3))
        first.close()
        second.close()
        assert [[created(0), created(1)], [created(2), created(3)]] == [
            read_all(item) for item in [*rotated_files(path), path]
        ]

    def test_a_rotation_done_while_waiting_for_the_lock_is_not_done_again(self, tmp_path):
        """A handler that finds the file already rotated once it holds the lock only reopens: nothing moves twice."""
        path = tmp_path / "events.jsonl"
        first = JsonLinesHandler(path, max_bytes=2 * LINE, backups=5)
        second = JsonLinesHandler(path, max_bytes=2 * LINE, backups=5)
        first.on_event_change(created(0))
        second.on_event_change(created(1))
        with before_c_call(fcntl.flock, lambda: first.on_event_change(created(3))) as ran:
            second.on_event_change(created(2))  # about to rotate: the first handler rotates first
        first.close()
        second.close()
        assert [True] == ran
        assert [[created(0), created(1)], [created(3), created(2)]] == [
            read_all(item) for item in [*rotated_files(path), path]
        ]


# -- reading ----------------------------------------------------------------------------------


def write_lines(path, *parts):
    """Write raw bytes to a file, as a writer (or a crash) would have left it."""
    path.write_bytes(b"".join(parts))


class TestReadChanges:
    def test_a_file_reads_back_as_its_changes_in_file_order(self, tmp_path, recorder):
        """read_changes yields the changes of a file, in file order, equal to those emitted."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        with EventBus([handler, recorder]):
            for n in range(10):
                lifecycle(0, n)
        handler.close()
        assert recorder.changes == list(read_changes(path))
        assert recorder.changes == list(read_changes(str(path)))

    def test_an_empty_file_has_no_changes(self, tmp_path):
        """An empty file reads as no changes and no error."""
        path = tmp_path / "events.jsonl"
        path.touch()
        assert [] == list(read_changes(path, strict=True))

    def test_a_missing_file_raises_file_not_found(self, tmp_path):
        """Reading a path that does not exist raises FileNotFoundError."""
        with pytest.raises(FileNotFoundError):
            list(read_changes(tmp_path / "missing.jsonl"))

    def test_blank_lines_are_skipped_without_complaint(self, tmp_path):
        """Empty and whitespace-only lines are skipped, even in strict mode."""
        path = tmp_path / "events.jsonl"
        write_lines(
            path, b"\n", dump_change_line(created(0)), b"  \n", dump_change_line(created(1))
        )
        assert [created(0), created(1)] == list(read_changes(path, strict=True))

    def test_feeding_the_file_to_an_event_tree_gives_the_tree_of_the_run(self, tmp_path):
        """EventTree(read_changes(path)) equals the tree that watched the same run live."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        live = EventTree()
        with EventBus([handler, live]):
            for n in range(5):
                lifecycle(0, n)
            Work(worker=0, n=99, role="open").emit(EventState.STARTED)
        handler.close()
        tree = EventTree(read_changes(path))
        assert live == tree
        assert 11 == len(tree)
        assert [EventState.SUCCESS] * 5 + [EventState.STARTED] == [r.state for r in tree.roots]

    def test_a_torn_last_line_is_skipped_silently_without_on_error(self, tmp_path):
        """A last line with no newline (a writer died mid-line) is skipped, with no warning."""
        path = tmp_path / "events.jsonl"
        write_lines(path, dump_change_line(created(0)), dump_change_line(created(1))[:50])
        assert [created(0)] == list(read_changes(path))

    def test_a_torn_last_line_is_reported_to_on_error(self, tmp_path):
        """on_error gets a torn BadLineError for the last line, with its line number."""
        path = tmp_path / "events.jsonl"
        write_lines(path, dump_change_line(created(0)), dump_change_line(created(1))[:50])
        errors = []
        assert [created(0)] == list(read_changes(path, on_error=errors.append))
        assert [(str(path), 2, True)] == [(e.path, e.line_number, e.torn) for e in errors]

    def test_a_complete_last_line_without_its_newline_is_still_torn(self, tmp_path):
        """Valid JSON with no newline is still a line the writer did not finish: not yielded."""
        path = tmp_path / "events.jsonl"
        write_lines(path, dump_change_line(created(0)), dump_change_line(created(1))[:-1])
        errors = []
        assert [created(0)] == list(read_changes(path, on_error=errors.append))
        assert [(2, True)] == [(e.line_number, e.torn) for e in errors]

    def test_strict_mode_raises_on_a_torn_last_line_with_its_line_number(self, tmp_path):
        """strict=True raises BadLineError (torn, line 3) after yielding the whole lines."""
        path = tmp_path / "events.jsonl"
        write_lines(
            path,
            dump_change_line(created(0)),
            dump_change_line(created(1)),
            dump_change_line(created(2))[:30],
        )
        got = []
        with pytest.raises(BadLineError) as info:
            got.extend(read_changes(path, strict=True))
        assert [created(0), created(1)] == got
        assert (str(path), 3, True) == (info.value.path, info.value.line_number, info.value.torn)
        assert f"{path}:3: torn last line" in str(info.value)

    def test_a_corrupt_middle_line_warns_and_is_skipped(self, tmp_path):
        """A bad complete line in the middle warns BadLineWarning (naming line 2) and is skipped."""
        path = tmp_path / "events.jsonl"
        write_lines(
            path, dump_change_line(created(0)), b"{not json\n", dump_change_line(created(2))
        )
        with pytest.warns(BadLineWarning, match=re.escape(f"{path}:2: bad line")):
            got = list(read_changes(path))
        assert [created(0), created(2)] == got

    def test_a_corrupt_middle_line_goes_to_on_error_instead_of_a_warning(self, tmp_path):
        """With on_error, a bad line is reported there (not torn, its number) and not warned."""
        path = tmp_path / "events.jsonl"
        bad_change = b'{"type":"created","id":"x"}\n'
        write_lines(
            path,
            dump_change_line(created(0)),
            b"[1, 2]\n",
            bad_change,
            dump_change_line(created(3)),
        )
        errors = []
        assert [created(0), created(3)] == list(read_changes(path, on_error=errors.append))
        assert [(2, False), (3, False)] == [(e.line_number, e.torn) for e in errors]
        assert "createdAt: required field is missing" == errors[1].reason

    def test_strict_mode_raises_on_a_corrupt_middle_line_with_its_line_number(self, tmp_path):
        """strict=True raises BadLineError (not torn, line 2) at the first bad line."""
        path = tmp_path / "events.jsonl"
        write_lines(path, dump_change_line(created(0)), b"\xff\xfe\n", dump_change_line(created(2)))
        with pytest.raises(BadLineError) as info:
            list(read_changes(path, strict=True))
        assert (2, False) == (info.value.line_number, info.value.torn)

    def test_bad_line_errors_belong_to_the_project_tree_and_are_value_errors(self):
        """BadLineError is a JsonLinesError, an AlienEventsError and a ValueError."""
        error = BadLineError("p", 7, "why")
        assert isinstance(error, JsonLinesError)
        assert isinstance(error, AlienEventsError)
        assert isinstance(error, ValueError)
        assert issubclass(BadLineWarning, AlienEventsWarning)
        assert ("p:7: bad line: why", False) == (str(error), error.torn)

    def test_follow_stops_after_idle_timeout_with_nothing_new(self, tmp_path):
        """follow=True with idle_timeout returns the file's changes, then ends when nothing comes."""
        path = tmp_path / "events.jsonl"
        write_lines(path, dump_change_line(created(0)), dump_change_line(created(1)))
        got = list(read_changes(path, follow=True, idle_timeout=0.2, poll_interval=0.01))
        assert [created(0), created(1)] == got

    def test_follow_reads_what_another_thread_appends(self, tmp_path):
        """A follower sees each change another thread appends, including after it waited at EOF."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        waiting = threading.Event()

        def writer():
            for i in range(200):
                if i % 50 == 0:
                    waiting.wait(FOLLOW_TIMEOUT)
                    waiting.clear()
                handler.on_event_change(created(i))

        thread = threading.Thread(target=writer)
        thread.start()
        got = []
        reader = read_changes(path, follow=True, idle_timeout=FOLLOW_TIMEOUT, poll_interval=0.001)
        try:
            with before_c_call(time.sleep, waiting.set):
                got.append(next(reader))
            for change in reader:
                got.append(change)
                if len(got) == 200:
                    break
                if len(got) % 50 == 0:  # at EOF now: let the writer go only once we sleep
                    with before_c_call(time.sleep, waiting.set):
                        got.append(next(reader))
        finally:
            reader.close()
            waiting.set()
            thread.join()
            handler.close()
        assert [created(i) for i in range(200)] == got

    @pytest.mark.slow
    def test_follow_reads_what_another_process_appends(self, tmp_path):
        """A follower reading while another process writes 2,000 lifecycles gets every change."""
        path = tmp_path / "events.jsonl"
        path.touch()
        count = 2_000
        got = []
        with start_writer(path, count=count) as proc:
            go(proc)
            reader = read_changes(path, follow=True, idle_timeout=FOLLOW_TIMEOUT)
            try:
                for change in reader:
                    got.append(change)
                    if len(got) == count * CHANGES_PER_LIFECYCLE:
                        break
            finally:
                reader.close()
            finish(proc)
        check_lifecycles(got, [0], count)
        assert read_all(path) == got

    def test_follow_yields_a_torn_line_once_its_writer_completes_it(self, tmp_path):
        """In follow mode a line without its newline yet is waited for, then yielded whole."""
        path = tmp_path / "events.jsonl"
        line = dump_change_line(created(1))
        write_lines(path, dump_change_line(created(0)), line[:40])
        polling = threading.Event()

        def complete_the_line():
            polling.wait(FOLLOW_TIMEOUT)
            with open(path, "ab") as file:  # noqa: PTH123
                file.write(line[40:])

        thread = threading.Thread(target=complete_the_line)
        thread.start()
        errors = []
        reader = read_changes(
            path,
            follow=True,
            idle_timeout=FOLLOW_TIMEOUT,
            poll_interval=0.001,
            on_error=errors.append,
        )
        try:
            first = next(reader)
            with before_c_call(time.sleep, polling.set):  # the fragment was read: now complete it
                second = next(reader)
        finally:
            reader.close()
            polling.set()
            thread.join()
        assert [created(0), created(1)] == [first, second]
        assert [] == errors

    def test_follow_goes_on_into_the_new_file_after_each_rotation(self, tmp_path):
        """A follower keeps up across many rotations, reading every change once, in order."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=3 * LINE, backups=100)
        handler.on_event_change(created(0))
        reader = read_changes(path, follow=True, idle_timeout=FOLLOW_TIMEOUT, poll_interval=0.001)
        got = []
        try:
            got.append(next(reader))
            for i in range(1, 40):
                handler.on_event_change(created(i))  # rotates at every third change
                got.append(next(reader))
        finally:
            reader.close()
            handler.close()
        assert len(rotated_files(path)) > 10
        assert [created(i) for i in range(40)] == got

    def test_follow_reads_the_old_file_to_its_end_before_moving_to_the_new_one(self, tmp_path):
        """A line appended to the old file just before a rotation is still yielded by the follower."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=2 * LINE, backups=10)
        handler.on_event_change(created(0))
        reader = read_changes(path, follow=True, idle_timeout=0.5, poll_interval=0.01)
        got = []

        def append_then_rotate():  # between the follower's read at EOF and its stat of the path
            handler.on_event_change(created(1))  # the old file
            handler.on_event_change(created(2))  # rotates: the new file

        try:
            got.append(next(reader))
            with before_c_call(os.stat, append_then_rotate) as ran:
                for change in reader:
                    got.append(change)
                    if len(got) == 3:
                        break
        finally:
            reader.close()
            handler.close()
        assert [True] == ran
        assert [created(0), created(1), created(2)] == got

    def test_follow_never_yields_a_change_twice_when_rotations_race_its_reopen(self, tmp_path):
        """A rotation between the follower's stat and its open does not make it read a file twice."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=LINE, backups=10)  # one line per file
        handler.on_event_change(created(0))
        reader = read_changes(path, follow=True, idle_timeout=0.5, poll_interval=0.01)
        got = []
        try:
            got.append(next(reader))
            handler.on_event_change(created(1))  # rotates
            with before_c_call(io.open, lambda: handler.on_event_change(created(2))) as ran:
                got.extend(reader)
        finally:
            reader.close()
            handler.close()
        assert [True] == ran
        assert {} == {i: n for i, n in Counter(c.id for c in got).items() if n > 1}
        assert created(2) == got[-1]


class TestFollowDeleted:
    def test_follow_reads_a_deleted_file_to_its_end_then_times_out(self, tmp_path):
        """A followed file deleted with no new one at its path is read on (a writer may still append), then idles out."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        handler.on_event_change(created(0))
        reader = read_changes(path, follow=True, idle_timeout=0.2, poll_interval=0.01, strict=True)
        try:
            first = next(reader)
            path.unlink()
            handler.on_event_change(created(1))  # still written to the open, deleted file
            rest = list(reader)
        finally:
            reader.close()
            handler.close()
        assert [created(0), created(1)] == [first, *rest]


# -- crashes ----------------------------------------------------------------------------------


class TestCrash:
    @pytest.mark.slow
    @pytest.mark.parametrize("seed", range(6))
    def test_sigkill_at_a_random_moment_loses_no_change_whose_emit_returned(self, tmp_path, seed):
        """Killed mid-stream, the writer's file holds every reported change and reads back cleanly."""
        rng = random.Random(seed)  # noqa: S311  (a seeded kill moment, not a secret)
        path = tmp_path / "events.jsonl"
        kill_after = rng.randint(1, 5_000)
        reported = []
        enough = threading.Event()

        def drain(stdout):  # keep the pipe empty, so the writer never waits on it
            for line in stdout:
                reported.append(line)
                if len(reported) >= kill_after:
                    enough.set()
            enough.set()

        with start_writer(path, count=-1, big_every=7, big=32_768, report=True) as proc:
            go(proc)
            drainer = threading.Thread(target=drain, args=(proc.stdout,))
            drainer.start()
            enough.wait(FOLLOW_TIMEOUT)
            proc.kill()  # SIGKILL, while the writer is busy emitting
            drainer.join()
            proc.wait(timeout=60)
        assert -signal.SIGKILL == proc.returncode
        returned = {
            (event_id, int(seq))
            for event_id, seq in (line.split() for line in reported if line.endswith("\n"))
        }
        assert len(returned) >= kill_after
        errors = []
        changes = list(read_changes(path, on_error=errors.append))
        written = {(c.id, c.seq) for c in changes}
        assert set() == returned - written
        assert len(changes) == len(written)
        seqs = defaultdict(list)
        for change in changes:
            seqs[change.id].append(change.seq)
        assert {i: list(range(len(s))) for i, s in seqs.items()} == dict(seqs)
        data = path.read_bytes()
        whole_lines = data.count(b"\n")
        assert whole_lines == len(changes)
        if data.endswith(b"\n"):
            assert [] == errors
            assert changes == read_all(path)
        else:
            assert [(whole_lines + 1, True)] == [(e.line_number, e.torn) for e in errors]
            with pytest.raises(BadLineError) as info:
                read_all(path)
            assert (whole_lines + 1, True) == (info.value.line_number, info.value.torn)

    def test_a_handler_reopening_a_file_with_a_torn_last_line_starts_a_new_line(self, tmp_path):
        """After a crash left a torn line, the next run's first change is still read back."""
        path = tmp_path / "events.jsonl"
        write_lines(path, dump_change_line(created(0)), dump_change_line(created(1))[:50])
        handler = JsonLinesHandler(path)
        handler.on_event_change(created(2))
        handler.close()
        errors = []
        assert [created(0), created(2)] == list(read_changes(path, on_error=errors.append))
        assert [(2, False)] == [(e.line_number, e.torn) for e in errors]


# -- closing ----------------------------------------------------------------------------------


class TestClosing:
    def test_an_emit_after_close_raises_event_handler_error(self, tmp_path):
        """A change after close fails the emit with EventHandlerError naming the closed file."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        bus = EventBus([handler])
        handler.close()
        with bus, pytest.raises(EventHandlerError) as info:
            Work(worker=0, n=0, role="late").emit()
        assert [RuntimeError] == [type(e) for e in info.value.errors]
        assert f"the JSON-lines handler for {path} is closed" == str(info.value.errors[0])
        assert info.value.handle is not None
        assert b"" == path.read_bytes()

    def test_an_emit_after_close_raises_with_rotation_on_too(self, tmp_path):
        """With max_bytes set, a change after close still fails the emit (and rotates nothing)."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path, max_bytes=LINE, backups=2)
        handler.on_event_change(created(0))
        handler.close()
        with EventBus([handler]), pytest.raises(EventHandlerError):
            Work(worker=0, n=0, role="late").emit()
        assert [] == rotated_files(path)
        assert [created(0)] == read_all(path)

    def test_close_is_idempotent(self, tmp_path):
        """Closing twice (also with fsync) is fine and leaves the file as it was."""
        path = tmp_path / "events.jsonl"
        for fsync in (False, True):
            handler = JsonLinesHandler(path, fsync=fsync)
            handler.on_event_change(created(0))
            handler.close()
            handler.close()
        assert [created(0), created(0)] == read_all(path)

    def test_bus_close_closes_the_jsonl_handler(self, tmp_path):
        """EventBus.close closes the handler: the lines stay, later emits fail."""
        path = tmp_path / "events.jsonl"
        bus = EventBus.from_plugins(["jsonl"], jsonl={"path": path})
        with bus:
            lifecycle(0, 0)
        bus.close()
        bus.close()
        with bus, pytest.raises(EventHandlerError):
            lifecycle(0, 1)
        check_lifecycles(read_all(path), [0], 1)

    def test_repr_names_the_path(self, tmp_path):
        """repr shows the handler's path."""
        path = tmp_path / "events.jsonl"
        handler = JsonLinesHandler(path)
        handler.close()
        assert f"JsonLinesHandler({str(path)!r})" == repr(handler)


# -- the plugin -------------------------------------------------------------------------------


class TestPluginSelection:
    def test_the_jsonl_plugin_is_installed_from_its_distribution(self):
        """Discovery finds the jsonl handler, given by the alien-events-jsonl distribution."""
        plugins = installed_plugins()
        assert "jsonl" in plugins.factories
        assert {("alien-events-jsonl", ("jsonl",))} == {
            (p.distribution, p.handlers) for p in plugins.plugins if p.entry_point == "jsonl"
        }

    def test_from_plugins_builds_a_jsonl_handler_writing_to_the_path(self, tmp_path):
        """EventBus.from_plugins(["jsonl"], jsonl={"path": ...}) writes every change there."""
        path = tmp_path / "events.jsonl"
        bus = EventBus.from_plugins(["jsonl"], jsonl={"path": str(path)})
        assert [JsonLinesHandler] == [type(h) for h in bus.handlers]
        assert path == bus.handlers[0].path
        with bus:
            lifecycle(0, 0)
        bus.close()
        check_lifecycles(read_all(path), [0], 1)

    def test_from_plugins_passes_rotation_and_fsync_options(self, tmp_path):
        """from_plugins hands max_bytes, backups and fsync to the handler: it rotates and keeps 2."""
        path = tmp_path / "events.jsonl"
        bus = EventBus.from_plugins(
            ["jsonl"], jsonl={"path": path, "fsync": True, "max_bytes": 600, "backups": 2}
        )
        with bus:
            for n in range(20):
                lifecycle(0, n)
        bus.close()
        assert [f"{path.name}.1", f"{path.name}.2"] == [f.name for f in rotated_files(path)]
        assert all(f.stat().st_size <= 600 for f in [*rotated_files(path), path])

    def test_from_plugins_fsync_option_reaches_the_handler(self, tmp_path):
        """fsync=True given through from_plugins really syncs: on a FIFO the emit fails (EINVAL)."""
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            bus = EventBus.from_plugins(["jsonl"], jsonl={"path": fifo, "fsync": True})
            with bus, pytest.raises(EventHandlerError) as info:
                Work(worker=0, n=0, role="leaf").emit()
            bus.close()
        finally:
            os.close(reader)
        assert 22 == info.value.errors[0].errno

    def test_from_env_builds_a_jsonl_handler_with_fsync(self, tmp_path):
        """ALIEN_EVENTS_HANDLERS=jsonl with _PATH and _FSYNC=1 gives a working fsyncing handler."""
        path = tmp_path / "events.jsonl"
        bus = EventBus.from_env(
            {
                "ALIEN_EVENTS_HANDLERS": "jsonl",
                "ALIEN_EVENTS_JSONL_PATH": str(path),
                "ALIEN_EVENTS_JSONL_FSYNC": "1",
            }
        )
        assert [JsonLinesHandler] == [type(h) for h in bus.handlers]
        with bus:
            for n in range(3):
                lifecycle(0, n)
        bus.close()
        check_lifecycles(read_all(path), [0], 3)

    def test_from_env_fsync_really_syncs(self, tmp_path):
        """ALIEN_EVENTS_JSONL_FSYNC=1 reaches the handler: on a FIFO the emit fails with EINVAL."""
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        env = {
            "ALIEN_EVENTS_HANDLERS": "jsonl",
            "ALIEN_EVENTS_JSONL_PATH": str(fifo),
            "ALIEN_EVENTS_JSONL_FSYNC": "1",
        }
        try:
            bus = EventBus.from_env(env)
            with bus, pytest.raises(EventHandlerError) as info:
                Work(worker=0, n=0, role="leaf").emit()
            bus.close()
            quiet = EventBus.from_env({**env, "ALIEN_EVENTS_JSONL_FSYNC": "0"})
            with quiet:
                Work(worker=0, n=1, role="leaf").emit()
            quiet.close()
        finally:
            os.close(reader)
        assert 22 == info.value.errors[0].errno

    def test_from_env_reads_rotation_options(self, tmp_path):
        """ALIEN_EVENTS_JSONL_MAX_BYTES and _BACKUPS are parsed from text and make it rotate."""
        path = tmp_path / "events.jsonl"
        bus = EventBus.from_env(
            {
                "ALIEN_EVENTS_HANDLERS": "jsonl",
                "ALIEN_EVENTS_JSONL_PATH": str(path),
                "ALIEN_EVENTS_JSONL_MAX_BYTES": "700",
                "ALIEN_EVENTS_JSONL_BACKUPS": "1",
            }
        )
        with bus:
            for n in range(20):
                lifecycle(0, n)
        bus.close()
        assert [f"{path.name}.1"] == [f.name for f in rotated_files(path)]


# -- bad options ------------------------------------------------------------------------------


class TestBadOptions:
    def test_a_directory_as_path_is_refused_naming_it(self, tmp_path):
        """A directory for the path raises IsADirectoryError that names it."""
        with pytest.raises(IsADirectoryError, match=re.escape(str(tmp_path))):
            JsonLinesHandler(tmp_path)

    def test_a_directory_as_path_through_the_plugin_is_a_plugin_option_error(self, tmp_path):
        """Through from_plugins, a directory path is a PluginOptionError naming jsonl and the path."""
        with pytest.raises(PluginOptionError) as info:
            EventBus.from_plugins(["jsonl"], jsonl={"path": tmp_path})
        message = str(info.value)
        assert "'jsonl'" in message
        assert "Is a directory" in message
        assert str(tmp_path) in message
        assert isinstance(info.value.__cause__, IsADirectoryError)

    def test_a_path_in_a_missing_directory_is_refused(self, tmp_path):
        """A path whose directory does not exist raises FileNotFoundError at once."""
        with pytest.raises(FileNotFoundError):
            JsonLinesHandler(tmp_path / "no" / "such" / "events.jsonl")

    @pytest.mark.parametrize("max_bytes", [-1, 1.5, True, "100"])
    def test_a_bad_max_bytes_is_a_value_error_that_says_what_is_expected(self, tmp_path, max_bytes):
        """max_bytes must be an int >= 0: anything else raises ValueError, and creates no file."""
        path = tmp_path / "events.jsonl"
        with pytest.raises(ValueError, match=r"max_bytes must be an int >= 0"):
            JsonLinesHandler(path, max_bytes=max_bytes)
        assert not path.exists()

    @pytest.mark.parametrize("backups", [0, -3, False])
    def test_a_bad_backups_is_a_value_error(self, tmp_path, backups):
        """backups must be an int >= 1: anything else raises ValueError."""
        with pytest.raises(ValueError, match=r"backups must be an int >= 1"):
            JsonLinesHandler(tmp_path / "events.jsonl", backups=backups)

    def test_max_bytes_minus_one_through_the_plugin_is_a_plugin_option_error(self, tmp_path):
        """from_plugins with max_bytes=-1 raises PluginOptionError carrying the reason."""
        with pytest.raises(PluginOptionError, match=r"max_bytes must be an int >= 0"):
            EventBus.from_plugins(["jsonl"], jsonl={"path": tmp_path / "e.jsonl", "max_bytes": -1})

    def test_max_bytes_minus_one_from_the_environment_is_a_plugin_option_error(self, tmp_path):
        """ALIEN_EVENTS_JSONL_MAX_BYTES=-1 raises PluginOptionError carrying the reason."""
        env = {
            "ALIEN_EVENTS_HANDLERS": "jsonl",
            "ALIEN_EVENTS_JSONL_PATH": str(tmp_path / "e.jsonl"),
            "ALIEN_EVENTS_JSONL_MAX_BYTES": "-1",
        }
        with pytest.raises(PluginOptionError, match=r"max_bytes must be an int >= 0"):
            EventBus.from_env(env)

    @pytest.mark.parametrize(
        ("option", "text"), [("MAX_BYTES", "lots"), ("FSYNC", "maybe"), ("BACKUPS", "1.5")]
    )
    def test_an_unparsable_variable_names_itself(self, tmp_path, option, text):
        """A variable that does not parse raises PluginOptionError naming the variable."""
        env = {
            "ALIEN_EVENTS_HANDLERS": "jsonl",
            "ALIEN_EVENTS_JSONL_PATH": str(tmp_path / "e.jsonl"),
            f"ALIEN_EVENTS_JSONL_{option}": text,
        }
        with pytest.raises(PluginOptionError, match=f"ALIEN_EVENTS_JSONL_{option}"):
            EventBus.from_env(env)

    def test_a_missing_path_is_a_plugin_option_error(self):
        """Selecting jsonl without a path raises PluginOptionError saying the path is required."""
        with pytest.raises(PluginOptionError, match=r"ALIEN_EVENTS_JSONL_PATH.*required"):
            EventBus.from_env({"ALIEN_EVENTS_HANDLERS": "jsonl"})

    def test_an_unknown_option_is_a_plugin_option_error(self, tmp_path):
        """An option jsonl does not have raises PluginOptionError listing the real ones."""
        with pytest.raises(PluginOptionError, match=r"backups, fsync, max_bytes, path"):
            EventBus.from_plugins(["jsonl"], jsonl={"path": tmp_path / "e", "rotate": True})


# -- memory -----------------------------------------------------------------------------------

MEMORY = r"""
import resource
import sys

from alien_events_api import AlienEvent
from alien_events_sdk import EventBus
from alien_events_jsonl import JsonLinesHandler


def lifecycles(count):
    for index in range(count):
        with AlienEvent.BuildingStack(stack="s").in_scope():
            child = AlienEvent.BuildingImage(image=f"img-{index % 10}").emit()
            child.update(AlienEvent.BuildingImage(image="done"))
            child.complete()


handler = JsonLinesHandler(sys.argv[1])
with EventBus([handler]):
    lifecycles(10_000)  # warm up: id pools, caches, allocator arenas
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lifecycles(int(sys.argv[2]))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
handler.close()
print(after - before)
"""


class TestMemory:
    @pytest.mark.slow
    def test_writing_half_a_million_changes_keeps_memory_flat(self, tmp_path):
        """500,000 changes through the handler grow the writer's peak RSS by less than 4 MiB."""
        path = tmp_path / "events.jsonl"
        done = subprocess.run(
            [sys.executable, "-c", MEMORY, str(path), "100000"],
            capture_output=True,
            text=True,
            check=True,
        )
        growth_kib = int(done.stdout)
        with path.open("rb") as file:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
        path.unlink()
        assert 110_000 * CHANGES_PER_LIFECYCLE == lines
        assert growth_kib < 4 * 1024, done.stdout


# -- the public surface -----------------------------------------------------------------------


class TestPublicSurface:
    def test_reloading_the_package_keeps_the_public_module_names(self):
        """Importing the package again (a reload) leaves every public class and function in ``alien_events_jsonl``."""
        module = importlib.reload(importlib.import_module("alien_events_jsonl"))
        assert {"alien_events_jsonl"} == {
            getattr(module, name).__module__
            for name in module.__all__
            if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))
        }
        assert JsonLinesHandler is module.JsonLinesHandler
