"""
A durable simulator (durable-execution.md §6.2, layer 1): memoised steps, crashes, re-runs.

The runtime is the smallest thing that behaves like Temporal, Restate, Inngest or DBOS as far
as an events library can tell:

* ``Memo``: step name -> recorded result, and how many times each step was started. A program
  calls ``ctx.step(name, fn)``: a recorded step hands back its result without running ``fn``;
  any other runs ``fn`` (attempt = earlier attempts + 1) and records what it returns. With a
  ``path`` each record is a JSON line, ``fsync``'d before the program goes on.
* ``DurableContext``: what the program sees. ``is_replaying()`` is true while the run is
  re-executing recorded history: before it reaches a step it has no result for, and while
  recorded results are left to hand back (as in Temporal, which stops replaying at the end of
  the history even if no new command has been issued yet). The workflow clock (``now``) is a
  pure function of the position in the program (steps passed), like ``workflow.now()``.
* ``Fuse``: counts the run's *ticks* (clock reads, deliveries to the handler, step boundaries)
  and raises ``Crash`` at the k-th. ``kill`` mode is a process death: after the crash every
  tick raises again, so nothing more is delivered or recorded (no ``failed`` from the
  unwinding ``in_scope`` blocks). ``unwind`` mode is an exception unwinding a live program
  (Temporal's eviction, a workflow-task failure): scopes on the way out still emit their
  cancelled ``failed``, only the memo takes nothing more.
* ``ChaoticChannel``: the durable queue between the program and the store (an ``EventTree``).
  It takes every change the program hands it and delivers it later: reordered, delayed across
  runs, duplicated, dropped in transit and redelivered. It lives outside the program run, so a
  crash loses nothing it holds, and it never loses a change it accepted.

``deploy_program`` is the program the properties run (7 steps, see its docstring). Run as a
script, this module runs it once in a child process with a file-backed memo and a
``JsonLinesHandler`` (``python durable_sim.py MEMO EVENTS POLICY PAUSE``).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import functools
import hashlib
import json
import os
import pathlib
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from alien_events_api import (
    AlienEvent,
    EventHandle,
    EventState,
    PushProgress,
    extract,
    inject,
)
from alien_events_sdk import DerivedIds, EventBus, EventTree, ReplayPolicy

SCOPE_KEY = "sim/default/deploy-42/run-1"
"""The execution's scope key (Temporal: namespace, workflow id, run id)."""

STACK = "demo"
BASE_TIME = datetime(2030, 1, 1, tzinfo=UTC)

# Where a crash can be injected: reading a clock (the change is never made), inside the
# handler before or after the durable queue took the change, and at step boundaries (before
# a step, and after its work but before its result is recorded).
CLOCK = "clock"
BEFORE_QUEUE = "handler-before-queue"
AFTER_QUEUE = "handler-after-queue"
STEP = "step"
ALL_SITES = frozenset({CLOCK, BEFORE_QUEUE, AFTER_QUEUE, STEP})
PROGRAM_SITES = frozenset({CLOCK, STEP})
"""Sites that do not depend on delivery: a crash lands at the same point whatever the policy."""


class Crash(BaseException):
    """The program dies here; a ``BaseException``, so nothing in the program catches it."""


class CrashMode(enum.Enum):
    """How the program dies: ``KILL`` stops everything, ``UNWIND`` lets scopes emit on the way out."""

    KILL = "kill"
    UNWIND = "unwind"


class ClockKind(enum.Enum):
    """Fake clocks: none of them may decide what the store ends with."""

    FORWARD = "forward"  # workflow time: grows with the position in the program
    BACKWARD = "backward"  # runs backwards: a later change carries an earlier time
    CONSTANT = "constant"  # every change at the same instant (Temporal: one workflow task)
    JITTER = "jitter"  # any time on each read, different on every re-run (skewed machines)


class ReplayFlag(enum.Enum):
    """How ``is_replaying`` is computed."""

    HISTORY = "history"
    """Replaying until the run reaches new work or has handed back every recorded result."""
    UNTIL_NEW_STEP = "until-new-step"
    """Replaying until the run reaches a step with no result: too long, it loses changes."""


def is_crash(exc: BaseException) -> bool:
    """Whether an exception is a ``Crash``, or a group made only of crashes (a task group's)."""
    if isinstance(exc, Crash):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(is_crash(inner) for inner in exc.exceptions)
    return False


# -- the memo ---------------------------------------------------------------------------------


def _json_copy(value: Any) -> Any:
    """The value as it comes back from a JSON record (tuples become lists)."""
    return json.loads(json.dumps(value))


class Memo:
    """
    Recorded step results and attempt counts; with ``path``, persisted as ``fsync``'d JSON lines.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.results: dict[str, Any] = {}
        self.attempts: Counter[str] = Counter()
        self._path = None if path is None else pathlib.Path(path)
        if self._path is not None and self._path.exists():
            self._load(self._path)

    def _load(self, path: pathlib.Path) -> None:
        for line in path.read_bytes().splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn by a kill: the record was never complete, so never relied on
            record = json.loads(line)
            if "result" in record:
                self.results[record["step"]] = record["result"]
            else:
                self.attempts[record["step"]] = record["attempt"]

    def _append(self, record: dict[str, Any]) -> None:
        if self._path is None:
            return
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def start(self, name: str) -> int:
        """Count one more attempt of a step (recorded before it runs) and return its number."""
        self.attempts[name] += 1
        self._append({"step": name, "attempt": self.attempts[name]})
        return self.attempts[name]

    def record(self, name: str, result: Any) -> Any:
        """Record a step's result; return it as later runs will see it (through JSON)."""
        result = _json_copy(result)
        self._append({"step": name, "result": result})
        self.results[name] = result
        return result


# -- crashes ----------------------------------------------------------------------------------


class Fuse:
    """Counts one run's ticks and raises ``Crash`` at the ``crash_at``-th (None: never)."""

    def __init__(
        self,
        crash_at: int | None = None,
        *,
        mode: CrashMode = CrashMode.KILL,
        sites: frozenset[str] = ALL_SITES,
        pause: float = 0.0,
    ) -> None:
        self.crash_at = crash_at
        self.mode = mode
        self.sites = sites
        self.pause = pause
        self.ticks = 0
        self.site: str | None = None

    @property
    def blown(self) -> bool:
        """Whether the crash has happened in this run."""
        return self.site is not None

    def tick(self, site: str) -> None:
        """Count a tick at ``site``; raise ``Crash`` if it is the fatal one (or the run is dead)."""
        if self.blown:
            if self.mode is CrashMode.KILL:
                msg = "the process is dead"
                raise Crash(msg)
            return
        if self.pause:
            time.sleep(self.pause)  # only to let a parent process kill a child mid-run
        if site not in self.sites:
            return
        self.ticks += 1
        if self.ticks == self.crash_at:
            self.site = site
            raise Crash(site)


# -- the channel --------------------------------------------------------------------------------


class ChaoticChannel:
    """
    The durable queue from the program to the store: late, reordered, duplicated, redelivered.

    ``on_event_change`` accepts a change (the program's handler calls it); each acceptance
    also makes a few delivery attempts on random queued changes. An attempt may be dropped in
    transit (the change stays queued and is redelivered later), or delivered with its
    acknowledgement lost (delivered again later), or delivered and acknowledged. With no
    ``rng`` every change goes to the store at once, in order. ``drain`` delivers what is left.
    """

    MAX_DROPS = 2
    MAX_DUPLICATES = 2

    def __init__(
        self,
        store: EventTree,
        rng: random.Random | None = None,
        *,
        drop: float = 0.2,
        duplicate: float = 0.25,
        max_batch: int = 3,
    ) -> None:
        self.store = store
        self.rng = rng
        self.drop = drop
        self.duplicate = duplicate
        self.max_batch = max_batch
        self.accepted: list[Any] = []
        self.applied: Counter[int] = Counter()
        self.stats: Counter[str] = Counter()
        self._pending: list[int] = []
        self._drops: Counter[int] = Counter()
        self._duplicates: Counter[int] = Counter()

    def on_event_change(self, change: Any) -> None:
        """Accept a change: from now on it is the channel's to deliver."""
        self.accepted.append(change)
        self._pending.append(len(self.accepted) - 1)
        if self.rng is None:
            self.drain()
            return
        for _ in range(self.rng.randint(0, self.max_batch)):
            self._attempt()

    @property
    def pending(self) -> int:
        """How many accepted changes still wait for an acknowledged delivery."""
        return len(self._pending)

    def _attempt(self) -> None:
        if not self._pending:
            return
        rng = self.rng
        index = 0 if rng is None else rng.randrange(len(self._pending))
        token = self._pending[index]
        roll = 1.0 if rng is None else rng.random()
        if roll < self.drop and self._drops[token] < self.MAX_DROPS:
            self._drops[token] += 1
            self.stats["dropped"] += 1
            return  # lost on the way: not acknowledged, so it stays queued
        self.store.apply(self.accepted[token])
        self.applied[token] += 1
        self.stats["delivered"] += 1
        if roll < self.drop + self.duplicate and self._duplicates[token] < self.MAX_DUPLICATES:
            self._duplicates[token] += 1
            self.stats["duplicated"] += 1
            return  # the acknowledgement was lost: it will be delivered again
        self._pending.pop(index)

    def drain(self) -> None:
        """Deliver everything still queued (still in random order, with duplicates and drops)."""
        while self._pending:
            self._attempt()

    def lost(self) -> list[Any]:
        """Accepted changes that never reached the store (must stay empty)."""
        return [change for token, change in enumerate(self.accepted) if not self.applied[token]]


# -- the durable context --------------------------------------------------------------------------


class DurableContext:
    """What a program run sees: memoised steps, the replay flag, workflow time and randomness."""

    def __init__(
        self,
        memo: Memo,
        fuse: Fuse,
        *,
        scope_key: str = SCOPE_KEY,
        clock: ClockKind = ClockKind.FORWARD,
        replay_flag: ReplayFlag = ReplayFlag.HISTORY,
        jitter_seed: str = "",
    ) -> None:
        self.memo = memo
        self.fuse = fuse
        self.scope_key = scope_key
        self.clock_kind = clock
        self.replay_flag = replay_flag
        self.position = 0
        self.trace: list[Any] = []
        self.bus: EventBus | None = None
        self.derived_ids = True
        self._recorded = len(memo.results)
        self._consumed = 0
        self._new_work = False
        self._jitter = random.Random(jitter_seed)  # noqa: S311  (fake clock skew, not a secret)

    def is_replaying(self) -> bool:
        """Whether the run is re-executing code an earlier run already ran to a recorded step."""
        if self._new_work:
            return False
        if self.replay_flag is ReplayFlag.HISTORY:
            return self._consumed < self._recorded
        return self._recorded > 0

    def time_at(self, offset_ms: int) -> datetime:
        """The fake time at this position plus ``offset_ms`` (a tick: a crash may land here)."""
        self.fuse.tick(CLOCK)
        kind = self.clock_kind
        if kind is ClockKind.CONSTANT:
            return BASE_TIME
        if kind is ClockKind.JITTER:
            return BASE_TIME + timedelta(microseconds=self._jitter.randrange(10**9))
        delta = timedelta(seconds=self.position, milliseconds=offset_ms)
        return BASE_TIME + delta if kind is ClockKind.FORWARD else BASE_TIME - delta

    def now(self) -> datetime:
        """Workflow time: the same at the same point of the program in every run."""
        return self.time_at(0)

    def random(self) -> random.Random:
        """A generator seeded from the execution (Temporal's ``workflow.random()``)."""
        return random.Random(self.scope_key)  # noqa: S311  (deterministic by design)

    def observe(self, *value: Any) -> None:
        """Note a value the program saw: ids, step results, random draws."""
        self.trace.append(value)

    def step(self, name: str, fn: Any) -> Any:
        """Return the recorded result of step ``name``, else run ``fn(step_context)`` and record it."""
        self.fuse.tick(STEP)
        if name in self.memo.results:
            result = self.memo.results[name]
            self._consumed += 1
        else:
            self._new_work = True
            if self.fuse.blown:  # a dying run starts nothing (unwind mode: another branch)
                msg = "the run is dying"
                raise Crash(msg)
            attempt = self.memo.start(name)
            # An activity: it runs with no ambient bus or parent, as in a worker process.
            result = contextvars.Context().run(fn, StepContext(self, name, attempt))
            self.fuse.tick(STEP)  # the work is done, its result not yet recorded
            if self.fuse.blown:
                msg = "the run is dying"
                raise Crash(msg)
            result = self.memo.record(name, result)
        self.position += 1
        self.observe("step", name, result)
        return result


class StepContext:
    """What a step body gets: its attempt number and a bus whose ids are scoped to the step."""

    def __init__(self, ctx: DurableContext, name: str, attempt: int) -> None:
        self.name = name
        self.attempt = attempt
        self._ctx = ctx
        self._reads = 0
        assert ctx.bus is not None
        # Ids derive from the step's own scope key (R2: ``.../activity/<id>``): the workflow's
        # counters must not depend on which step bodies ran in this run.
        ids = DerivedIds(f"{ctx.scope_key}/step/{name}") if ctx.derived_ids else None
        self.bus = ctx.bus.scoped(ids=ids, clock=self.now)

    def now(self) -> datetime:
        """The step's clock: after the workflow time, one millisecond per read."""
        self._reads += 1
        return self._ctx.time_at(self._reads)


# -- the program ----------------------------------------------------------------------------------


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def load_config(headers: dict[str, str], step: StepContext) -> dict[str, Any]:
    """Step 1: read the configuration (an event with a child)."""
    with step.bus, extract(headers), AlienEvent.LoadingConfiguration().in_scope():
        AlienEvent.RunningPreflights(stack=STACK, platform="aws").emit()
    return {"stack": STACK, "platform": "aws", "images": ["api", "worker"]}


def compile_code(image: str, headers: dict[str, str], step: StepContext) -> str:
    """Steps 2 and 4: compile, reporting progress, under the branch's event (via the token)."""
    with step.bus, extract(headers):
        event = AlienEvent.CompilingCode(language="rust")
        with event.in_scope() as handle:
            for done in range(1, 4):
                handle.update(AlienEvent.CompilingCode(language="rust", progress=f"{done}/3"))
    return f"{image}.o"


def build_image(image: str, layers: int, headers: dict[str, str], step: StepContext) -> str:
    """Steps 3 and 5: build the image, one update per layer."""
    with step.bus, extract(headers):
        resource = AlienEvent.BuildingResource(resource_name=image, resource_type="image")
        with resource.in_scope() as handle:
            for layer in range(layers):
                related = [f"{image}/layer-{n}" for n in range(layer + 1)]
                handle.update(
                    AlienEvent.BuildingResource(
                        resource_name=image, resource_type="image", related_resources=related
                    )
                )
    return _digest(image, layers)


def _progress(uploaded: int, total: int) -> PushProgress:
    return PushProgress(
        operation="upload",
        layers_uploaded=uploaded,
        total_layers=total,
        bytes_uploaded=uploaded * 1000,
        total_bytes=total * 1000,
    )


def push_images(
    push_id: str, root_id: str, digests: dict[str, str], step: StepContext
) -> list[str]:
    """
    Step 6: takes over the PushingStack event the workflow made, and pushes every image.

    Not deterministic across attempts (each attempt reports a different number of progress
    updates, as a retried upload would): its changes carry ``epoch=attempt``, so a later
    attempt's changes win over an earlier one's whatever their ``seq``.
    """
    total = 5
    with step.bus.scoped(epoch=step.attempt):
        stack = EventHandle.attach(push_id, parent_id=root_id, epoch=step.attempt)
        with stack.as_parent():
            for image in sorted(digests):
                with AlienEvent.PushingImage(image=image).in_scope(key=image) as handle:
                    # Attempt 1 reports 1, 2, 3, 4 layers, attempt 2 reports 1, 3, attempt 3
                    # 1, 4...; then all 5. A crashed attempt 1 reached a higher seq (4: 4 of 5
                    # layers) than attempt 2's final change (seq 3: 5 of 5): only the epoch
                    # makes the later attempt win.
                    for uploaded in range(1, total, step.attempt):
                        handle.update(
                            AlienEvent.PushingImage(
                                image=image, progress=_progress(uploaded, total)
                            )
                        )
                    handle.update(
                        AlienEvent.PushingImage(image=image, progress=_progress(total, total))
                    )
        stack.update(
            AlienEvent.PushingStack(stack=STACK, platform="aws", destination="registry.example")
        )
        stack.complete()
    return [f"registry.example/{image}@{digests[image]}" for image in sorted(digests)]


def create_release(pushed: list[str], headers: dict[str, str], step: StepContext) -> str:
    """Step 7: create the release (a plain event, no lifecycle)."""
    with step.bus, extract(headers):
        AlienEvent.GeneratingTemplate(platform="aws").emit()
    return "release-" + _digest(pushed)


def _carrier() -> dict[str, str]:
    """Headers carrying the current parent to a step, as a token (Temporal headers, R9)."""
    headers: dict[str, str] = {}
    inject(headers)
    return headers


async def _build_branch(ctx: DurableContext, image: str, layers: int) -> str:
    """One branch of the fan-out: its own parent event, two steps."""
    with AlienEvent.BuildingImage(image=image).in_scope(key=image) as branch:
        ctx.observe("branch", image, branch.id)
        headers = _carrier()
        ctx.step(f"compile:{image}", functools.partial(compile_code, image, headers))
        await asyncio.sleep(0)  # let the other branch run: the branches interleave
        digest = ctx.step(f"build:{image}", functools.partial(build_image, image, layers, headers))
        await asyncio.sleep(0)
    return str(digest)


async def deploy_program(ctx: DurableContext) -> dict[str, Any]:
    """
    The workflow: 7 steps, a fan-out of two branches, a hand-over, progress, plain events.

    Workflow-level events (the root DeployingStack, BuildingStack, the two BuildingImage
    branch parents, PushingStack, CreatingRelease, Finished) are emitted by this body, so
    every run emits them again. Events inside steps are emitted only when the step runs.
    """
    draws = ctx.random()
    with AlienEvent.DeployingStack(stack_name=STACK).in_scope() as root:
        ctx.observe("root", root.id)
        config = ctx.step("load-config", functools.partial(load_config, _carrier()))
        layers = draws.randint(2, 4)
        ctx.observe("layers", layers)
        with AlienEvent.BuildingStack(stack=config["stack"]).in_scope() as building:
            ctx.observe("building", building.id)
            async with asyncio.TaskGroup() as group:
                tasks = {
                    image: group.create_task(_build_branch(ctx, image, layers))
                    for image in config["images"]
                }
        digests = {image: task.result() for image, task in tasks.items()}
        push = AlienEvent.PushingStack(stack=STACK, platform=config["platform"]).emit(
            EventState.STARTED
        )
        ctx.observe("push", push.id)
        pushed = ctx.step("push", functools.partial(push_images, push.id, root.id, digests))
        with AlienEvent.CreatingRelease(project=STACK).in_scope() as release_event:
            ctx.observe("release", release_event.id)
            release = ctx.step("release", functools.partial(create_release, pushed, _carrier()))
        finished = AlienEvent.Finished().emit()
        ctx.observe("finished", finished.id, draws.random())
    return {"release": release, "digests": digests, "pushed": pushed}


# -- running ------------------------------------------------------------------------------------


def execute(
    program: Any,
    ctx: DurableContext,
    handlers: list[Any],
    *,
    policy: ReplayPolicy = ReplayPolicy.DELIVER_ALWAYS,
    derived_ids: bool = True,
) -> Any:
    """Run the program once, from the top, on a fresh bus (a fresh process); may raise Crash."""
    ctx.derived_ids = derived_ids
    ids = DerivedIds(ctx.scope_key) if derived_ids else None
    bus = EventBus(
        handlers,
        ids=ids,
        clock=ctx.now,
        is_replaying=ctx.is_replaying,
        replay_policy=policy,
    )
    ctx.bus = bus

    async def main() -> Any:
        with bus:
            return await program(ctx)

    return asyncio.run(main())


class _Outlet:
    """The run's only handler: hands each change to the channel (crash sites around it)."""

    def __init__(self, run: RunRecord, channel: ChaoticChannel) -> None:
        self._run = run
        self._channel = channel

    def on_event_change(self, change: Any) -> None:
        run = self._run
        run.fuse.tick(BEFORE_QUEUE)
        run.deliveries.append((change, run.ctx.is_replaying()))
        self._channel.on_event_change(change)
        run.fuse.tick(AFTER_QUEUE)


@dataclasses.dataclass
class RunRecord:
    """One run of the program: where it crashed (None: it completed), what it saw and sent."""

    ctx: DurableContext
    fuse: Fuse
    policy: ReplayPolicy
    crash_site: str | None = None
    deliveries: list[tuple[Any, bool]] = dataclasses.field(default_factory=list)

    @property
    def trace(self) -> list[Any]:
        """The values the program observed in this run."""
        return self.ctx.trace


@dataclasses.dataclass
class Schedule:
    """
    One simulated execution: crash points (the k-th tick of run 1, 2, ...), then a clean run.
    """

    crashes: tuple[int, ...] = ()
    mode: CrashMode = CrashMode.KILL
    policies: tuple[ReplayPolicy, ...] = (ReplayPolicy.DELIVER_ALWAYS,)
    """The policy of each run, cycled."""
    channel_seed: int | None = None
    """None: deliver every change at once, in order."""
    clock: ClockKind = ClockKind.FORWARD
    sites: frozenset[str] = ALL_SITES
    replay_flag: ReplayFlag = ReplayFlag.HISTORY
    derived_ids: bool = True


@dataclasses.dataclass
class Outcome:
    """What a simulated execution left: the store, the channel, the memo, each run."""

    store: EventTree
    channel: ChaoticChannel
    memo: Memo
    runs: list[RunRecord]
    result: Any


def simulate(schedule: Schedule, program: Any = deploy_program) -> Outcome:
    """Run the program, crashing as scheduled and re-running from the top, until it completes."""
    store = EventTree()
    rng = None if schedule.channel_seed is None else random.Random(schedule.channel_seed)  # noqa: S311
    channel = ChaoticChannel(store, rng)
    memo = Memo()
    runs: list[RunRecord] = []
    for index in range(len(schedule.crashes) + 1):
        crash_at = schedule.crashes[index] if index < len(schedule.crashes) else None
        fuse = Fuse(crash_at, mode=schedule.mode, sites=schedule.sites)
        ctx = DurableContext(
            memo,
            fuse,
            clock=schedule.clock,
            replay_flag=schedule.replay_flag,
            jitter_seed=f"{schedule.channel_seed}/{index}",
        )
        policy = schedule.policies[index % len(schedule.policies)]
        run = RunRecord(ctx, fuse, policy)
        runs.append(run)
        try:
            result = execute(
                program,
                ctx,
                [_Outlet(run, channel)],
                policy=policy,
                derived_ids=schedule.derived_ids,
            )
        except BaseException as exc:
            if not is_crash(exc):
                raise
            run.crash_site = fuse.site
            continue
        channel.drain()
        return Outcome(store, channel, memo, runs, result)
    msg = "the last run has no crash scheduled: it cannot crash"
    raise AssertionError(msg)


def count_ticks(sites: frozenset[str] = ALL_SITES) -> int:
    """How many ticks at ``sites`` one clean run makes (crash points are drawn up to it)."""
    return simulate(Schedule(sites=sites)).runs[0].fuse.ticks


# -- comparing stores ---------------------------------------------------------------------------


def projection(tree: EventTree) -> dict[str, dict[str, Any]]:
    """
    Each event's id -> its parent, data, state and error: what a user of the tree sees.

    Without times (a retried step runs later, so its ``created_at``/``updated_at`` differ
    from a clean run's, and children are ordered by time) and without ``seq``/``epoch``
    (the winning attempt's epoch is the attempt number).
    """
    out = {}
    tops = [*tree.roots, *tree.orphans]
    for top in tops:
        for node in top.walk():
            data = node.to_dict()
            out[node.id] = {key: data[key] for key in ("parentId", "event", "state", "error")}
    return out


# -- the child process --------------------------------------------------------------------------


def child_main(argv: list[str]) -> int:
    """Run the program once with a file-backed memo, writing changes to a JSON-lines file."""
    from alien_events_jsonl import JsonLinesHandler

    memo_path, events_path, policy, pause = argv
    fuse = Fuse(pause=float(pause))
    ctx = DurableContext(Memo(memo_path), fuse)
    handler = JsonLinesHandler(events_path)
    try:
        result = execute(deploy_program, ctx, [handler], policy=ReplayPolicy(policy))
    finally:
        handler.close()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
