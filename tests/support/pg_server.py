"""
A throw-away PostgreSQL server for the tests: initdb in a temporary directory, then postgres.

The server listens on 127.0.0.1 at a free random port (its unix socket stays in its own
temporary directory), trusts every local connection and runs without fsync. PostgreSQL refuses
to run as root: as root, initdb and the server run as the ``postgres`` system user.

Environment:

- ``ALIEN_EVENTS_TEST_POSTGRES_DSN``: use that existing server (a superuser's DSN, which may
  create databases) instead of starting one.
- ``ALIEN_EVENTS_REQUIRE_POSTGRES=1``: a server that cannot be had fails the tests instead of
  skipping them (CI sets it).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import IO, Any, Self

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DSN_ENV = "ALIEN_EVENTS_TEST_POSTGRES_DSN"
REQUIRE_ENV = "ALIEN_EVENTS_REQUIRE_POSTGRES"
SERVER_USER = "postgres"
PROGRAMS = ("initdb", "pg_ctl", "postgres")
PORT_ATTEMPTS = 5


REFUSE_AT_COMMIT = """
CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refused at commit: %', NEW.id;
END $$;
CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT OR UPDATE ON alien_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.data ->> 'note' = 'refused') EXECUTE FUNCTION refuse_at_commit();
"""
"""SQL that makes ``alien_events`` refuse, at commit, any row whose event has the note ``refused``."""


class PostgresStartError(RuntimeError):
    """The server could not be started (the message says why, with the server log's tail)."""


def postgres_required() -> bool:
    """Return whether a missing server must fail the tests rather than skip them."""
    return os.environ.get(REQUIRE_ENV, "") == "1"


def find_postgres_bin() -> pathlib.Path | None:
    """Return the directory holding initdb, pg_ctl and postgres, or None if there is none."""
    candidates = sorted(
        pathlib.Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else -1,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(pathlib.Path(on_path).resolve().parent)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in PROGRAMS):
            return directory
    return None


def server_unavailable_reason(*, local: bool = False) -> str | None:
    """Return why no server can be had (``local``: started here, whatever the DSN), or None."""
    if os.environ.get(DSN_ENV) and not local:
        return None
    if find_postgres_bin() is None:
        return (
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) in "
            "/usr/lib/postgresql/*/bin or on PATH: install the 'postgresql' package, "
            f"or set {DSN_ENV} to an existing server"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return (
                "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as: "
                "create it with `useradd --system --no-create-home postgres`"
            )
    return None


_RUNNING: set[PostgresServer] = set()


@atexit.register
def _stop_all() -> None:
    """Stop every server this process started and has not stopped (the exit's backstop)."""
    for server in list(_RUNNING):
        server.stop()


def _stop_all_then_die(signum: int, _frame: object) -> None:
    """Stop the servers, then let the signal end the process as it would have."""
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _stop_servers_on_termination() -> None:
    """Make SIGTERM and SIGHUP, which skip atexit, stop the servers first (unless handled)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _stop_all_then_die)


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """
    A PostgreSQL server for tests, started by ``start()`` (or ``with``) and gone after ``stop()``.

    Given ``dsn``, it stands for that existing server and starts or stops nothing.
    """

    def __init__(
        self,
        bin_dir: pathlib.Path | None = None,
        *,
        dsn: str | None = None,
        startup_timeout: float = 60.0,
        durable: bool = False,
    ) -> None:
        self.durable = durable  # keep fsync and synchronous commit on (for benchmarks)
        self.bin_dir = bin_dir
        self.dsn = dsn or ""
        self.port = int(conninfo_to_dict(dsn).get("port") or 5432) if dsn else 0
        self.external = dsn is not None
        self.startup_timeout = startup_timeout
        self.temp_dir: pathlib.Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_environment(cls) -> PostgresServer:
        """Return the server ``ALIEN_EVENTS_TEST_POSTGRES_DSN`` names, else one to start here."""
        return cls(dsn=os.environ.get(DSN_ENV) or None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Run initdb and start the server, returning once it accepts connections."""
        if self.external or self._process is not None:
            return self
        reason = server_unavailable_reason(local=True)
        self.bin_dir = self.bin_dir or find_postgres_bin()
        if reason is not None or self.bin_dir is None:
            raise PostgresStartError(reason or "no PostgreSQL binaries")
        _RUNNING.add(self)
        _stop_servers_on_termination()
        try:
            self._init_cluster()
            for _ in range(PORT_ATTEMPTS):
                if self._start_postgres():
                    return self
            raise PostgresStartError(f"no free port after {PORT_ATTEMPTS} tries\n{self._log()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut the server down fast (killing it if it lingers) and remove its directory."""
        _RUNNING.discard(self)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown, as pg_ctl -m fast
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    def new_database(self, name: str) -> str:
        """Create the database ``name`` and return a DSN that connects to it."""
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return make_conninfo(self.dsn, dbname=name)

    def drop_database(self, name: str) -> None:
        """Drop the database ``name``, disconnecting whoever is still connected to it."""
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        self._execute(query)

    def _execute(self, query: sql.Composed) -> None:
        """Run one statement outside a transaction, as CREATE and DROP DATABASE need."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(query)

    def _run_as_server_user(self) -> dict[str, Any]:
        """Return the subprocess arguments that run a program as the server's user."""
        if os.geteuid() != 0:
            return {}
        return {"user": SERVER_USER, "group": pwd.getpwnam(SERVER_USER).pw_gid, "extra_groups": []}

    def _init_cluster(self) -> None:
        """Create the temporary directory (the server user's) and a database cluster in it."""
        assert self.bin_dir is not None
        as_root = os.geteuid() == 0
        # As root, /tmp rather than $TMPDIR: the server user must be able to reach the directory.
        self.temp_dir = pathlib.Path(
            tempfile.mkdtemp(prefix="alien-events-pg-", dir="/tmp" if as_root else None)  # noqa: S108  (mkdtemp makes a private directory)
        )
        if as_root:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(self.temp_dir, account.pw_uid, account.pw_gid)
        done = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                *("--pgdata", str(self.temp_dir / "data"), "--username", SERVER_USER),
                *("--auth", "trust", "--encoding", "UTF8", "--no-locale", "--no-sync"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.temp_dir,
            check=False,
            **self._run_as_server_user(),
        )
        if done.returncode != 0:
            raise PostgresStartError(f"initdb failed ({done.returncode}):\n{done.stdout}")

    def _start_postgres(self) -> bool:
        """Start postgres on a free port; return False if another process took the port."""
        assert self.bin_dir is not None
        assert self.temp_dir is not None
        self.port = _free_port()
        self.dsn = f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/postgres"
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.temp_dir),
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        with self._log_file("w") as log:  # afresh: an earlier try's "could not bind" is past
            self._process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.temp_dir / "data"), *options],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.temp_dir,
                start_new_session=True,  # its own process group, which stop() may kill
                **self._run_as_server_user(),
            )
        return self._wait_until_ready()

    def _wait_until_ready(self) -> bool:
        """Poll until the server accepts connections; return False if it could not bind its port."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                pass
            if self._process.poll() is not None:
                log = self._log()
                self._process = None
                if "could not bind" in log or "could not create any TCP/IP sockets" in log:
                    return False
                raise PostgresStartError(f"postgres exited at start-up\n{log}")
            if time.monotonic() > deadline:
                raise PostgresStartError(
                    f"postgres did not accept connections within {self.startup_timeout} s\n"
                    f"{self._log()}"
                )
            time.sleep(0.05)

    def _log_file(self, mode: str) -> IO[str]:
        """Open the log of the server's last start, in the temporary directory."""
        assert self.temp_dir is not None
        return (self.temp_dir / "server.log").open(mode, encoding="utf-8")

    def _log(self, lines: int = 30) -> str:
        """Return the last lines of the server log, to explain a failure."""
        if self.temp_dir is None:
            return ""
        with contextlib.suppress(OSError), self._log_file("r") as log:
            tail = log.read().splitlines()[-lines:]
            return "server log (last lines):\n" + "\n".join(tail)
        return ""
