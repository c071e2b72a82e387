"""
``PlainLog``: the append-only rendering for CI logs (and the quiet one), change in, lines out.

Designed for logs, not derived from the live view:

- every line starts with the event's path label, ``[1.2.3]`` (third child of the second child
  of the first root), so lines of concurrent work can be told apart and grepped;
- a line when an event starts, ends (with its duration) or fails (with its error, sources and
  hint); plain events get one line;
- progress is throttled per event: a line when it crosses a 10 % step (at least 1 s after
  the last one), when it reaches 100 %, or when 5 s passed and it moved; text updates print
  at most one line per event per 5 s (the end line shows the latest text anyway);
- when nothing was printed for ``heartbeat`` seconds, a "still running (2m10s)" line for each
  running event with nothing running below it;
- at the end, the failed events again (with where they were) and a summary line.

Quiet mode prints only that end: the failures and the summary.
"""

from __future__ import annotations

import math
import typing
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.cells import cell_len

from alien_events_api import Created, EventState, StateChanged, Updated
from alien_events_console._describe import (
    ErrorCallback,
    progress_or_none,
    push_progress_of,
    text_or_fallback,
)
from alien_events_console._format import (
    DIM,
    FAILED,
    ICON_FAILED,
    ICON_NONE,
    ICON_STARTED,
    ICON_SUCCESS,
    RUNNING,
    SUCCESS,
    Piece,
    counts_text,
    error_details,
    format_duration,
    percent,
    progress_detail,
)
from alien_events_console._frame import totals

if TYPE_CHECKING:
    from alien_events_api import EventChange
    from alien_events_sdk import EventNode, EventTree

Line = list[Piece]

PROGRESS_STEP = 10  # percent: a progress line each time a step is crossed
PROGRESS_INTERVAL = 5.0  # seconds: else a line when progress moved and this long passed
PROGRESS_MIN_GAP = 1.0  # seconds: steps closer than this to the last line are skipped
_INDENT = "  "


_ICONS: dict[EventState, Piece] = {
    EventState.STARTED: (ICON_STARTED, RUNNING),
    EventState.SUCCESS: (ICON_SUCCESS, SUCCESS),
    EventState.FAILED: (ICON_FAILED, FAILED),
    EventState.NONE: (ICON_NONE, DIM),
}


@typing.final
class PlainLog:
    """
    Turns changes (already folded into ``tree``) into log lines, for plain and quiet modes.

    ``width`` wraps failure details (``None``: never wrapped); event lines are never cut or
    wrapped, so each stays whole for grep. Not thread-safe: the handler serialises calls.
    """

    def __init__(
        self,
        tree: EventTree,
        *,
        quiet: bool = False,
        heartbeat: float = 30.0,
        width: int | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self._tree = tree
        self._quiet = quiet
        self._heartbeat = heartbeat
        self._width = width
        self._on_error = on_error
        self._labels: dict[str, str] = {}
        self._children: dict[str | None, int] = {}
        self._shown: dict[str, EventState] = {}
        self._progress: dict[object, tuple[int, float, int | None]] = {}
        self._texts: dict[str, tuple[str, float]] = {}
        self._last_output: float | None = None

    # -- labels -----------------------------------------------------------------------------

    def label(self, node: EventNode) -> str:
        """Return the node's path label (``1.2.3``), giving it (and its ancestors) one if new."""
        chain = []
        current: EventNode | None = node
        while current is not None and current.id not in self._labels:
            chain.append(current)
            parent = current.parent_id
            current = None if parent is None else self._tree.get(parent)
        for item in reversed(chain):
            parent_label = None if item.parent_id is None else self._labels.get(item.parent_id)
            key = item.parent_id if parent_label is not None else None
            number = self._children.get(key, 0) + 1
            self._children[key] = number
            self._labels[item.id] = (
                str(number) if parent_label is None else f"{parent_label}.{number}"
            )
        return self._labels[node.id]

    def _prefix(self, node: EventNode) -> Piece:
        return (f"[{self.label(node)}] ", DIM)

    # -- pieces -----------------------------------------------------------------------------

    def _text(self, node: EventNode) -> str:
        return text_or_fallback(node.event, self._on_error)

    def _progress_text(self, node: EventNode, found: tuple[float, float]) -> str:
        current, total = found
        pct = percent(current, total)
        detail = progress_detail(push_progress_of(node.event), current, total)
        if pct is None:
            return f": {detail}" if detail else ""
        return f": {pct}%" + (f" ({detail})" if detail else "")

    def _due(self, key: object, found: tuple[float, float], now: float) -> bool:
        """
        Whether a progress line is due, and if so remember it.

        Due: the first; the one reaching 100 %; one crossing a 10 % step at least 1 s after
        the last line; one that moved 5 s or more after the last line.
        """
        pct = percent(*found)
        step = -1 if pct is None else pct // PROGRESS_STEP
        previous = self._progress.get(key)
        if previous is not None:
            last_step, last_time, last_pct = previous
            waited = now - last_time
            moved = pct != last_pct or pct is None
            finished = pct == 100 and last_pct != 100  # noqa: PLR2004  (percent)
            stepped = step > last_step and waited >= PROGRESS_MIN_GAP
            if not (finished or stepped or (moved and waited >= PROGRESS_INTERVAL)):
                return False
        self._progress[key] = (step, now, pct)
        return True

    @staticmethod
    def _duration(node: EventNode, *, was_started: bool) -> float | None:
        """An ended event's duration, unless it was created already ended (no duration)."""
        seconds = node.elapsed()
        return seconds if was_started or seconds > 0 else None

    def _same_error_below(self, node: EventNode) -> EventNode | None:
        """The deepest failed descendant with the same error, if any (the error is shown there)."""
        error = node.error
        if error is None:
            return None
        best: tuple[int, EventNode] | None = None
        stack = [(kid, 1) for kid in node.children]
        while stack:
            kid, depth = stack.pop()
            same = kid.state is EventState.FAILED and kid.error == error
            if same and (best is None or depth > best[0]):
                best = (depth, kid)
            stack.extend((k, depth + 1) for k in kid.children)
        return None if best is None else best[1]

    def _failure_lines(self, node: EventNode, head: Line) -> list[Line]:
        origin = self._same_error_below(node)
        if origin is not None:
            return [[*head, (f" (same error as [{self.label(origin)}])", DIM)]]
        prefix = self._prefix(node)
        room = None if self._width is None else self._width - cell_len(prefix[0]) - len(_INDENT)
        lines = [head]
        for detail in error_details(node.error):
            lines.extend([prefix, (_INDENT, ""), *pieces] for pieces in detail.lines(room))
        return lines

    def _state_lines(self, node: EventNode, state: EventState, *, was_started: bool) -> list[Line]:
        text = self._text(node)
        head: Line = [self._prefix(node), _ICONS[state], (" ", "")]
        if state is EventState.FAILED:
            head.append((text + " failed", FAILED))
            seconds = self._duration(node, was_started=was_started)
            if seconds is not None:
                head.append((f" after {format_duration(seconds)}", DIM))
            return self._failure_lines(node, head)
        head.append((text, ""))
        if state is EventState.SUCCESS:
            seconds = self._duration(node, was_started=was_started)
            if seconds is not None:
                head.append((f" in {format_duration(seconds)}", DIM))
            return [head]
        found = progress_or_none(node.event, self._on_error)
        if found is not None:
            head.append((self._progress_text(node, found), DIM))
        return [head]

    # -- changes ----------------------------------------------------------------------------

    def changed(self, change: EventChange, now: float) -> list[Line]:
        """Return the lines for one change (already applied to the tree); quiet gives none."""
        if self._quiet:
            return []
        node = self._tree.get(change.id)
        lines: list[Line] = []
        if node is not None:
            if isinstance(change, Created):
                lines = self._created(node, now)
            elif isinstance(change, Updated):
                lines = self._updated(node, now)
            elif isinstance(change, StateChanged):
                lines = self._state_changed(node)
        if not lines:
            return self.tick(now)
        self._last_output = now
        return lines

    def _created(self, node: EventNode, now: float) -> list[Line]:
        if node.id in self._shown:
            return []  # a repeated Created (a replay): already shown
        state = node.state
        self._shown[node.id] = state
        if state is EventState.NONE:
            found = progress_or_none(node.event, self._on_error)
            # Alien sends push progress as a new plain event per tick: throttle them together.
            if found is not None and not self._due(
                ("tick", node.parent_id, type(node.event)), found, now
            ):
                return []
        elif state is EventState.STARTED:
            found = progress_or_none(node.event, self._on_error)
            if found is not None:
                self._due(node.id, found, now)
        # The text as shown, so an update that changes nothing prints nothing, while the
        # first real change prints at once.
        self._texts[node.id] = (self._text(node), -math.inf)
        return self._state_lines(node, state, was_started=False)

    def _updated(self, node: EventNode, now: float) -> list[Line]:
        if node.id not in self._shown or node.state.is_terminal:
            return []
        found = progress_or_none(node.event, self._on_error)
        text = self._text(node)
        if found is not None:
            if not self._due(node.id, found, now):
                return []
            return [
                [
                    self._prefix(node),
                    (_INDENT, ""),
                    (text, ""),
                    (self._progress_text(node, found), DIM),
                ]
            ]
        last = self._texts.get(node.id)
        if last is not None and (last[0] == text or now - last[1] < PROGRESS_INTERVAL):
            return []
        self._texts[node.id] = (text, now)
        return [[self._prefix(node), (_INDENT, ""), (text, "")]]

    def _state_changed(self, node: EventNode) -> list[Line]:
        before = self._shown.get(node.id)
        state = node.state
        if before is None or before is state:
            return []
        self._shown[node.id] = state
        self._texts.pop(node.id, None)
        self._progress.pop(node.id, None)
        return self._state_lines(node, state, was_started=before is EventState.STARTED)

    # -- time -------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Line]:
        """
        Return heartbeat lines when nothing was printed for ``heartbeat`` seconds.

        One line per running event with nothing running below it.
        """
        last = self._last_output
        if self._quiet or self._heartbeat <= 0 or last is None or now - last < self._heartbeat:
            return []
        lines = []
        for node in self._running_leaves():
            text = self._text(node)
            line: Line = [self._prefix(node), ("…", DIM), (" ", ""), (text, "")]
            found = progress_or_none(node.event, self._on_error)
            if found is not None:
                line.append((self._progress_text(node, found), DIM))
            seconds = node.elapsed(datetime.fromtimestamp(now, UTC))
            line.append((f" still running ({format_duration(seconds)})", DIM))
            lines.append(line)
        if lines:
            self._last_output = now
        return lines

    def _running_leaves(self) -> list[EventNode]:
        found: list[EventNode] = []
        for top in [*self._tree.roots, *self._tree.orphans]:
            below: dict[str, bool] = {}
            stack: list[tuple[EventNode, bool]] = [(top, False)]
            order: list[EventNode] = []
            while stack:
                node, done = stack.pop()
                if done:
                    below[node.id] = any(
                        kid.state is EventState.STARTED or below[kid.id] for kid in node.children
                    )
                    continue
                order.append(node)
                stack.append((node, True))
                stack.extend((kid, False) for kid in reversed(node.children))
            found.extend(
                node for node in order if node.state is EventState.STARTED and not below[node.id]
            )
        return found

    def close(self, now: float) -> list[Line]:
        """Return the end: a last heartbeat check, the failed events again, and the summary."""
        lines = self.tick(now)
        failed = [
            node
            for top in [*self._tree.roots, *self._tree.orphans]
            for node in top.walk()
            if node.state is EventState.FAILED
        ]
        if failed:
            lines.append([(f"Failed ({len(failed)}):", FAILED)])
        for node in failed:
            lines.extend(self._repeat_failure(node))
        summary = totals(self._tree, now)
        lines.append(
            [
                ("…", RUNNING) if summary.running else summary.icon(now),
                (" ", ""),
                (counts_text(summary.counts), ""),
                (f" · total {format_duration(summary.seconds)}", DIM),
            ]
        )
        self._last_output = now
        return lines

    def _repeat_failure(self, node: EventNode) -> list[Line]:
        text = self._text(node)
        head: Line = [
            self._prefix(node),
            _ICONS[EventState.FAILED],
            (" ", ""),
            (text + " failed", FAILED),
        ]
        seconds = node.elapsed()
        if seconds > 0:
            head.append((f" after {format_duration(seconds)}", DIM))
        lines = self._failure_lines(node, head)
        path = []
        parent = None if node.parent_id is None else self._tree.get(node.parent_id)
        while parent is not None:
            path.append(self._text(parent))
            parent = None if parent.parent_id is None else self._tree.get(parent.parent_id)
        if path:
            where = " › ".join(reversed(path))  # noqa: RUF001  (a path separator)
            lines.insert(1, [self._prefix(node), (f"{_INDENT}in {where}", DIM)])
        return lines
