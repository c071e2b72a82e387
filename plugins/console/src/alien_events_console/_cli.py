"""
The ``alien-events`` command line: a demo, a viewer for recorded runs, the schema, the plugins.

Exit codes: 0 success; 1 the demo or the view failed (the simulated deploy failed, a handler
failed, a bad line with ``view --strict``); 2 a usage or configuration error (a bad argument, a
missing or unreadable file, an unknown plugin or a bad plugin option); 130 interrupted (Ctrl-C),
except for ``view --follow``, where Ctrl-C is the way to stop and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import pathlib
import sys
import typing
from typing import TYPE_CHECKING, Any, TextIO

from alien_events_api import EventHandlerError, EventState
from alien_events_console._demo import DEFAULT_PAUSE, DemoError, run_demo
from alien_events_console._handler import ConsoleHandler
from alien_events_console._sources import (
    SourceError,
    UsageError,
    ViewSource,
    file_source,
    postgres_source,
)
from alien_events_jsonl import BadLineError
from alien_events_sdk import EventBus, EventTree, PluginError, installed_plugins, json_schema

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from alien_events_api import EventChange
    from alien_events_sdk import Plugins

PROG = "alien-events"
DEFAULT_JSONL = "alien-events-demo.jsonl"
MODES = ("auto", "live", "plain", "quiet")

OK = 0
FAILED = 1
USAGE = 2
INTERRUPTED = 130

EXIT_CODES = """\
exit codes:
  0    success
  1    the demo or the view failed (a simulated failure, a handler error, a bad line with --strict)
  2    usage or configuration error (bad argument, missing file, unknown plugin, bad plugin option)
  130  interrupted (Ctrl-C); view --follow exits 0, since Ctrl-C is how it stops
"""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    return value


def _indent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _version() -> str:
    try:
        return importlib.metadata.version("alien-events-console")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover  (run from a checkout)
        from alien_events_sdk import __version__  # noqa: PLC0415

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``alien-events`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Typed, user-facing events: watch a simulated build and deploy, replay a recorded\n"
            "run, and look at the event types and the installed handler plugins."
        ),
        epilog="Run 'alien-events COMMAND --help' for a command's options.\n\n" + EXIT_CODES,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    _add_demo(commands)
    _add_view(commands)
    _add_schema(commands)
    _add_plugins(commands)
    return parser


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run a simulated build and deploy, on the console and into a JSON-lines file",
        description=(
            "Run a simulated build and deploy (a stack, resources built in parallel, images\n"
            "pushed layer by layer, one failed push that is retried, a release and a deploy),\n"
            "rendered on the console and recorded to a JSON-lines file, in about four seconds.\n\n"
            "The handlers are --handlers, else ALIEN_EVENTS_HANDLERS, else 'console'; the\n"
            "JSON-lines file is added to them unless --no-jsonl. Plugin options come from\n"
            "ALIEN_EVENTS_<PLUGIN>_<OPTION> variables, as for any program."
        ),
        epilog=(
            "examples:\n"
            "  alien-events demo\n"
            "  alien-events demo --mode plain --speed 4\n"
            "  alien-events demo --handlers console,structlog --jsonl run.jsonl\n"
            "  alien-events view alien-events-demo.jsonl\n\n" + EXIT_CODES
        ),
        formatter_class=_formatter,
    )
    demo.add_argument(
        "--handlers",
        metavar="NAMES",
        help=(
            "comma-separated handler plugins, e.g. 'console,structlog' ('none' for none); "
            "default: ALIEN_EVENTS_HANDLERS, else 'console'"
        ),
    )
    demo.add_argument(
        "--mode",
        choices=MODES,
        help="the console handler's mode (default: auto, or ALIEN_EVENTS_CONSOLE_MODE)",
    )
    recording = demo.add_mutually_exclusive_group()
    recording.add_argument(
        "--jsonl",
        metavar="PATH",
        type=pathlib.Path,
        help=(
            f"record every change to PATH, replacing it (default: ALIEN_EVENTS_JSONL_PATH, "
            f"appended to, else ./{DEFAULT_JSONL})"
        ),
    )
    recording.add_argument(
        "--no-jsonl",
        action="store_true",
        help="do not add the JSON-lines handler (handlers named explicitly still run)",
    )
    pace = demo.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_positive_float,
        default=1.0,
        metavar="FACTOR",
        help="run FACTOR times faster (default: 1, about four seconds)",
    )
    pace.add_argument(
        "--pause",
        type=_seconds,
        metavar="SECONDS",
        help=f"seconds per simulated step (default: {DEFAULT_PAUSE} divided by --speed)",
    )
    demo.add_argument(
        "--fail",
        action="store_true",
        help="make the retried push fail again, to see a failed run (exits 1)",
    )
    demo.set_defaults(run=_demo)


def _add_view(commands: Any) -> None:
    view = commands.add_parser(
        "view",
        help="render a recorded JSON-lines file as a tree, or print it as JSON",
        description=(
            "Render the changes recorded in a JSON-lines file as a tree, with the console\n"
            "handler (live on a terminal, plain lines otherwise), or print the folded tree as\n"
            "JSON. A file cut short by a crash is fine: its torn last line is left out and\n"
            "reported; a corrupt line is skipped with a warning (or, with --strict, stops the\n"
            "view with exit code 1). With --follow, keep watching the file as it grows, until\n"
            "Ctrl-C or --idle-timeout. With --postgres, read the events a PostgreSQL store\n"
            "holds (all roots, or --root's tree); --follow then shows each change as it commits."
        ),
        epilog=(
            "examples:\n"
            "  alien-events view alien-events-demo.jsonl\n"
            "  alien-events view --json events.jsonl > tree.json\n"
            "  alien-events view --follow events.jsonl\n"
            "  alien-events view --postgres postgresql://localhost/app --follow\n\n" + EXIT_CODES
        ),
        formatter_class=_formatter,
    )
    view.add_argument(
        "file", metavar="FILE", type=pathlib.Path, nargs="?", help="a JSON-lines file"
    )
    view.add_argument(
        "--postgres",
        metavar="DSN",
        help="read the PostgreSQL store at DSN instead of a file (needs alien-events-postgres)",
    )
    view.add_argument(
        "--root", metavar="ID", help="with --postgres: only the tree under this root event"
    )
    output = view.add_mutually_exclusive_group()
    output.add_argument(
        "--mode",
        choices=MODES,
        help="the console handler's mode (default: auto, or ALIEN_EVENTS_CONSOLE_MODE)",
    )
    output.add_argument(
        "--json", action="store_true", help="print the folded tree as JSON instead of rendering it"
    )
    view.add_argument(
        "--indent",
        type=_indent,
        default=2,
        metavar="N",
        help="indent the JSON by N spaces (0: one line; default: 2)",
    )
    view.add_argument(
        "-f", "--follow", action="store_true", help="keep reading as the file grows (Ctrl-C stops)"
    )
    view.add_argument(
        "--idle-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="with --follow: stop after SECONDS with nothing new",
    )
    view.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad or torn line, with its line number (exit 1)",
    )
    view.set_defaults(run=_view)


def _add_schema(commands: Any) -> None:
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of every registered event type and of the changes",
        description=(
            "Print the JSON Schema of every registered event type (Alien's 31, and those of\n"
            "installed plugins) and of the change envelope, for generating UI types."
        ),
        epilog=EXIT_CODES,
        formatter_class=_formatter,
    )
    schema.add_argument(
        "--indent",
        type=_indent,
        default=2,
        metavar="N",
        help="indent by N spaces (0: one line; default: 2)",
    )
    schema.set_defaults(run=_schema)


def _add_plugins(commands: Any) -> None:
    plugins = commands.add_parser(
        "plugins",
        help="list the installed handler plugins, their versions, handlers and options",
        description=(
            "List the installed alien-events plugins (entry points of the 'alien_events'\n"
            "group): distribution, version, the handlers each gives with their options and\n"
            "environment variables, and the plugins that failed to load, with the reason."
        ),
        epilog=EXIT_CODES,
        formatter_class=_formatter,
    )
    plugins.add_argument("--json", action="store_true", help="print the listing as JSON")
    plugins.set_defaults(run=_plugins)


# -- running -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``alien-events`` with ``argv`` (default: the command line); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors: argparse already printed
        return exc.code if isinstance(exc.code, int) else USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE
    prog = f"{PROG} {args.command}"
    try:
        return typing.cast("int", args.run(args))
    except UsageError as exc:
        return _error(prog, str(exc), USAGE)
    except PluginError as exc:
        return _error(prog, str(exc), USAGE)
    except BrokenPipeError:
        # The reader went away (``alien-events schema | head``): nothing more to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return FAILED


def _error(prog: str, message: str, code: int) -> int:
    _note(f"{prog}: error: {message}")
    return code


def _note(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _names(text: str, origin: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if "none" in names:
        if len(names) > 1:
            raise UsageError(f"{origin}={text!r}: 'none' cannot be combined with other handlers")
        return []
    return names


def _make_bus(
    names: Sequence[str], environ: Mapping[str, str], options: Mapping[str, Mapping[str, Any]]
) -> EventBus:
    """Build a bus of these plugins, their options from ``options`` and else the environment."""
    env = dict(environ)
    env["ALIEN_EVENTS_HANDLERS"] = ",".join(names) or "none"
    # The options are keyed by plugin name, never by from_env's own keywords.
    return EventBus.from_env(env, **typing.cast("dict[str, Any]", options))


def _close(bus: EventBus, prog: str) -> int:
    """Close the bus (the console prints its final frame); report a failure as exit code 1."""
    try:
        bus.close()
    except EventHandlerError as exc:
        return _error(prog, f"a handler failed while closing: {exc}", FAILED)
    return OK


class _DemoHandlers(typing.NamedTuple):
    """The demo's handlers: plugin names, options given in code, and the recording, if any."""

    names: list[str]
    options: dict[str, dict[str, Any]]
    recording: pathlib.Path | None
    replace: bool


def _demo_handlers(args: argparse.Namespace, environ: Mapping[str, str]) -> _DemoHandlers:
    origin, text = "--handlers", args.handlers
    if text is None:
        origin, text = "ALIEN_EVENTS_HANDLERS", environ.get("ALIEN_EVENTS_HANDLERS", "")
        if not text.strip():
            text = "console"
    names = _names(text, origin)
    if not args.no_jsonl and "jsonl" not in names:
        names.append("jsonl")
    options: dict[str, dict[str, Any]] = {}
    recording, replace = None, False
    if "jsonl" in names:
        if args.jsonl is not None or not environ.get("ALIEN_EVENTS_JSONL_PATH"):
            recording = pathlib.Path(DEFAULT_JSONL) if args.jsonl is None else args.jsonl
            replace = True
            options["jsonl"] = {"path": recording}
        else:  # the environment's file, appended to as any program does
            recording = pathlib.Path(environ["ALIEN_EVENTS_JSONL_PATH"])
    if args.mode is not None:
        if "console" not in names:
            raise UsageError(
                f"--mode sets the console handler's mode, but the handlers are {names} "
                "(add 'console' to --handlers or ALIEN_EVENTS_HANDLERS)"
            )
        options["console"] = {"mode": args.mode}
    return _DemoHandlers(names, options, recording, replace)


def _demo(args: argparse.Namespace) -> int:
    prog = f"{PROG} demo"
    environ = os.environ
    chosen = _demo_handlers(args, environ)
    installed = installed_plugins()
    for name in chosen.names:  # an unknown plugin is refused before the old recording goes
        installed.factory(name)
    if chosen.replace and chosen.recording is not None:
        _start_fresh(chosen.recording)
    bus = _make_bus(chosen.names, environ, chosen.options)
    pause = args.pause if args.pause is not None else DEFAULT_PAUSE / args.speed
    try:
        code, failure = _run_demo(bus, pause=pause, fail=args.fail)
    finally:  # even on a bug: the live display gives the terminal back
        closed = _close(bus, prog)
    if code != OK:
        _error(prog, failure, code)
    mode = args.mode or environ.get("ALIEN_EVENTS_CONSOLE_MODE", "")
    if chosen.recording is not None and mode.strip().lower() != "quiet":
        recording = chosen.recording
        _note(f"Every change was recorded to {recording}\nReplay it with: {PROG} view {recording}")
    return code if code != OK else closed


def _run_demo(bus: EventBus, *, pause: float, fail: bool) -> tuple[int, str]:
    """Run the demo on the bus; return the exit code and, if it failed, why."""
    try:
        run_demo(bus, pause=pause, fail=fail)
    except DemoError as exc:
        return FAILED, f"the simulated run failed: {exc}"
    except EventHandlerError as exc:
        return FAILED, f"a handler failed: {exc}"
    except KeyboardInterrupt:
        return INTERRUPTED, "interrupted"
    return OK, ""


def _start_fresh(path: pathlib.Path) -> None:
    """Remove the demo's previous recording, so the file holds this run alone."""
    try:
        path.unlink(missing_ok=True)
    except IsADirectoryError:
        raise UsageError(f"--jsonl {path}: is a directory") from None
    except OSError as exc:
        raise UsageError(f"--jsonl {path}: cannot replace it: {exc.strerror}") from None


def _view(args: argparse.Namespace) -> int:
    prog = f"{PROG} view"
    if args.idle_timeout is not None and not args.follow:
        raise UsageError("--idle-timeout applies only with --follow")
    notes: list[str] = []
    source = _view_source(args, notes)
    tree = EventTree()
    clock = _ReplayClock()
    handlers: list[Any] = [clock, tree]
    if not args.json:
        # Following watches a run as it happens: real time. Otherwise time is the file's, so
        # elapsed times and the total are the recorded run's, not the age of the file.
        handlers.append(_view_console(args.mode, None if args.follow else clock))
    bus = EventBus(handlers)
    try:
        code, failure = _replay(source.changes, bus, follow=args.follow)
    finally:
        closed = _close(bus, prog)
    if args.json:
        _print_json(tree.to_dict(), args.indent)
    for note in notes:
        _note(note)
    if code != OK:
        return _error(prog, failure, code)
    _report_unfinished(source.label, tree, follow=args.follow)
    return closed


def _view_source(args: argparse.Namespace, notes: list[str]) -> ViewSource:
    """The source ``view`` reads: the file, or the PostgreSQL store (exactly one)."""
    if (args.file is None) == (args.postgres is None):
        raise UsageError("give a JSON-lines FILE or --postgres DSN (one of the two)")
    if args.postgres is not None:
        if args.strict:
            raise UsageError("--strict applies only to a JSON-lines file")
        return postgres_source(
            args.postgres, root=args.root, follow=args.follow, idle_timeout=args.idle_timeout
        )
    if args.root is not None:
        raise UsageError("--root applies only with --postgres")

    def on_error(error: BadLineError) -> None:
        if error.torn:
            notes.append(f"note: {error} (left out: the run that wrote it stopped mid-line)")
        else:
            notes.append(f"warning: {error} (skipped; --strict stops at it)")

    return file_source(
        args.file,
        follow=args.follow,
        strict=args.strict,
        idle_timeout=args.idle_timeout,
        on_error=on_error,
    )


@typing.final
class _ReplayClock:
    """The time of a recorded run: the latest timestamp among the changes it has seen."""

    def __init__(self) -> None:
        self._micros = 0

    def on_event_change(self, change: EventChange) -> None:
        """Move the clock to the change's time (never backwards)."""
        self._micros = max(self._micros, change.timestamp_micros)

    def __call__(self) -> float:
        return self._micros / 1_000_000


def _view_console(mode: str | None, clock: _ReplayClock | None) -> ConsoleHandler:
    """The console handler for ``view``: on stdout, since the rendering is the command's output."""
    width = os.environ.get("ALIEN_EVENTS_CONSOLE_WIDTH", "").strip() or "0"
    if not width.isdigit():
        raise UsageError(
            f"ALIEN_EVENTS_CONSOLE_WIDTH={width!r}: expected a number of columns "
            "(0: the terminal's)"
        )
    try:
        return ConsoleHandler(
            mode or "auto", file=sys.stdout, width=int(width) or None, clock=clock
        )
    except ValueError as exc:
        raise UsageError(f"the console handler cannot be made: {exc}") from None


def _replay(changes: Iterator[EventChange], bus: EventBus, *, follow: bool) -> tuple[int, str]:
    """Deliver every change, in file order, to the bus's handlers; return code and failure."""
    try:
        for change in changes:
            bus.publish(change)
    except (BadLineError, SourceError) as exc:
        return FAILED, str(exc)
    except EventHandlerError as exc:
        return FAILED, f"a handler failed: {exc}"
    except KeyboardInterrupt:
        if not follow:  # following ends with Ctrl-C: that is success
            return INTERRUPTED, "interrupted"
    finally:
        close = getattr(changes, "close", None)
        if callable(close):
            close()
    return OK, ""


def _report_unfinished(label: str, tree: EventTree, *, follow: bool) -> None:
    if len(tree) == 0:
        _note(f"note: {label} holds no events yet")
        return
    running = sum(1 for node in tree if node.state is EventState.STARTED)
    running += sum(
        1 for orphan in tree.orphans for node in orphan.walk() if node.state is EventState.STARTED
    )
    if running and not follow:
        events = "event was" if running == 1 else "events were"
        _note(
            f"note: {running} {events} still running when {label} ended "
            "(the run stopped early, or is still going: watch it with --follow)"
        )


def _schema(args: argparse.Namespace) -> int:
    installed_plugins()  # importing the plugins registers their event types
    _print_json(json_schema(), args.indent)
    return OK


def _print_json(value: Any, indent: int, out: TextIO | None = None) -> None:
    out = sys.stdout if out is None else out
    out.write(json.dumps(value, indent=indent or None, ensure_ascii=False) + "\n")
    out.flush()


def _plugins(args: argparse.Namespace) -> int:
    found = installed_plugins()
    if args.json:
        _print_json(_plugins_as_data(found), 2)
    else:
        sys.stdout.write(_plugins_as_text(found))
        sys.stdout.flush()
    return OK


def _env_name(plugin: str, option: str) -> str:
    return f"ALIEN_EVENTS_{plugin.upper().replace('-', '_')}_{option.upper()}"


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def _plugins_as_data(found: Plugins) -> dict[str, Any]:
    return {
        "plugins": [
            {
                "entryPoint": info.entry_point,
                "distribution": info.distribution,
                "version": info.version,
                "handlers": list(info.handlers),
            }
            for info in found.plugins
        ],
        "handlers": [
            {
                "name": name,
                "description": factory.description,
                "options": [
                    {
                        "name": option_name,
                        "type": option.kind.__name__,
                        "required": option.required,
                        "default": _plain(option.default),
                        "env": _env_name(name, option_name),
                        "help": option.help,
                    }
                    for option_name, option in factory.options.items()
                ],
            }
            for name, factory in sorted(found.factories.items())
        ],
        "failures": [
            {
                "entryPoint": failure.entry_point,
                "distribution": failure.distribution,
                "reason": failure.reason,
            }
            for failure in found.failures
        ],
    }


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _plugins_as_text(found: Plugins) -> str:
    lines: list[str] = []
    if found.plugins:
        lines.append("Installed plugins:")
        rows: list[tuple[str, ...]] = [("PLUGIN", "DISTRIBUTION", "VERSION", "HANDLERS")]
        rows += [
            (info.entry_point, info.distribution, info.version, ", ".join(info.handlers) or "-")
            for info in found.plugins
        ]
        lines += _table(rows)
    else:
        lines.append("No plugins installed (install one, e.g. alien-events-jsonl).")
    for name, factory in sorted(found.factories.items()):
        lines += ["", f"Handler {name!r}: {factory.description or '(no description)'}"]
        if not factory.options:
            lines.append("  no options")
            continue
        rows = [("OPTION", "TAKES", "DEFAULT", "VARIABLE", "MEANING")]
        for option_name, option in factory.options.items():
            default = "required" if option.required else repr(_plain(option.default))
            rows.append(
                (option_name, option.expected(), default, _env_name(name, option_name), option.help)
            )
        lines += _table(rows)
    if found.failures:
        lines += ["", "Failed to load:"]
        lines += [
            f"  {failure.entry_point} ({failure.distribution}): {failure.reason}"
            for failure in found.failures
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
