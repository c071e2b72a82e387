"""
``render_frame``: one picture of the event tree for the live display, as a pure function.

The picture depends only on ``(tree, now, width, height)``: the spinner is a function of
``now``, nothing is read from a terminal, so it can be compared with expected text.

What it shows:

- running work as a tree, with a spinner, its elapsed time and, where the event carries
  progress, a bar with the percentage and the counts;
- a succeeded event collapsed to one line (its children hidden, unless something inside
  is still running or failed);
- a failed event expanded, with its error (``CODE: message``), the chain of sources and the
  hint; a failed parent whose error is the same as a failed descendant's does not repeat it;
- plain events (state ``none``) of the same type under the same parent coalesced to the
  latest, with a count (Alien sends push progress as a new event per tick);
- a footer with the counts by state and the total time.

When ``height`` is given and the tree is taller, finished work is summarised
(``… 12 more done``), oldest first, so running and failed events stay visible; if that is not
enough, failure details shrink to their first line, then the summary lines go (the footer
still counts everything), and last the frame is cut.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
from rich.cells import cell_len
from rich.text import Text

from alien_events_api import EventState
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
    ICON_SUCCESS,
    RUNNING,
    SUCCESS,
    Piece,
    bar,
    counts_text,
    error_details,
    fit,
    format_duration,
    percent,
    progress_detail,
    spinner,
)
from alien_events_sdk import EventNode, EventTree

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rich.console import Console, ConsoleOptions, RenderResult

MAX_DEPTH = 32  # deeper events are counted, not drawn
MIN_TEXT = 16  # cells of an event's text kept before its progress bar is given up
_BAR_WIDE = 20
_BAR_NARROW = 10


@typing.final
@attrs.frozen
class Frame:
    """
    One picture of the tree: lines of rich ``Text``, none wider than ``width`` cells.

    Print it with rich (it is a renderable) or read ``plain`` for the text without styles.
    """

    lines: tuple[Text, ...]
    width: int

    @property
    def plain(self) -> str:
        """The frame's text without styles, lines joined by newlines."""
        return "\n".join(line.plain for line in self.lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        joined = Text("\n").join(self.lines)
        joined.no_wrap = True
        joined.overflow = "crop"
        joined.end = ""
        yield joined

    def __len__(self) -> int:
        return len(self.lines)


@attrs.define
class _Item:
    """A node (or a summary of hidden ones) as laid out, with its visible children."""

    node: EventNode | None
    hot: bool
    children: list[_Item] = attrs.Factory(list)
    details: list[list[Piece]] = attrs.Factory(list)
    brief: list[Piece] = attrs.Factory(list)
    repeat: int = 1
    summary: str = ""
    rows: int = 1
    dropped: bool = False
    hidden: int = 1  # siblings this item stands for once hidden (more for a bundle)


class _Context:
    """What one frame needs while it is built: the time, the width, memoised lookups."""

    def __init__(
        self, now: float, width: int, keep: int | None, on_error: ErrorCallback | None
    ) -> None:
        self.now = now
        self.keep = keep
        self.now_dt = datetime.fromtimestamp(now, UTC)
        self.width = width
        self.on_error = on_error
        self._kids: dict[str, list[EventNode]] = {}
        self.hot: dict[str, bool] = {}

    def kids(self, node: EventNode) -> list[EventNode]:
        found = self._kids.get(node.id)
        if found is None:
            found = self._kids[node.id] = node.children
        return found

    def text(self, node: EventNode) -> str:
        return text_or_fallback(node.event, self.on_error)

    def progress(self, node: EventNode) -> tuple[float, float] | None:
        return progress_or_none(node.event, self.on_error)


def _tops(tree: EventTree) -> list[EventNode]:
    return [*tree.roots, *tree.orphans]


def _mark_hot(ctx: _Context, tops: Iterable[EventNode]) -> None:
    """Mark each node hot when it, or something below it, is running or failed."""
    stack: list[tuple[EventNode, bool]] = [(top, False) for top in tops]
    while stack:
        node, done = stack.pop()
        if done:
            ctx.hot[node.id] = (
                node.state is EventState.STARTED
                or (node.state is EventState.FAILED)
                or any(ctx.hot[kid.id] for kid in ctx.kids(node))
            )
            continue
        stack.append((node, True))
        stack.extend((kid, False) for kid in ctx.kids(node))


def _shown_below(ctx: _Context, node: EventNode) -> bool:
    """Whether a failed descendant carries the same error (so this node need not repeat it)."""
    error = node.error
    if error is None:
        return False
    stack = [kid for kid in ctx.kids(node) if ctx.hot[kid.id]]
    while stack:
        kid = stack.pop()
        if kid.state is EventState.FAILED and kid.error == error:
            return True
        stack.extend(k for k in ctx.kids(kid) if ctx.hot[k.id])
    return False


def _visible_children(ctx: _Context, node: EventNode) -> list[tuple[EventNode | None, int]]:
    """
    The children to draw, each with how many plain same-type siblings it stands for.

    A succeeded node shows only its hot children; each run of the others becomes
    ``(None, count)``, drawn as one "… N more done" line (nothing when none is hot).
    """
    kids = ctx.kids(node)
    if node.state is not EventState.SUCCESS:
        return list(_coalesced(ctx, kids))
    if not any(ctx.hot[kid.id] for kid in kids):
        return []
    shown: list[tuple[EventNode | None, int]] = []
    hidden = 0
    for kid in kids:
        if ctx.hot[kid.id]:
            if hidden:
                shown.append((None, hidden))
                hidden = 0
            shown.append((kid, 1))
        else:
            hidden += 1
    if hidden:
        shown.append((None, hidden))
    return shown


def _coalesced(ctx: _Context, nodes: list[EventNode]) -> list[tuple[EventNode, int]]:
    last: dict[type, int] = {}
    count: dict[type, int] = {}
    for index, node in enumerate(nodes):
        if node.state is EventState.NONE and not ctx.kids(node):
            key = type(node.event)
            last[key] = index
            count[key] = count.get(key, 0) + 1
    shown = []
    for index, node in enumerate(nodes):
        if node.state is EventState.NONE and not ctx.kids(node):
            key = type(node.event)
            if last[key] != index:
                continue
            shown.append((node, count[key]))
        else:
            shown.append((node, 1))
    return shown


def _done_summary(count: int, *, dropped: bool = False) -> _Item:
    return _Item(None, hot=False, summary=f"… {count} more done", dropped=dropped, hidden=count)


def _bundled(
    ctx: _Context, entries: list[tuple[EventNode | None, int]]
) -> list[tuple[EventNode | None, int] | int]:
    """
    With a height, hide at once the finished siblings that could never fit.

    Only the newest ``keep`` of them stay candidates; runs of the older ones become bundles
    (their count), so a huge tree costs little more than what can be shown.
    """
    finished = [
        index
        for index, (node, _) in enumerate(entries)
        if node is not None and not ctx.hot[node.id]
    ]
    if ctx.keep is None or len(finished) <= ctx.keep:
        return list(entries)
    hide = set(finished[: len(finished) - ctx.keep])
    out: list[tuple[EventNode | None, int] | int] = []
    for index, entry in enumerate(entries):
        if index not in hide:
            out.append(entry)
        elif out and isinstance(out[-1], int):
            out[-1] += 1
        else:
            out.append(1)
    return out


def _items(ctx: _Context, entries: list[tuple[EventNode | None, int]], depth: int) -> list[_Item]:
    items = []
    for entry in _bundled(ctx, entries):
        if isinstance(entry, int):
            items.append(_done_summary(entry, dropped=True))
        elif entry[0] is None:
            items.append(_done_summary(entry[1]))
        else:
            items.append(_build(ctx, entry[0], entry[1], depth))
    return items


def _build(ctx: _Context, node: EventNode, repeat: int, depth: int) -> _Item:
    item = _Item(node, ctx.hot[node.id], repeat=repeat)
    if node.state is EventState.FAILED and not _shown_below(ctx, node):
        room = ctx.width - (3 * depth + 2)
        details = error_details(node.error)
        item.details = [line for detail in details for line in detail.lines(room)]
        item.brief = details[0].lines(None)[0]
    if depth >= MAX_DEPTH:
        hidden = sum(1 for _ in node.walk()) - 1
        if hidden:
            item.children = [_Item(None, hot=False, summary=f"… {hidden} more below")]
    else:
        item.children = _items(ctx, _visible_children(ctx, node), depth + 1)
    item.rows = 1 + len(item.details) + sum(child.rows for child in item.children)
    return item


# -- fitting a tall tree ------------------------------------------------------------------


def _droppable_groups(tops: list[_Item]) -> list[list[_Item]]:
    """The sibling lists whose finished items may be hidden: the tops, and children of hot items."""
    groups: list[list[_Item]] = [tops]
    stack = list(tops)
    while stack:
        item = stack.pop()
        if item.hot:
            groups.append(item.children)
            stack.extend(item.children)
    return groups


def _drop_finished(tops: list[_Item], budget: int, total: int) -> int:
    """Hide finished (not hot) items, oldest first, until the rows fit; return the new total."""
    groups = _droppable_groups(tops)
    candidates = sorted(
        (item.node.created_at, group_index, index)
        for group_index, group in enumerate(groups)
        for index, item in enumerate(group)
        if not item.hot and item.node is not None
    )
    for _, group_index, index in candidates:
        if total <= budget:
            break
        group = groups[group_index]
        before = index > 0 and group[index - 1].dropped
        after = index + 1 < len(group) and group[index + 1].dropped
        group[index].dropped = True
        total -= group[index].rows
        if not before and not after:
            total += 1  # a new summary line
        elif before and after:
            total -= 1  # two summaries become one
    for group in groups:
        group[:] = _with_summaries(group)
    return total


def _with_summaries(group: list[_Item]) -> list[_Item]:
    out: list[_Item] = []
    run: list[_Item] = []
    for item in [*group, None]:
        if item is not None and item.dropped:
            run.append(item)
            continue
        if run:
            out.append(_done_summary(sum(item.hidden for item in run)))
            run = []
        if item is not None:
            out.append(item)
    return out


def _shrink_details(tops: list[_Item], budget: int, total: int) -> int:
    """Keep only the first line of failure details, until the rows fit; return the new total."""
    stack = list(reversed(tops))
    while stack and total > budget:
        item = stack.pop()
        if len(item.details) > 1:
            total -= len(item.details) - 1
            item.details = [item.brief]
        stack.extend(reversed(item.children))
    return total


def _drop_summaries(tops: list[_Item], budget: int, total: int) -> int:
    """Remove "… N more done" lines, top first, until the rows fit (the footer still counts all)."""
    groups = _droppable_groups(tops)
    for group in groups:
        index = 0
        while index < len(group) and total > budget:
            if group[index].node is None:
                del group[index]
                total -= 1
            else:
                index += 1
    return total


# -- drawing ------------------------------------------------------------------------------


def _icon(ctx: _Context, state: EventState) -> Piece:
    if state is EventState.STARTED:
        return (spinner(ctx.now), RUNNING)
    if state is EventState.SUCCESS:
        return (ICON_SUCCESS, SUCCESS)
    if state is EventState.FAILED:
        return (ICON_FAILED, FAILED)
    return (ICON_NONE, DIM)


def _progress_options(ctx: _Context, node: EventNode) -> list[tuple[list[Piece], int]]:
    """Ways to show the node's progress, widest first, each with its width in cells."""
    if node.state not in {EventState.STARTED, EventState.NONE}:
        return []
    found = ctx.progress(node)
    if found is None:
        return []
    current, total = found
    pct = percent(current, total)
    detail = progress_detail(push_progress_of(node.event), current, total)
    options: list[list[Piece]] = []
    if pct is not None:
        fraction = current / total
        pct_piece = (f" {pct}%", "")
        options.append([(" ", ""), *bar(fraction, _BAR_WIDE), pct_piece, (f" {detail}", DIM)])
        options.append([(" ", ""), *bar(fraction, _BAR_NARROW), pct_piece, (f" {detail}", DIM)])
        options.append([(" ", ""), *bar(fraction, _BAR_NARROW), pct_piece])
        options.append([pct_piece])
    elif detail:
        options.append([(f" {detail}", DIM)])
    return [(pieces, sum(cell_len(text) for text, _ in pieces)) for pieces in options]


def _node_line(ctx: _Context, item: _Item, guide: str) -> Text:
    node = typing.cast("EventNode", item.node)
    icon = _icon(ctx, node.state)
    text = ctx.text(node)
    suffix = f" ×{item.repeat}" if item.repeat > 1 else ""  # noqa: RUF001  (a times sign)
    right = ""
    if node.state is not EventState.NONE:
        seconds = node.elapsed(ctx.now_dt)
        # An event created already ended (Finished) has no duration to show.
        right = format_duration(seconds) if seconds or node.state is EventState.STARTED else ""
    lead = cell_len(guide) + cell_len(icon[0]) + 1
    room = ctx.width - lead - (cell_len(right) + 1 if right else 0)
    if room < MIN_TEXT // 2 and right:
        right, room = "", ctx.width - lead
    full = cell_len(text) + cell_len(suffix)
    extra: list[Piece] = []
    extra_width = 0
    options = _progress_options(ctx, node)
    # The whole text with as much progress as fits; else the text cut to MIN_TEXT cells.
    for wanted in (full, min(full, MIN_TEXT)):
        fitting = [(pieces, width) for pieces, width in options if room - width >= wanted]
        if fitting:
            extra, extra_width = fitting[0]
            break
    shown = fit(text + suffix, max(0, room - extra_width))
    cut = len(shown) - len(suffix) if shown.endswith(suffix) and suffix else len(shown)
    pad = max(0, room - extra_width - cell_len(shown))
    line = Text(no_wrap=True, overflow="crop", end="")
    line.append(guide, DIM)
    line.append(icon[0], icon[1])
    line.append(" ")
    line.append(shown[:cut], FAILED if node.state is EventState.FAILED else "")
    line.append(shown[cut:], DIM)
    for piece, style in extra:
        line.append(piece, style)
    if right:
        line.append(" " * pad + " ")
        line.append(right, DIM)
    line.truncate(ctx.width)
    return line


def _pieces_line(ctx: _Context, prefix: str, pieces: list[Piece]) -> Text:
    line = Text(no_wrap=True, overflow="crop", end="")
    line.append(prefix, DIM)
    room = ctx.width - cell_len(prefix)
    for text, style in pieces:
        shown = fit(text, room)
        line.append(shown, style)
        room -= cell_len(shown)
    line.truncate(ctx.width)
    return line


def _draw(ctx: _Context, items: list[_Item], prefix: str, depth: int, out: list[Text]) -> None:
    for index, item in enumerate(items):
        last = index == len(items) - 1
        guide = "" if depth == 0 else prefix + ("└─ " if last else "├─ ")
        inner = "" if depth == 0 else prefix + ("   " if last else "│  ")
        if item.node is None:
            out.append(_pieces_line(ctx, guide, [(item.summary, DIM)]))
            continue
        out.append(_node_line(ctx, item, guide))
        detail_prefix = inner + ("│ " if item.children else "  ")
        out.extend(_pieces_line(ctx, detail_prefix, pieces) for pieces in item.details)
        _draw(ctx, item.children, inner, depth + 1, out)


@typing.final
@attrs.frozen
class Totals:
    """What the whole tree adds up to: events by state, total time, whether a top event failed."""

    counts: dict[EventState, int]
    seconds: float
    top_failed: bool

    @property
    def running(self) -> bool:
        """Whether any event is still running."""
        return self.counts[EventState.STARTED] > 0

    def icon(self, now: float) -> Piece:
        """The summary's mark: a spinner while running, then ✗ if a top event failed, else ✓."""
        if self.running:
            return (spinner(now), RUNNING)
        if self.top_failed:
            return (ICON_FAILED, FAILED)
        return (ICON_SUCCESS, SUCCESS)


def totals(tree: EventTree, now: float) -> Totals:
    """
    Add the tree up: events by state, total time, whether a top event failed.

    The time runs from the first top event's creation to ``now``, or to the last change
    when nothing runs any more.
    """
    tops = _tops(tree)
    counts = dict.fromkeys(EventState, 0)
    for top in tops:
        for node in top.walk():
            counts[node.state] += 1
    first = min((top.created_at for top in tops), default=None)
    end: datetime | None
    if counts[EventState.STARTED]:
        end = datetime.fromtimestamp(now, UTC)
    else:  # only once all is done (the final frame): the last change of all
        end = max((node.updated_at for top in tops for node in top.walk()), default=None)
    seconds = 0.0 if first is None or end is None else (end - first).total_seconds()
    return Totals(counts, seconds, any(top.state is EventState.FAILED for top in tops))


def _footer(ctx: _Context, tree: EventTree) -> Text:
    summary = totals(tree, ctx.now)
    icon = summary.icon(ctx.now)
    right = format_duration(summary.seconds)
    room = ctx.width - cell_len(icon[0]) - 1 - cell_len(right) - 1
    text = fit(counts_text(summary.counts), max(0, room))
    line = Text(no_wrap=True, overflow="crop", end="")
    line.append(icon[0], icon[1])
    line.append(" " + text)
    line.append(" " * max(0, room - cell_len(text)) + " ")
    line.append(right, DIM)
    line.truncate(ctx.width)
    return line


def render_frame(
    tree: EventTree,
    now: float,
    width: int,
    height: int | None = None,
    *,
    on_error: ErrorCallback | None = None,
) -> Frame:
    """
    Return the live picture of ``tree`` at time ``now`` (seconds since the epoch).

    No line is wider than ``width`` cells; with ``height``, the frame has at most that many
    lines (the footer included), keeping running and failed events. ``None`` draws
    everything (the final frame). An event type whose ``__alien_text__`` or
    ``__alien_progress__`` fails is drawn with its fallback text and no progress, and
    ``on_error`` (if given) is told.
    """
    width = max(1, int(width))
    keep = None if height is None else max(1, height - 1)
    ctx = _Context(now, width, keep, on_error)
    tops = _tops(tree)
    if not tops:
        return Frame((), width)
    _mark_hot(ctx, tops)
    items = _items(ctx, list(_coalesced(ctx, tops)), 0)
    total = sum(item.rows for item in items)
    if height is not None:
        budget = max(1, height - 1)
        if total > budget:
            total = _drop_finished(items, budget, total)
        if total > budget:
            total = _shrink_details(items, budget, total)
        if total > budget:
            total = _drop_summaries(items, budget, total)
    lines: list[Text] = []
    _draw(ctx, items, "", 0, lines)
    if height is not None and len(lines) > max(1, height - 1):
        keep = max(0, height - 2)
        hidden = len(lines) - keep
        lines = [*lines[:keep], _pieces_line(ctx, "", [(f"… {hidden} more lines", DIM)])]
    lines.append(_footer(ctx, tree))
    return Frame(tuple(lines), width)
